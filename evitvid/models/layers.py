"""Convolutions and norms that are 2D or 3D by one switch.

The 2D and 3D EfficientViT share every block (CONTRIBUTING.md, convention 2): a block asks a
`ConvSpec` for its convolutions and batch norms, and the spec decides whether they are
`Conv2d`/`BatchNorm2d` or `Conv3d`/`BatchNorm3d`. Module names are the same either way,
so a 2D checkpoint maps onto the 3D model key for key and inflation (I3D, Carreira and
Zisserman 2017) needs no rename table.

In 3D a spatial k x k kernel becomes `time_kernel x k x k` (or k x k x k with `cubic`, as
the paper's code builds it) and a 1 x 1 kernel stays 1 x 1 x 1; a spatially strided
convolution is strided `time_stride` in time.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import kernels
from .batchnorm import BatchNorm2d, BatchNorm3d
from .depthwise import DepthwiseConvFunction
from .pointwise import PointwiseConvFunction, takes_slow_path

TimePadding = Literal["zeros", "replicate"]
TIME_PADDINGS: tuple[str, ...] = ("zeros", "replicate")

def channels_last_format(ndim: int) -> torch.memory_format:
    """The channels-last memory format of a 4D (NHWC) or 5D (NDHWC) tensor."""
    if ndim not in (4, 5):
        raise ValueError(f"channels-last needs a 4D or 5D tensor, got {ndim}D")
    return torch.channels_last if ndim == 4 else torch.channels_last_3d


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4D/5D tensor is laid out channels-last (and not also plain contiguous)."""
    return x.ndim in (4, 5) and x.is_contiguous(memory_format=channels_last_format(x.ndim)) \
        and not x.is_contiguous()


def set_conv_layout(model: nn.Module, channels_last: bool) -> nn.Module:
    """Every Conv2d/Conv3d weight of `model` channels-last (NHWC/NDHWC) or contiguous, in place.

    A convolution's output follows its weight's layout in oneDNN and cuDNN, so the whole
    network's activations follow. Values are unchanged; returns `model`.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            w = module.weight.data
            fmt = channels_last_format(w.ndim) if channels_last else torch.contiguous_format
            # A fresh copy with the format's own strides. `contiguous(memory_format=)` would keep
            # a depthwise kernel (C x 1 x k x k x k) as it is, since with one input channel both
            # layouts hold the same bytes, but oneDNN reads the layout from the strides and would
            # run such a convolution in the other format.
            module.weight.data = torch.empty_like(w, memory_format=fmt).copy_(w)
    return model


class GELUTanh(nn.Module):
    """GELU with the tanh approximation (EfficientViT-L's activation); `inplace` is accepted and ignored."""

    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


class _FastConv:
    """The CPU fast paths shared by `Conv2d` and `Conv3d`.

    - Training a depthwise kernel: `DepthwiseConvFunction`'s gradients (input gradient by
      a forward convolution, weight gradient by a C++ kernel; `evitvid.models.depthwise`);
      these are among the models' most expensive layers to train.
    - (3D only) Every other convolution: oneDNN directly, at any batch size. PyTorch's
      heuristic sends to its native `slow_conv3d` a batch of one with few input channels (the
      stem's 3 colours), and, on one thread, every 1 x 1 x 1 convolution (dense, or grouped
      as in LiteMLA's aggregation) of a batch under 16. That path is an order of magnitude
      slower (inference at batch 1, `python -m evitvid bench`), its backward more so, and its
      output is contiguous, so every layer after it leaves channels-last: a training step of
      the 3D B0 at 4 x 64 x 64 on one thread took longer at batch 8 than at batch 16.
      Autograd's backward chooses by the same rule, so training such a convolution takes
      `PointwiseConvFunction`'s backward (`evitvid.models.pointwise`). Where the heuristic
      already picks oneDNN (a batch of 16 or more, or more than one thread) nothing changes,
      values included.

    Both are taken only on CPU without autocast, tracing or compiling; everything else
    (CUDA, autocast, export, torch.compile) takes PyTorch's own path. Parameters and
    `state_dict` are `nn.Conv2d`'s / `nn.Conv3d`'s.
    """

    def _plain_cpu(self, x: torch.Tensor) -> bool:
        return (kernels.fast_paths_enabled() and x.device.type == "cpu" and self.padding_mode == "zeros"
                and isinstance(self.padding, tuple) and not torch.is_autocast_enabled("cpu")
                and not torch.jit.is_tracing() and not torch.compiler.is_compiling())

    def _fast_depthwise(self, x: torch.Tensor) -> bool:
        return (self._plain_cpu(x) and x.dtype in (torch.float32, torch.float64) and torch.is_grad_enabled()
                and (x.requires_grad or self.weight.requires_grad)
                and self.groups == self.in_channels == self.out_channels > 1 and all(d == 1 for d in self.dilation)
                and (any(s != 1 for s in self.stride) or all(p < k for p, k in zip(self.padding, self.kernel_size))))

    def _onednn(self, x: torch.Tensor) -> bool:
        return (self._plain_cpu(x) and x.dtype == torch.float32 and x.ndim == 5
                and torch.backends.mkldnn.is_available())

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
        if self._fast_depthwise(x):
            return DepthwiseConvFunction.apply(x, weight, bias, self.stride, self.padding)
        if self._onednn(x):
            if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad) and takes_slow_path(x, self):
                return PointwiseConvFunction.apply(x, weight, bias, self.groups)
            return torch.mkldnn_convolution(x, weight, bias, self.padding, self.stride, self.dilation, self.groups)
        return super()._conv_forward(x, weight, bias)


