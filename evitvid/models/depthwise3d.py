"""Depthwise 3D convolution with fast CPU gradients, for training the 3D model on a CPU.

PyTorch's CPU backward for depthwise `conv3d` (oneDNN) is the 3D model's most expensive
training kernel: its weight gradient runs at about 2-10 GFLOP/s, and on the small maps of
the last stages (2 x 2 and 4 x 4 positions under a 5 x 5 kernel) most of its work is
padding. `DepthwiseConv3dFunction` keeps PyTorch's forward and replaces the backward:

- input gradient, stride 1: the output gradient correlated with the kernel flipped along
  all three axes (padded by kernel - 1 - padding), itself a depthwise forward convolution,
  which oneDNN runs much faster than its backward-data kernel. Other strides: PyTorch's.
- weight gradient: `weight_grad`, a numba kernel over channels-last tensors that visits
  only the taps that touch the input and accumulates all channels of a tap at once
  (contiguous in memory). It splits the work into a fixed number of slices summed in a
  fixed order, so the result does not depend on the number of threads. Other layouts, and
  machines without numba, use PyTorch's.
- bias gradient: the sum of the output gradient.

Gradients equal PyTorch's (`tests/test_depthwise3d.py`: fp32 comparisons, float64
gradcheck). Differentiable once: a double backward (`create_graph=True`) raises.
`python -m evitvid bench --only depthwise` times one layer both ways.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DepthwiseConv3dFunction", "weight_grad", "numba_available"]

_log = logging.getLogger(__name__)

# Slices of the (batch x output frames) rows, each summed on its own and then in order:
# fixed, so that the weight gradient is the same whatever the number of threads.
_SLICES = 16
_kernel = None  # the compiled numba function, built on first use
_numba_error: Optional[str] = None


def _build_kernel():
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def depthwise_weight_grad(x, g, out, st, sh, sw, pt, ph, pw):  # pragma: no cover (compiled)
        # x: B x T x H x W x C input, g: B x To x Ho x Wo x C output gradient (channels last);
        # out: slices x KT x KH x KW x C, zero on entry; slice s sums rows s, s + slices, ...
        B, T, H, W, C = x.shape
        To, Ho, Wo = g.shape[1], g.shape[2], g.shape[3]
        slices, KT, KH, KW = out.shape[0], out.shape[1], out.shape[2], out.shape[3]
        rows = B * To
        for s in prange(slices):
            acc = out[s]
            for r in range(s, rows, slices):
                b = r // To
                t = r % To
                for i in range(KT):
                    ti = t * st + i - pt
                    if ti < 0 or ti >= T:
                        continue
                    for h in range(Ho):
                        for j in range(KH):
                            hi = h * sh + j - ph
                            if hi < 0 or hi >= H:
                                continue
                            for w in range(Wo):
                                gv = g[b, t, h, w]
                                for k in range(KW):
                                    wi = w * sw + k - pw
                                    if wi < 0 or wi >= W:
                                        continue
                                    xv = x[b, ti, hi, wi]
                                    a = acc[i, j, k]
                                    for c in range(C):
                                        a[c] += gv[c] * xv[c]

    return depthwise_weight_grad


def numba_available() -> bool:
    """Whether the numba weight gradient can run here (numba imports and compiles)."""
    global _kernel, _numba_error
    if _kernel is None and _numba_error is None:
        try:
            _kernel = _build_kernel()
        except Exception as exc:  # numba missing or broken: PyTorch's kernel, said once
            _numba_error = f"{type(exc).__name__}: {exc}"
            _log.warning("numba is not usable (%s); depthwise 3D weight gradients use PyTorch's kernel",
                         _numba_error)
    return _kernel is not None


def _channels_last_view(t: torch.Tensor) -> Optional[np.ndarray]:
    """B x C x T x H x W channels-last tensor -> B x T x H x W x C array sharing its memory, else None."""
    if not t.is_contiguous(memory_format=torch.channels_last_3d):
        return None
    return t.detach().permute(0, 2, 3, 4, 1).numpy()


def weight_grad(x: torch.Tensor, grad: torch.Tensor, kernel_size: Sequence[int], stride: Sequence[int],
                padding: Sequence[int]) -> torch.Tensor:
    """The weight gradient (C x 1 x kt x kh x kw) of a depthwise conv3d of `x` with output gradient `grad`.

    numba on channels-last CPU tensors (fp32 or fp64), PyTorch's `convolution_backward` otherwise.
    """
    C = x.shape[1]
    xv, gv = _channels_last_view(x), _channels_last_view(grad)
    if (xv is None or gv is None or x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64)
            or grad.dtype != x.dtype or not numba_available()):
        weight = torch.empty((C, 1, *kernel_size), dtype=x.dtype, device=x.device)
        return torch.ops.aten.convolution_backward(
            grad, x, weight, None, list(stride), list(padding), [1, 1, 1], False, [0, 0, 0], C,
            [False, True, False])[1]
    import numba
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    out = np.zeros((_SLICES, *kernel_size, C), dtype=xv.dtype)
    _kernel(xv, gv, out, *stride, *padding)
    summed = torch.from_numpy(out.sum(axis=0))  # kt x kh x kw x C, in slice order
    return summed.permute(3, 0, 1, 2).unsqueeze(1).contiguous()


class DepthwiseConv3dFunction(torch.autograd.Function):
    """`F.conv3d(x, weight, bias, stride, padding, groups=C)` for depthwise kernels, with the backward above."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = tuple(stride), tuple(padding), bias is not None
        return F.conv3d(x, weight, bias, stride, padding, 1, weight.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        groups = weight.shape[0]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            if ctx.stride == (1, 1, 1):
                flipped_padding = tuple(k - 1 - p for k, p in zip(weight.shape[2:], ctx.padding))
                grad_x = F.conv3d(grad, weight.flip(2, 3, 4), None, 1, flipped_padding, 1, groups)
            else:
                grad_x = torch.ops.aten.convolution_backward(
                    grad, x, weight, None, list(ctx.stride), list(ctx.padding), [1, 1, 1], False, [0, 0, 0],
                    groups, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(x, grad, weight.shape[2:], ctx.stride, ctx.padding).to(weight.dtype)
            if not weight.is_contiguous():  # the weight's own layout (channels-last strides)
                grad_w = torch.empty_like(weight).copy_(grad_w)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 2, 3, 4))
        return grad_x, grad_w, grad_b, None, None
