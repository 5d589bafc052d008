"""Convolutions whose image side has a single channel (D's first layer and G's last on grayscale data), written as
one matrix product and a fold on a CPU.

oneDNN has no fast kernel for a convolution into or out of one channel: on the fast default (dcgan28, width 16)
G's last transposed convolution (16 → 1) took 1.78 ms forward against 0.36 ms as a product and a fold, and the
input gradient of D's first convolution (1 → 8, which G's update needs) 5.2-8.3 ms against 1.35 ms (one thread,
batch 64; the whole step ~12% faster, docs/benchmarks.md). The same arithmetic, summed in another order
(float differences ~1e-5). Three channels (RGB) measured slower this way, so only one channel takes it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def transpose_by_fold(y: torch.Tensor, weight: torch.Tensor, size, stride, padding) -> torch.Tensor:
    """conv_transpose2d(y, weight) without bias, cropped to `size`: every position's k×k patch from one product
    (C·k·k × O) @ (O × H·W) per image (y channels_last is read as it lies), and fold adds the overlapping patches.
    Differentiable (double backward too)."""
    cols = torch.matmul(weight.reshape(y.shape[1], -1).t().to(y.dtype), y.flatten(2))  # B × C·k·k × H·W
    return F.fold(cols, tuple(size), weight.shape[-2:], padding=padding, stride=stride)


class _InputGradByFold(torch.autograd.Function):
    """conv2d with oneDNN's forward and weight gradient, and the input gradient as `transpose_by_fold`."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, bias is not None)
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, has_bias = ctx.geometry
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = transpose_by_fold(grad, weight, x.shape[-2:], stride, padding).to(x.dtype)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad, x.to(grad.dtype), weight.to(grad.dtype), [weight.shape[0]] if has_bias else None, stride,
                padding, (1, 1), False, (0, 0), 1, (False, ctx.needs_input_grad[1], ctx.needs_input_grad[2]))
            grad_w = grad_w.to(weight.dtype) if grad_w is not None else None
            grad_b = grad_b.to(weight.dtype) if grad_b is not None else None
        return grad_x, grad_w, grad_b, None, None


def _takes_fold(x: torch.Tensor, dilation=(1, 1), groups: int = 1) -> bool:
    return x.device.type == "cpu" and x.dim() == 4 and x.shape[1] == 1 and tuple(dilation) == (1, 1) and groups == 1


def fold_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> torch.Tensor:
    """F.conv2d, with its input gradient by fold when x is a one-channel image on the CPU."""
    pair = nn.modules.utils._pair
    if not _takes_fold(x, pair(dilation), groups) or isinstance(padding, str):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return _InputGradByFold.apply(x, weight, bias, pair(stride), pair(padding))


class FoldConv2d(nn.Conv2d):
    """nn.Conv2d (same parameters and state_dict) whose input gradient for one-channel images is a fold."""

    def _conv_forward(self, x, weight, bias):
        if self.padding_mode != "zeros":
            return super()._conv_forward(x, weight, bias)
        return fold_conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class FoldConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d into one channel, as a product and a fold on the CPU."""

    def forward(self, x, output_size=None):
        if output_size is not None or x.device.type != "cpu" or x.dim() != 4:
            return super().forward(x, output_size)
        size = [(n - 1) * s - 2 * p + k for n, s, p, k in zip(x.shape[-2:], self.stride, self.padding, self.kernel_size)]
        out = transpose_by_fold(x, self.weight, size, self.stride, self.padding)
        return out if self.bias is None else out + self.bias.to(out.dtype).view(1, -1, 1, 1)


def _plain(m) -> bool:
    return m.groups == 1 and m.dilation == (1, 1) and m.padding_mode == "zeros"


def use_fold_kernels(net: nn.Module) -> int:
    """Switch `net`'s plain one-channel image convolutions to the fold versions in place (parameters untouched);
    the number switched. Wrapped layers (spectral norm's parametrisations) stay as they are."""
    switched = 0
    for m in net.modules():
        if type(m) is nn.Conv2d and _plain(m) and m.in_channels == 1:
            m.__class__ = FoldConv2d
        elif type(m) is nn.ConvTranspose2d and _plain(m) and m.out_channels == 1 and m.output_padding == (0, 0):
            m.__class__ = FoldConvTranspose2d
        else:
            continue
        switched += 1
    return switched