class Conv2d(_FastConv, nn.Conv2d):
    """`nn.Conv2d` with the CPU fast path for training depthwise kernels (`_FastConv`)."""


class Conv3d(_FastConv, nn.Conv3d):
    """`nn.Conv3d` with the CPU fast paths of `_FastConv`: training depthwise kernels, and
    the others on oneDNN."""


class TimeReplicateConv3d(Conv3d):
    """Conv3d whose time padding repeats the first and last frame instead of adding zeros.

    Space is still zero padded, exactly like the 2D convolution it was inflated from. With
    replicated time padding a clip of identical frames stays identical through every
    layer, so an inflated model sees it as the 2D model sees one frame.
    """

    def __init__(self, *args, time_pad: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.time_pad = time_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_pad:
            x = F.pad(x, (0, 0, 0, 0, self.time_pad, self.time_pad), mode="replicate")
        return super().forward(x)


@dataclass(frozen=True)
class ConvSpec:
    """How a block builds its convolutions: `dims=2`, or `dims=3` with a time kernel and stride.

    `time_kernel` applies to every convolution whose spatial kernel is larger than 1, or, with
    `cubic`, each such convolution takes its spatial size in time too (3 x 3 x 3, and 5 x 5 x 5
    for LiteMLA's aggregation); `time_stride` applies to every convolution that is strided in
    space.
    """

    dims: int = 2
    time_kernel: int = 1
    time_stride: int = 1
    time_padding: TimePadding = "zeros"
    cubic: bool = False

    def __post_init__(self) -> None:
        if self.dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {self.dims!r}")
        if self.time_kernel < 1 or self.time_kernel % 2 == 0:
            raise ValueError(f"time kernel must be a positive odd integer, got {self.time_kernel!r}")
        if self.time_stride < 1:
            raise ValueError(f"time stride must be a positive integer, got {self.time_stride!r}")
        if self.time_padding not in TIME_PADDINGS:
            raise ValueError(f"time_padding must be one of {TIME_PADDINGS}, got {self.time_padding!r}")

    def with_time(self, time_kernel: int | str, time_stride: int) -> "ConvSpec":
        """The spec with a time kernel (an odd integer, or "cubic") and a time stride."""
        if time_kernel == "cubic":
            return replace(self, time_kernel=1, cubic=True, time_stride=time_stride)
        if not isinstance(time_kernel, int):
            raise ValueError(f"time kernel must be a positive odd integer or 'cubic', got {time_kernel!r}")
        return replace(self, time_kernel=time_kernel, cubic=False, time_stride=time_stride)

    def conv(
            self,
            in_chs: int,
            out_chs: int,
            kernel_size: int,
            stride: int = 1,
            groups: int = 1,
            bias: bool = False,
    ) -> nn.Module:
        """A 'same'-padded convolution (odd kernels only, as in EfficientViT)."""
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel size must be odd, got {kernel_size}")
        pad = kernel_size // 2
        if self.dims == 2:
            return Conv2d(in_chs, out_chs, kernel_size, stride, padding=pad, groups=groups, bias=bias)
        kt = (kernel_size if self.cubic else self.time_kernel) if kernel_size > 1 else 1
        st = self.time_stride if stride > 1 else 1
        kernel, strides = (kt, kernel_size, kernel_size), (st, stride, stride)
        if self.time_padding == "replicate" and kt > 1:
            return TimeReplicateConv3d(
                in_chs, out_chs, kernel, strides, padding=(0, pad, pad), groups=groups, bias=bias,
                time_pad=kt // 2)
        return Conv3d(in_chs, out_chs, kernel, strides, padding=(kt // 2, pad, pad), groups=groups, bias=bias)

    def batch_norm(self, num_features: int, eps: float = 1e-5) -> nn.Module:
        cls = BatchNorm2d if self.dims == 2 else BatchNorm3d
        return cls(num_features, eps=eps)
