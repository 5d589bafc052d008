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
    """ATen's own BatchNorm kernels, fed the whole batch's statistics: written out in tensor ops, the same maths cost
    5x native BatchNorm on these small layers (torch.var_mean alone 443 µs on 32×1568, native_batch_norm 39)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)  # statistics in fp32 under bf16 autocast
    def forward(ctx, x, weight, bias, shared: SharedMean, eps: float):
        _, mean, invstd = torch.ops.aten.native_batch_norm(x, None, None, None, None, True, 0.0, eps)  # this rank's
        stats = torch.cat([mean, invstd.pow(-2).sub_(eps), mean.square()])
        shared.average([stats])
        mean, mean_var, mean_square = stats.chunk(3)  # the batch's variance: E[var] + E[mean²] - E[mean]²
        var = (mean_var + mean_square - mean.square()).clamp_min_(0)
        out = torch.batch_norm(x, weight, bias, mean, var, False, 0.0, eps, False)
        invstd = torch.rsqrt(var + eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.shared, ctx.eps = shared, eps
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad_out, _mean, _var):
        x, weight, mean, invstd = ctx.saved_tensors
        # With the batch's mean and invstd, ATen's backward gives Σdy·x̂ and Σdy over this rank's share (the weight's
        # and bias's gradients, which average_grads averages) and an input gradient centred on this share's means.
        grad_x, sum_dy_xhat, sum_dy = torch.ops.aten.native_batch_norm_backward(
            grad_out, x, weight, None, None, mean, invstd, True, ctx.eps, [True, True, True])
        n = x.numel() // x.shape[1]
        local = torch.cat([sum_dy, sum_dy_xhat]).div_(n)
        whole = local.clone()
        ctx.shared.average([whole])  # means over the whole batch (what SyncBatchNorm all-reduces)
        shift_dy, shift_dy_xhat = (local - whole).chunk(2)  # re-centre the input gradient on the batch's means
        scale = invstd if weight is None else invstd * weight
        slope = scale * invstd * shift_dy_xhat
        shape = [1, -1] + [1] * (x.dim() - 2)
        grad_x.addcmul_(x, slope.view(shape)).add_((scale * shift_dy - mean * slope).view(shape))
        if weight is None:
            return grad_x, None, None, None, None
        return grad_x, sum_dy_xhat, sum_dy, None, None


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
