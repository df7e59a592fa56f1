"""1 x 1 x 1 convolutions trained on one CPU thread at small batches, kept on fast paths.

On one thread PyTorch sends a 1 x 1 x 1 convolution of a batch under 16 to its native
`slow_conv3d`, forward and backward. `layers.Conv3d` runs the forward on oneDNN, but
autograd's backward (`convolution_backward`) chooses its kernel by the same rule, so the
gradients still go through `slow_conv3d`: slow, and contiguous, which takes every earlier
layer's backward off channels-last. `PointwiseConvFunction` keeps the oneDNN forward and
computes the backward as what a 1 x 1 x 1 convolution is, a matrix product over the
channels of every position (channels-last tensors are already rows of channels):

- input gradient: output-gradient rows times the weight (per group);
- weight gradient: output-gradient rows transposed times input rows (per group);
- bias gradient: the sum of the output-gradient rows.

Only `layers.Conv3d` uses it, and only where PyTorch itself would take `slow_conv3d`
(`takes_slow_path`): wherever PyTorch picks oneDNN (a batch of 16 or more, more than one
thread) its own backward runs and the values stay PyTorch's bits.
"""
from __future__ import annotations

import torch

from .kernels import rows_of

__all__ = ["PointwiseConvFunction", "takes_slow_path"]

SLOW_BELOW_BATCH = 16  # PyTorch's rule (`ConvParams::use_mkldnn` in ATen's Convolution.cpp)


def takes_slow_path(x: torch.Tensor, conv: torch.nn.Conv3d) -> bool:
    """Whether PyTorch's CPU convolution would run this 1 x 1 x 1 convolution's backward in
    `slow_conv3d`: unit kernel and stride, no padding, one thread, a batch under 16."""
    return (all(k == 1 for k in conv.kernel_size) and all(s == 1 for s in conv.stride)
            and all(p == 0 for p in conv.padding) and x.shape[0] < SLOW_BELOW_BATCH
            and torch.get_num_threads() == 1)


class PointwiseConvFunction(torch.autograd.Function):
    """`torch.mkldnn_convolution` of a 1 x 1 x 1 kernel (any groups) with the matrix-product backward above."""

    @staticmethod
    def forward(ctx, x, weight, bias, groups):
        ctx.save_for_backward(x, weight)
        ctx.groups, ctx.has_bias = groups, bias is not None
        return torch.mkldnn_convolution(x, weight, bias, [0, 0, 0], [1, 1, 1], [1, 1, 1], groups)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        g = ctx.groups
        c_out, c_in_group = weight.shape[:2]
        w = weight.reshape(g, c_out // g, c_in_group)                     # groups x out x in
        dy = rows_of(grad).reshape(-1, g, c_out // g).transpose(0, 1)     # groups x rows x out
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            dx = torch.bmm(dy, w).transpose(0, 1).reshape(-1, g * c_in_group)  # rows x in
            B, _, T, H, W = x.shape
            grad_x = dx.reshape(B, T, H, W, -1).permute(0, 4, 1, 2, 3)     # channels-last
        if ctx.needs_input_grad[1]:
            xr = rows_of(x.detach()).reshape(-1, g, c_in_group).transpose(0, 1)  # groups x rows x in
            grad_w = torch.bmm(dy.transpose(1, 2), xr).reshape(weight.shape)
            grad_w = torch.empty_like(weight).copy_(grad_w)                # the weight's own layout
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = dy.sum(dim=1).reshape(-1)
        return grad_x, grad_w, grad_b, None
