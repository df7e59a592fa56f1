"""Depthwise 2D and 3D convolutions with fast CPU gradients, for training on a CPU.

PyTorch's CPU backward for depthwise convolutions (oneDNN) is among the most expensive
training kernels of both models: in 3D its weight gradient runs far below the machine's
matmul rate (`python -m evitvid bench --only depthwise`), and on the small maps of the
last stages (2 x 2 and 4 x 4 positions under a 5 x 5 kernel) most of its work is padding.
`DepthwiseConvFunction` keeps PyTorch's forward and replaces the backward:

- input gradient, stride 1: the output gradient correlated with the kernel flipped along
  every axis (padded by kernel - 1 - padding), itself a depthwise forward convolution,
  which oneDNN runs much faster than its backward-data kernel. Strided (each stage's first
  block): `input_grad`, a C++ kernel (`evitvid.models.kernels`) that gathers, for every input
  position, the output positions and taps that read it (4-20x PyTorch's at the study's shapes).
- weight gradient: `weight_grad`, a C++ kernel over channels-last tensors that visits
  only the taps that touch the input and accumulates all channels of a tap at once
  (contiguous in memory). It splits the work into a fixed number of slices summed in a
  fixed order, so the result does not depend on the number of threads.
- bias gradient: the sum of the output gradient.

The C++ kernels are written for 3D (batch x time x height x width x channels); a 2D
convolution is the 3D one with one time step, so 2D tensors pass through them as views with
a time axis of size 1 (no copy). They need channels-last tensors (what the trainer uses on
CPU); other layouts, and machines where the kernels cannot be built, use PyTorch's kernels.

Gradients equal PyTorch's to rounding (`tests/test_depthwise.py`: fp32 results against
PyTorch's and against the exact float64 sums, float64 gradcheck). Differentiable once: a double
backward (`create_graph=True`) raises.
`python -m evitvid bench --only depthwise` times one layer both ways.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from . import kernels

__all__ = ["DepthwiseConvFunction", "weight_grad", "input_grad"]


def _as_3d(t: torch.Tensor) -> torch.Tensor:
    """A 4D (B x C x H x W) tensor as 5D with one time step (a view; channels-last stays channels-last)."""
    return t.unsqueeze(2) if t.ndim == 4 else t


def _spatial(values: Sequence[int], ndim: int, fill: int) -> list[int]:
    """Kernel, stride or padding of a 2D (4D tensor) or 3D convolution as three values (time first)."""
    return [fill, *values] if ndim == 4 else list(values)


def weight_grad(x: torch.Tensor, grad: torch.Tensor, kernel_size: Sequence[int], stride: Sequence[int],
                padding: Sequence[int]) -> torch.Tensor:
    """The weight gradient (C x 1 x [kt x] kh x kw) of a depthwise conv2d or conv3d of `x` with output gradient `grad`.

    The C++ kernel on channels-last CPU tensors (fp32 or fp64), PyTorch's `convolution_backward` otherwise.
    """
    C, nd = x.shape[1], x.ndim
    xv, gv = kernels.rows_view(_as_3d(x.detach())), kernels.rows_view(_as_3d(grad))
    if (xv is None or gv is None or x.dtype not in (torch.float32, torch.float64) or grad.dtype != x.dtype
            or not kernels.available()):
        weight = torch.empty((C, 1, *kernel_size), dtype=x.dtype, device=x.device)
        return torch.ops.aten.convolution_backward(
            grad, x, weight, None, list(stride), list(padding), [1] * (nd - 2), False, [0] * (nd - 2), C,
            [False, True, False])[1]
    summed = kernels.get().depthwise_weight_grad(xv, gv, _spatial(kernel_size, nd, 1), _spatial(stride, nd, 1),
                                                 _spatial(padding, nd, 0))
    summed = summed.permute(3, 0, 1, 2).unsqueeze(1)  # kt x kh x kw x C -> C x 1 x kt x kh x kw
    return (summed[:, :, 0] if nd == 4 else summed).contiguous()


def input_grad(grad: torch.Tensor, weight: torch.Tensor, x: torch.Tensor, stride: Sequence[int],
               padding: Sequence[int]) -> torch.Tensor:
    """The input gradient (shaped and laid out like `x`) of a depthwise conv2d or conv3d of `x`
    with `weight`, given the output gradient `grad`: the C++ kernel on channels-last CPU tensors
    (fp32 or fp64), PyTorch's `convolution_backward` otherwise."""
    nd = x.ndim
    gv = kernels.rows_view(_as_3d(grad))
    if (gv is None or grad.dtype not in (torch.float32, torch.float64) or weight.dtype != grad.dtype
            or not kernels.available()):
        return torch.ops.aten.convolution_backward(
            grad, x, weight, None, list(stride), list(padding), [1] * (nd - 2), False, [0] * (nd - 2),
            weight.shape[0], [True, False, False])[0]
    kernel = _as_3d(weight.detach())[:, 0].permute(1, 2, 3, 0).contiguous()  # KT x KH x KW x C
    dx = kernels.get().depthwise_input_grad(gv, kernel, list(_as_3d(x).shape[2:]), _spatial(stride, nd, 1),
                                            _spatial(padding, nd, 0))
    dx = dx.permute(0, 4, 1, 2, 3)  # B x T x H x W x C -> B x C x T x H x W, channels-last in memory
    return dx[:, :, 0] if nd == 4 else dx


class DepthwiseConvFunction(torch.autograd.Function):
    """`F.conv2d`/`F.conv3d(x, weight, bias, stride, padding, groups=C)` for depthwise kernels,
    with the backward above."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = tuple(stride), tuple(padding), bias is not None
        conv = F.conv2d if x.ndim == 4 else F.conv3d
        return conv(x, weight, bias, stride, padding, 1, weight.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        groups = weight.shape[0]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            if all(s == 1 for s in ctx.stride):
                flipped_padding = tuple(k - 1 - p for k, p in zip(weight.shape[2:], ctx.padding))
                conv = F.conv2d if x.ndim == 4 else F.conv3d
                grad_x = conv(grad, weight.flip(list(range(2, weight.ndim))), None, 1, flipped_padding, 1, groups)
            else:
                grad_x = input_grad(grad, weight, x, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(x, grad, weight.shape[2:], ctx.stride, ctx.padding).to(weight.dtype)
            if not weight.is_contiguous():  # the weight's own layout (channels-last strides)
                grad_w = torch.empty_like(weight).copy_(grad_w)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=[0, *range(2, grad.ndim)])
        return grad_x, grad_w, grad_b, None, None
