"""Batch norm in training over channels-last activations, with C++ CPU kernels.

The 3D model trains on NDHWC activations (channels-last, what oneDNN's depthwise and pointwise
convolutions are fastest on). PyTorch's CPU batch norm is slow on that layout: its backward
on the stem's 8-channel activations took about thirty times as long as on the same tensor
laid out contiguously, and batch norm was the largest part of the training step in
`torch.profiler`. `BatchNormFunction`
sees a channels-last tensor as rows of channels and normalises it with
`evitvid.models.kernels`' `batch_norm_forward` and `batch_norm_backward` (sums in double,
independent of the thread count). `layers.ConvSpec.batch_norm` builds `BatchNorm2d` and
`BatchNorm3d`, which take this path only when training on a CPU with channels-last fp32/fp64
input (unless `kernels.cpu_fast_paths(False)`); everywhere else they are PyTorch's, with PyTorch's
parameters, buffers and `state_dict`. `norm_act` (what `ConvNormAct` calls) fuses the ReLU or
hardswish that follows a norm into the same kernels: the activation then costs no pass of its
own, and its input is recomputed in the backward pass instead of kept.

Outputs and gradients equal PyTorch's to rounding (`tests/test_batchnorm.py`: fp32
comparisons, float64 gradcheck). Differentiable once (`create_graph=True` raises).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from . import kernels

__all__ = ["ACTIVATIONS", "BatchNormFunction", "batch_norm_training", "BatchNorm2d", "BatchNorm3d", "norm_act"]


# The activations a batch norm fuses with (`norm_act`): the C++ kernel's codes. Fused, the
# activation costs no pass of its own and nothing is kept for its backward but the norm's input.
ACTIVATIONS: dict[type, int] = {nn.ReLU: 1, nn.Hardswish: 2}


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm of a channels-last tensor, then an activation (0 none, else an
    `ACTIVATIONS` code); returns (y, mean, biased variance), the statistics in double and
    without gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, activation=0):
        y = torch.empty_like(x)  # channels-last like x
        mean, var = kernels.get().batch_norm_forward(kernels.channels_last_rows(x), weight, bias, eps, activation,
                                                     kernels.channels_last_rows(y))
        ctx.save_for_backward(x, weight, bias, mean, var)
        ctx.eps, ctx.activation = eps, activation
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad, _grad_mean, _grad_var):
        x, weight, bias, mean, var = ctx.saved_tensors
        dx = torch.empty_like(x)
        grad_rows = kernels.rows_of(grad)  # a gradient in another layout: copied to channels-last
        dweight, dbias = kernels.get().batch_norm_backward(grad_rows, kernels.channels_last_rows(x), mean, var,
                                                           weight, bias, ctx.eps, ctx.activation,
                                                           kernels.channels_last_rows(dx))
        return (dx, dweight if ctx.needs_input_grad[1] else None, dbias if ctx.needs_input_grad[2] else None,
                None, None)


def batch_norm_training(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                        running_mean: Optional[torch.Tensor], running_var: Optional[torch.Tensor],
                        momentum: float, eps: float, activation: int = 0) -> torch.Tensor:
    """`F.batch_norm(..., training=True)` for a channels-last CPU tensor through the C++ kernels,
    then the activation of code `activation` (0: none): the running statistics are updated as
    PyTorch does (the unbiased variance)."""
    y, mean, var = BatchNormFunction.apply(x, weight, bias, eps, activation)
    if running_mean is not None and running_var is not None:
        n = x.numel() // x.shape[1]
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
            unbiased = var * (n / (n - 1)) if n > 1 else var
            running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
    return y


class _FastBatchNorm:
    """The CPU fast path shared by `BatchNorm2d` and `BatchNorm3d` (mixed in before PyTorch's class)."""

    def _fast(self, x: torch.Tensor) -> bool:
        return (self.training and kernels.fast_paths_enabled() and x.dtype in (torch.float32, torch.float64)
                and (self.weight is None or self.weight.dtype == x.dtype)
                and kernels.channels_last_rows(x) is not None and x.numel() > x.shape[1]
                and not torch.is_autocast_enabled("cpu") and not torch.jit.is_tracing()
                and not torch.compiler.is_compiling() and kernels.available())

    def forward(self, x: torch.Tensor, activation: int = 0) -> torch.Tensor:
        """Batch norm of `x`; `activation` (an `ACTIVATIONS` code) only on the fast path (`norm_act`)."""
        if not self._fast(x):
            if activation:
                raise ValueError("a fused activation needs the fast path (norm_act checks it)")
            return super().forward(x)
        self._check_input_dim(x)
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
        if self.momentum is None:  # a cumulative moving average, as PyTorch's
            momentum = 1.0 / float(self.num_batches_tracked) if self.track_running_stats else 0.0
        else:
            momentum = self.momentum
        return batch_norm_training(x, self.weight, self.bias, self.running_mean, self.running_var, momentum,
                                   self.eps, activation)


class BatchNorm2d(_FastBatchNorm, nn.BatchNorm2d):
    """`nn.BatchNorm2d` with the channels-last CPU training path."""


class BatchNorm3d(_FastBatchNorm, nn.BatchNorm3d):
    """`nn.BatchNorm3d` with the channels-last CPU training path."""


def norm_act(norm: nn.Module, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`act(norm(x))`, in one C++ pass each way when `norm` takes the fast path and `act` is
    one of `ACTIVATIONS` (exactly that class, not a subclass with other behaviour)."""
    code = ACTIVATIONS.get(type(act), 0)
    if code and isinstance(norm, _FastBatchNorm) and norm._fast(x):
        return norm(x, activation=code)
    return act(norm(x))

