"""BatchNorm over a local group's whole batch on a CPU (torch's SyncBatchNorm works on GPUs only).

A local group splits each batch between its worker processes, so a BatchNorm layer saw half a batch per rank (32 of
fast-mnist's 64): the recipe changed with the worker count. Here a training-mode BatchNorm meets the other ranks
through the group's shared memory (shared_mean.py) twice per layer and step: in the forward for the batch's mean and
variance, in the backward for the two per-channel sums its input gradient needs (as torch's SyncBatchNorm does).
Every rank holds an equal share, so averaging per-rank means is the batch mean.
"""
from __future__ import annotations

import torch

from .shared_mean import SharedMean


class _SharedBatchNorm(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)  # statistics in fp32 under bf16 autocast
    def forward(ctx, x, weight, bias, shared: SharedMean, eps: float):
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        var, mean = torch.var_mean(x, dims, correction=0)
        stats = torch.cat([mean, var, mean.square()])
        shared.average([stats])
        mean, mean_var, mean_square = stats.chunk(3)  # the batch's variance: E[var] + E[mean²] - E[mean]²
        var = (mean_var + mean_square - mean.square()).clamp_min_(0)
        invstd = torch.rsqrt(var + eps)
        x_hat = (x - mean.view(shape)) * invstd.view(shape)
        out = x_hat if weight is None else torch.addcmul(bias.view(shape), x_hat, weight.view(shape))
        ctx.save_for_backward(x_hat, weight, invstd)
        ctx.shared, ctx.dims, ctx.shape = shared, dims, shape
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad_out, _mean, _var):
        x_hat, weight, invstd = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        sum_dy = grad_out.sum(dims)
        sum_dy_xhat = (grad_out * x_hat).sum(dims)
        means = torch.cat([sum_dy, sum_dy_xhat]).div_(x_hat.numel() // x_hat.shape[1])
        ctx.shared.average([means])  # means over the whole batch, for the input's gradient (as SyncBatchNorm)
        mean_dy, mean_dy_xhat = means.chunk(2)
        scale = invstd if weight is None else invstd * weight
        grad_x = (grad_out - mean_dy.view(shape) - x_hat * mean_dy_xhat.view(shape)) * scale.view(shape)
        if weight is None:
            return grad_x, None, None, None, None
        return grad_x, sum_dy_xhat, sum_dy, None, None  # this rank's share: average_grads takes the mean


class SharedBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """A BatchNorm1d/2d turned in place (its class, not its parameters or buffers) into one that normalises over
    the local group's whole batch while training; eval mode is plain BatchNorm on the running statistics."""

    shared: SharedMean

    def _check_input_dim(self, input):
        if input.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2-D to 4-D input (got {input.dim()}-D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        out, mean, var = _SharedBatchNorm.apply(x, self.weight, self.bias, self.shared, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                n = x.numel() // x.shape[1] * self.shared.world_size
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * (n / max(1, n - 1)), momentum)
        return out


def share_batchnorm(net: torch.nn.Module, shared: SharedMean) -> int:
    """Turn `net`'s BatchNorm layers into SharedBatchNorm; returns how many."""
    count = 0
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.__class__ = SharedBatchNorm
            m.shared = shared
            count += 1
    return count
