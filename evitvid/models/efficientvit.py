"""EfficientViT (Cai et al., ICCV 2023) for images and video: 2D, frame-averaged, TSM and 3D.

One set of blocks builds all four (CONTRIBUTING.md, convention 2):

- `EfficientVit`: the 2D image classifier. Its `state_dict` has exactly the keys and
  shapes of timm 1.0.31's `efficientvit_*`, so timm and mit-han-lab ImageNet checkpoints
  load with `strict=True` and the logits agree with timm's (tested against timm).
- `EfficientVitFrameAvg`: the paper's first method (TSN-like, Wang et al. 2016): the 2D
  trunk on every frame, features averaged over time, then verb and noun heads. Any number
  of frames works at evaluation, whatever it was trained on.
- `EfficientVitTsm`: frame averaging with the temporal shift module (TSM, Lin, Gan and Han,
  ICCV 2019) in every residual branch: an order-aware 2D baseline of the same parameters and
  MACs, loading the same checkpoints.
- `EfficientVit3d`: the paper's second method: every Conv2d a Conv3d and every
  BatchNorm2d a BatchNorm3d (I3D), and LiteMLA's ReLU linear attention over all
  T x H x W tokens. Input B x 3 x T x H x W.

The module tree of all four is the same, name for name, so `inflate_state_dict` maps a
2D checkpoint onto a 3D model without a rename table (TSM's shifts have no parameters).

The file reads top-down like timm's `efficientvit_mit.py`: blocks, heads, models, then
one registered function per variant.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath

from .action import ActionClasses, marginal_log_probs
from .batchnorm import norm_act
from .layers import (TIME_PADDINGS, ConvSpec, GELUTanh, TimePadding, channels_last_format, is_channels_last,
                     set_conv_layout)
from .registry import register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ActLayer = Optional[Callable[..., nn.Module]]
SPEC_2D = ConvSpec(dims=2)


def to_tuple(x, n: int) -> tuple:
    """A scalar repeated into an n-tuple; a tuple or list passes through as a tuple (timm's
    `val2tuple`): per-layer settings of a block, or per-stage settings of a model."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,) * n


# ---------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------

class ConvNormAct(nn.Module):
    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            kernel_size: int = 3,
            stride: int = 1,
            groups: int = 1,
            bias: bool = False,
            norm: bool = True,
            act_layer: ActLayer = nn.ReLU,
            *,
            spec: ConvSpec = SPEC_2D,
            norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.dropout = nn.Dropout(0.0)
        self.conv = spec.conv(in_chs, out_chs, kernel_size, stride, groups=groups, bias=bias)
        self.norm = spec.batch_norm(out_chs, eps=norm_eps) if norm else nn.Identity()
        self.act = act_layer(inplace=True) if act_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return norm_act(self.norm, self.act, self.conv(self.dropout(x)))  # fused in C++ where it can be


class DSConv(nn.Module):
    """Depthwise-separable conv: depthwise k x k, then pointwise."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1,
                 bias=False, norm=True, act_layer=(nn.ReLU6, None), *, spec: ConvSpec, norm_eps: float):
        super().__init__()
        bias, norm, act = to_tuple(bias, 2), to_tuple(norm, 2), to_tuple(act_layer, 2)
        kw = dict(spec=spec, norm_eps=norm_eps)
        self.depth_conv = ConvNormAct(in_chs, in_chs, kernel_size, stride, groups=in_chs,
                                      bias=bias[0], norm=norm[0], act_layer=act[0], **kw)
        self.point_conv = ConvNormAct(in_chs, out_chs, 1, bias=bias[1], norm=norm[1], act_layer=act[1], **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class ConvBlock(nn.Module):
    """Two full k x k convs (EfficientViT-L's stem block)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, expand_ratio: float = 1,
                 bias=False, norm=True, act_layer=(nn.ReLU6, None), *, spec: ConvSpec, norm_eps: float):
        super().__init__()
        bias, norm, act = to_tuple(bias, 2), to_tuple(norm, 2), to_tuple(act_layer, 2)
        mid_chs = round(in_chs * expand_ratio)
        kw = dict(spec=spec, norm_eps=norm_eps)
        self.conv1 = ConvNormAct(in_chs, mid_chs, kernel_size, stride, bias=bias[0], norm=norm[0],
                                 act_layer=act[0], **kw)
        self.conv2 = ConvNormAct(mid_chs, out_chs, kernel_size, 1, bias=bias[1], norm=norm[1],
                                 act_layer=act[1], **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class MBConv(nn.Module):
    """Inverted residual: pointwise expand, depthwise k x k, pointwise project."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, expand_ratio: float = 6,
                 bias=False, norm=True, act_layer=(nn.ReLU6, nn.ReLU6, None), *, spec: ConvSpec, norm_eps: float):
        super().__init__()
        bias, norm, act = to_tuple(bias, 3), to_tuple(norm, 3), to_tuple(act_layer, 3)
        mid_chs = round(in_chs * expand_ratio)
        kw = dict(spec=spec, norm_eps=norm_eps)
        self.inverted_conv = ConvNormAct(in_chs, mid_chs, 1, bias=bias[0], norm=norm[0], act_layer=act[0], **kw)
        self.depth_conv = ConvNormAct(mid_chs, mid_chs, kernel_size, stride, groups=mid_chs,
                                      bias=bias[1], norm=norm[1], act_layer=act[1], **kw)
        self.point_conv = ConvNormAct(mid_chs, out_chs, 1, bias=bias[2], norm=norm[2], act_layer=act[2], **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(self.inverted_conv(x)))


class FusedMBConv(nn.Module):
    """Fused inverted residual: full k x k expand, pointwise project."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, expand_ratio: float = 6,
                 bias=False, norm=True, act_layer=(nn.ReLU6, None), *, spec: ConvSpec, norm_eps: float):
        super().__init__()
        bias, norm, act = to_tuple(bias, 2), to_tuple(norm, 2), to_tuple(act_layer, 2)
        mid_chs = round(in_chs * expand_ratio)
        kw = dict(spec=spec, norm_eps=norm_eps)
        self.spatial_conv = ConvNormAct(in_chs, mid_chs, kernel_size, stride, bias=bias[0], norm=norm[0],
                                        act_layer=act[0], **kw)
        self.point_conv = ConvNormAct(mid_chs, out_chs, 1, bias=bias[1], norm=norm[1], act_layer=act[1], **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.spatial_conv(x))


class LiteMLA(nn.Module):
    """Lightweight multi-scale ReLU linear attention over every token of the input.

    Tokens are all positions of the feature map: H x W in 2D, T x H x W in 3D. Multi-scale
    tokens come from depthwise `scales` x `scales` aggregation of q, k, v (in 3D the
    aggregation kernel is inflated in time like every other conv).

    The attention itself runs in fp32 (fp64 for a float64 model) with autocast off: ReLU linear attention divides by
    a sum over all tokens, which overflows or loses precision in fp16/bf16. When there
    are no more tokens than the head dimension the N x N (quadratic) form is cheaper and
    is used, as in the mit-han-lab reference; both forms compute the same function.

    `eps` guards that division per frame: over T x H x W tokens the sum is T times the
    sum over one frame's H x W, so 3D adds `eps * T`. With a constant `eps` a clip of T
    identical frames would not give the 2D output (the error is 1e-4 relative on B1,
    the same in float64, so it is not rounding); with `eps * T` it does, and 2D (T = 1)
    is unchanged, timm's own formula.
    """

    def __init__(self, in_chs: int, out_chs: int, heads_ratio: float = 1.0, dim: int = 8,
                 norm_layer=(False, True), act_layer=(None, None), scales: Sequence[int] = (5,),
                 eps: float = 1e-5, *, spec: ConvSpec, norm_eps: float):
        super().__init__()
        self.eps = eps
        self.dim = dim
        heads = int(in_chs // dim * heads_ratio)
        total_dim = heads * dim
        kw = dict(spec=spec, norm_eps=norm_eps)
        self.qkv = ConvNormAct(in_chs, 3 * total_dim, 1, norm=norm_layer[0], act_layer=act_layer[0], **kw)
        self.aggreg = nn.ModuleList([
            nn.Sequential(
                spec.conv(3 * total_dim, 3 * total_dim, scale, groups=3 * total_dim),
                spec.conv(3 * total_dim, 3 * total_dim, 1, groups=3 * heads),
            )
            for scale in scales
        ])
        self.kernel_func = nn.ReLU(inplace=False)
        self.proj = ConvNormAct(total_dim * (1 + len(scales)), out_chs, 1, norm=norm_layer[1],
                                act_layer=act_layer[1], **kw)

    def _attn(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, frames: int = 1) -> torch.Tensor:
        """q, k, v: B x heads x N x dim in fp32, q and k already through the kernel function;
        N = `frames` x H x W tokens."""
        eps = self.eps * frames
        if q.shape[-2] > self.dim:
            v = F.pad(v, (0, 1), mode="constant", value=1.0)  # the last column sums the weights
            out = q @ (k.transpose(-1, -2) @ v)
            return out[..., :-1] / (out[..., -1:] + eps)
        att = q @ k.transpose(-1, -2)
        return (att @ v) / (att.sum(dim=-1, keepdim=True) + eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, *spatial = x.shape
        frames = spatial[0] if len(spatial) == 3 else 1
        qkv = self.qkv(x)
        qkv = torch.cat([qkv] + [op(qkv) for op in self.aggreg], dim=1)
        channels_last = is_channels_last(qkv)
        # B x heads x N x 3*dim, a view in either memory layout
        qkv = qkv.flatten(2).transpose(1, 2).unflatten(2, (-1, 3 * self.dim)).transpose(1, 2)
        q, k, v = qkv.chunk(3, dim=-1)
        dtype = v.dtype
        attn_dtype = torch.promote_types(dtype, torch.float32)  # fp16/bf16 up to fp32; fp32 and fp64 kept
        q, k, v = self.kernel_func(q.to(attn_dtype)), self.kernel_func(k.to(attn_dtype)), v.to(attn_dtype)
        if v.device.type != "meta":
            with torch.autocast(device_type=v.device.type, enabled=False):
                out = self._attn(q, k, v, frames)
        else:
            out = self._attn(q, k, v, frames)
        out = out.to(dtype)
        if channels_last:  # B x N x C in memory, so the projection reads it without a copy
            out = out.transpose(1, 2).flatten(2).transpose(1, 2)
        else:
            out = out.transpose(-1, -2).flatten(1, 2)
        return self.proj(out.unflatten(2, spatial))


def temporal_shift(x: torch.Tensor, frames: int, fold: int) -> torch.Tensor:
    """TSM's shift (Lin, Gan and Han, ICCV 2019) of (B*T) x C x H x W features, each clip's `frames`
    consecutive in the batch: channels [0, fold) move one frame back in time (frame t gets frame
    t+1's), channels [fold, 2*fold) one frame forward (frame t gets frame t-1's), the rest stay;
    where a clip has no such frame (its last, its first) they are zeros, never a neighbouring clip's.

    No parameters and no arithmetic: copies only, out of place (ONNX traces it; writes into
    slices of a new tensor did not export). A channels-last input is shifted as B x T x H x W x C,
    its own memory order, so the result is channels-last too; `fold` 0 returns `x` itself. The
    batch is split as (-1, frames), so a traced export keeps a dynamic batch.
    """
    if frames < 1 or x.shape[0] % frames:
        raise ValueError(f"temporal_shift: frames={frames} must be positive and divide the batch of {x.shape[0]}")
    if not 0 <= 2 * fold <= x.shape[1]:
        raise ValueError(f"temporal_shift: fold={fold} must be in [0, channels / 2] for {x.shape[1]} channels")
    if fold == 0:
        return x
    channels_last = is_channels_last(x)
    clips = x.unflatten(0, (-1, frames))  # B x T x C x H x W, a view
    if channels_last:
        clips = clips.permute(0, 1, 3, 4, 2)  # B x T x H x W x C: contiguous, a view
    dim = 4 if channels_last else 2
    time_pads = [0] * (2 * (clips.ndim - 2))  # F.pad lists the last dimension first; time is dim 1
    back = F.pad(clips.narrow(dim, 0, fold), time_pads + [-1, 1])  # drop the first frame, a zero one after
    forward = F.pad(clips.narrow(dim, fold, fold), time_pads + [1, -1])  # a zero frame first, drop the last
    out = torch.cat([back, forward, clips.narrow(dim, 2 * fold, clips.shape[dim] - 2 * fold)], dim=dim)
    if channels_last:
        out = out.permute(0, 1, 4, 2, 3)
    return out.flatten(0, 1)


class TemporalShift(nn.Module):
    """`temporal_shift` with `fold = channels // shift_div` (TSM's 1/8 each way by default), for a
    residual block's main branch (TSM's residual shift). `frames`, the clip length of the batch
    it sees, is set by `EfficientVitTsm` around each forward pass; unset, it raises rather than
    guess."""

    def __init__(self, shift_div: int = 8):
        super().__init__()
        self.shift_div = shift_div
        self.frames: Optional[int] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frames is None:
            raise RuntimeError("TemporalShift: the number of frames is not set; it runs inside EfficientVitTsm, "
                               "whose forward_features sets it")
        return temporal_shift(x, self.frames, x.shape[1] // self.shift_div)

    def extra_repr(self) -> str:
        return f"shift_div={self.shift_div}"


class ResidualBlock(nn.Module):
    """`main(x) + shortcut(x)`, or `main(x)` alone without a shortcut. `drop_path` (stochastic
    depth, timm's `DropPath`; an Identity unless the model sets a rate) drops the main branch
    of a block with a shortcut, per sample, in training. `shift` (an Identity unless the TSM
    model sets a `TemporalShift`) acts on the main branch's input only: the shortcut keeps `x`."""

    def __init__(self, main: nn.Module, shortcut: Optional[nn.Module] = None):
        super().__init__()
        self.pre_norm = nn.Identity()
        self.shift = nn.Identity()
        self.main = main
        self.shortcut = shortcut
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.main(self.shift(self.pre_norm(x)))
        if self.shortcut is not None:
            res = self.drop_path(res) + self.shortcut(x)
        return res


class EfficientVitBlock(nn.Module):
    """Global context (LiteMLA) then local information (MBConv with a depthwise conv)."""

    def __init__(self, in_chs: int, head_dim: int = 32, expand_ratio: float = 4, act_layer: ActLayer = nn.Hardswish,
                 *, spec: ConvSpec, norm_eps: float):
        super().__init__()
        kw = dict(spec=spec, norm_eps=norm_eps)
        self.context_module = ResidualBlock(
            LiteMLA(in_chs, in_chs, dim=head_dim, norm_layer=(False, True), **kw), nn.Identity())
        self.local_module = ResidualBlock(
            MBConv(in_chs, in_chs, expand_ratio=expand_ratio, bias=(True, True, False), norm=(False, False, True),
                   act_layer=(act_layer, act_layer, None), **kw),
            nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local_module(self.context_module(x))


def build_local_block(in_chs: int, out_chs: int, stride: int, expand_ratio: float, act_layer: ActLayer,
                      fewer_norm: bool = False, block_type: str = "default", *, spec: ConvSpec,
                      norm_eps: float) -> nn.Module:
    kw = dict(spec=spec, norm_eps=norm_eps)
    if expand_ratio == 1:
        cls = DSConv if block_type == "default" else ConvBlock
        return cls(in_chs, out_chs, stride=stride, bias=(True, False) if fewer_norm else False,
                   norm=(False, True) if fewer_norm else True, act_layer=(act_layer, None), **kw)
    if block_type == "default":
        return MBConv(in_chs, out_chs, stride=stride, expand_ratio=expand_ratio,
                      bias=(True, True, False) if fewer_norm else False,
                      norm=(False, False, True) if fewer_norm else True,
                      act_layer=(act_layer, act_layer, None), **kw)
    return FusedMBConv(in_chs, out_chs, stride=stride, expand_ratio=expand_ratio,
                       bias=(True, False) if fewer_norm else False,
                       norm=(False, True) if fewer_norm else True, act_layer=(act_layer, None), **kw)


class Stem(nn.Sequential):
    def __init__(self, in_chs: int, out_chs: int, depth: int, act_layer: ActLayer, block_type: str = "default",
                 *, spec: ConvSpec, norm_eps: float):
        super().__init__()
        kw = dict(spec=spec, norm_eps=norm_eps)
        self.add_module("in_conv", ConvNormAct(in_chs, out_chs, 3, stride=2, act_layer=act_layer, **kw))
        for i in range(depth):
            self.add_module(f"res{i}", ResidualBlock(
                build_local_block(out_chs, out_chs, 1, 1, act_layer, block_type=block_type, **kw), nn.Identity()))


class EfficientVitStage(nn.Module):
    """A stage of EfficientViT-B: strided MBConv, then MBConvs (stages 1-2) or EfficientViT blocks (3-4)."""

    def __init__(self, in_chs: int, out_chs: int, depth: int, act_layer: ActLayer, expand_ratio: float,
                 head_dim: int, vit_stage: bool, *, spec: ConvSpec, norm_eps: float):
        super().__init__()
        kw = dict(spec=spec, norm_eps=norm_eps)
        blocks = [ResidualBlock(
            build_local_block(in_chs, out_chs, 2, expand_ratio, act_layer, fewer_norm=vit_stage, **kw), None)]
        if vit_stage:
            blocks += [EfficientVitBlock(out_chs, head_dim, expand_ratio, act_layer, **kw) for _ in range(depth)]
        else:
            blocks += [ResidualBlock(build_local_block(out_chs, out_chs, 1, expand_ratio, act_layer, **kw),
                                     nn.Identity()) for _ in range(1, depth)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class EfficientVitLargeStage(nn.Module):
    """A stage of EfficientViT-L: fused MBConvs early, MBConvs, then EfficientViT blocks in the last stage."""

    def __init__(self, in_chs: int, out_chs: int, depth: int, act_layer: ActLayer, head_dim: int,
                 vit_stage: bool, fewer_norm: bool, *, spec: ConvSpec, norm_eps: float):
        super().__init__()
        kw = dict(spec=spec, norm_eps=norm_eps)
        block_type = "default" if fewer_norm else "fused"
        blocks = [ResidualBlock(build_local_block(
            in_chs, out_chs, 2, 24 if vit_stage else 16, act_layer, fewer_norm=vit_stage or fewer_norm,
            block_type=block_type, **kw), None)]
        if vit_stage:
            blocks += [EfficientVitBlock(out_chs, head_dim, 6, act_layer, **kw) for _ in range(depth)]
        else:
            blocks += [ResidualBlock(build_local_block(
                out_chs, out_chs, 1, 4, act_layer, fewer_norm=fewer_norm, block_type=block_type, **kw),
                nn.Identity()) for _ in range(depth)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


# ---------------------------------------------------------------------------------------
# Heads
# ---------------------------------------------------------------------------------------

def frame_mean(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The mean over frames (`dim`), summed so that a clip and the clip played backwards give
    bit-identical results: frames t and T-1-t are added first (a sum that does not depend on
    their order), then those pairs in order, then the middle frame of an odd T. A plain
    `mean` adds frames in time order, and rounding then differs between the two directions."""
    T = x.shape[dim]
    head, tail = x.narrow(dim, 0, T // 2), x.narrow(dim, T - T // 2, T // 2).flip(dim)
    total = (head + tail).sum(dim) if T > 1 else x.narrow(dim, 0, 0).sum(dim)
    if T % 2:
        total = total + x.select(dim, T // 2)
    return total / T


class ClassifierHead(nn.Module):
    """timm's EfficientViT head: 1x1 conv, global average pool, Linear-LayerNorm-act, Linear."""

    def __init__(self, in_chs: int, widths: Sequence[int], num_classes: int = 1000, dropout: float = 0.0,
                 act_layer: ActLayer = nn.Hardswish, norm_eps: float = 1e-5, *, spec: ConvSpec = SPEC_2D,
                 fold_time: bool = False):
        super().__init__()
        self.in_features = in_chs
        self.num_features = widths[-1]
        self.fold_time = fold_time
        self.in_conv = ConvNormAct(in_chs, widths[0], 1, act_layer=act_layer, spec=spec, norm_eps=norm_eps)
        self.classifier = nn.Sequential(
            nn.Linear(widths[0], widths[1], bias=False),
            nn.LayerNorm(widths[1], eps=norm_eps),
            act_layer(inplace=True) if act_layer is not None else nn.Identity(),
            nn.Dropout(dropout),
            self._fc(num_classes),
        )

    def _fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Frame averaging (`fold_time`): B x C x T x H x W -> B x T x C', each frame's features
        (the head's conv on that frame, averaged over space), before the mean over time."""
        B, C, T, H, W = x.shape
        x = self.in_conv(x.transpose(1, 2).reshape(B * T, C, H, W))
        return x.mean(dim=(2, 3)).reshape(B, T, -1)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x [T x] H x W -> B x C, averaging over time and space."""
        if self.fold_time:  # frame averaging: the head's conv runs per frame, then frames are averaged
            return frame_mean(self.frame_features(x), dim=1)
        return self.in_conv(x).flatten(2).mean(dim=2)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[:4](self._pool(x))

    def reset(self, num_classes: int) -> None:
        self.classifier[4] = self._fc(num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre_logits(x)
        return x if pre_logits else self.classifier[4](x)


class VideoLogits(NamedTuple):
    verb: torch.Tensor
    noun: torch.Tensor


class ActionLogits(NamedTuple):
    """A model with an action head: `action` its B x A logits, `verb` and `noun` the log
    marginal probabilities (`evitvid.models.action.marginal_log_probs`), which rank and
    softmax as logits do."""
    verb: torch.Tensor
    noun: torch.Tensor
    action: torch.Tensor


class VideoClassifierHead(ClassifierHead):
    """The image head with its 1000-way classifier replaced by separate verb and noun classifiers,
    or by one classifier over action classes (`actions`: the (verb, noun) pair of each class,
    AVION's head) whose softmax is marginalised into verb and noun scores.

    `classifier.0`-`classifier.3` (Linear, LayerNorm, act, dropout) keep the image head's
    names so ImageNet weights load into them; `classifier.4` is an Identity and `verb` and
    `noun` (or `action`) are new Linear layers.
    """

    def __init__(self, in_chs: int, widths: Sequence[int], num_verbs: int = 97, num_nouns: int = 300,
                 actions: Optional[Sequence[Sequence[int]]] = None, **kwargs):
        super().__init__(in_chs, widths, num_classes=0, **kwargs)
        self.num_verbs, self.num_nouns = num_verbs, num_nouns
        self.actions = ActionClasses(actions) if actions is not None else None
        if self.actions is not None:
            top_verb, top_noun = max(self.actions.verbs.tolist()), max(self.actions.nouns.tolist())
            if top_verb >= num_verbs or top_noun >= num_nouns:
                raise ValueError(f"actions: pairs name verb {top_verb} and noun {top_noun}, but the model has "
                                 f"num_verbs={num_verbs} and num_nouns={num_nouns}")
        self.reset(num_verbs, num_nouns)

    def reset(self, num_verbs: int, num_nouns: int) -> None:
        self.num_verbs, self.num_nouns = num_verbs, num_nouns
        if self.actions is not None:
            self.action = self._fc(len(self.actions))
        else:
            self.verb, self.noun = self._fc(num_verbs), self._fc(num_nouns)

    def _classify(self, x: torch.Tensor) -> Union[VideoLogits, ActionLogits]:
        if self.actions is None:
            return VideoLogits(self.verb(x), self.noun(x))
        action = self.action(x)
        return ActionLogits(marginal_log_probs(action, self.actions.verbs, self.num_verbs),
                            marginal_log_probs(action, self.actions.nouns, self.num_nouns), action)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> Union[torch.Tensor, VideoLogits, ActionLogits]:
        x = self.pre_logits(x)
        return x if pre_logits else self._classify(x)

    def classify_frames(self, features: torch.Tensor) -> Union[VideoLogits, ActionLogits]:
        """Frame averaging's last step: B x T x C' frame features (`frame_features`) -> their
        mean over time, classified (what `forward` does after `frame_features`)."""
        return self._classify(self.classifier[:4](frame_mean(features, dim=1)))


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------

def _family_defaults(family: str) -> tuple[ActLayer, float]:
    """Activation and norm eps of each family, as in timm (B: hard-swish, 1e-5; L: tanh-GELU, 1e-7)."""
    if family == "b":
        return nn.Hardswish, 1e-5
    if family == "l":
        return GELUTanh, 1e-7
    raise ValueError(f"family must be 'b' or 'l', got {family!r}")


class _EfficientVitBase(nn.Module):
    """The trunk (stem and four stages) shared by the image, frame-averaged, TSM and 3D models."""

    default_cfg: dict = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": (3, 224, 224)}

    def _build_trunk(self, family: str, in_chans: int, widths: Sequence[int], depths: Sequence[int],
                     head_dim: int, expand_ratio: float, specs: Sequence[ConvSpec]) -> None:
        if len(widths) != 5 or len(depths) != 5:
            raise ValueError(f"widths and depths need 5 entries (stem + 4 stages), got {widths} and {depths}")
        self.family = family
        self.in_chans = in_chans
        self.grad_checkpointing = False
        self.channels_last = False
        act_layer, norm_eps = _family_defaults(family)
        self._act_layer, self._norm_eps = act_layer, norm_eps
        self.stem = Stem(in_chans, widths[0], depths[0], act_layer, "default" if family == "b" else "large",
                         spec=specs[0], norm_eps=norm_eps)
        self.stages = nn.Sequential()
        self.feature_info = []
        stride, in_chs = 2, widths[0]
        for i, (w, d) in enumerate(zip(widths[1:], depths[1:])):
            kw = dict(spec=specs[i + 1], norm_eps=norm_eps)
            if family == "b":
                stage = EfficientVitStage(in_chs, w, d, act_layer, expand_ratio, head_dim, vit_stage=i >= 2, **kw)
            else:
                stage = EfficientVitLargeStage(in_chs, w, d, act_layer, head_dim, vit_stage=i >= 3,
                                               fewer_norm=i >= 2, **kw)
            self.stages.append(stage)
            stride *= 2
            in_chs = w
            self.feature_info.append(dict(num_chs=w, reduction=stride, module=f"stages.{i}"))
        self.num_features = in_chs

    def _shortcut_blocks(self) -> list[ResidualBlock]:
        """The residual blocks with a shortcut, in the order the input meets them."""
        return [m for m in self.modules() if isinstance(m, ResidualBlock) and m.shortcut is not None]

    def _set_drop_path(self, rate: float) -> None:
        """Stochastic depth on every block with a shortcut, its rate rising linearly from 0 at the
        first to `rate` at the last (timm's rule). 0 leaves the network as it was (no module)."""
        if not 0 <= rate < 1:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {rate!r}")
        self.drop_path_rate = rate
        blocks = self._shortcut_blocks()
        for i, block in enumerate(blocks):
            block_rate = rate * i / max(len(blocks) - 1, 1)
            block.drop_path = DropPath(block_rate) if block_rate > 0 else nn.Identity()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def set_channels_last(self, enable: bool = True) -> "_EfficientVitBase":
        """Keep every convolution's weights, and so its activations, channels-last (NHWC, or
        NDHWC in 3D), or back to contiguous (NCHW/NCDHW) with `enable=False`.

        Inputs are converted to the same layout on entry. On CPU, oneDNN's depthwise and
        pointwise convolutions are much faster channels-last (`python -m evitvid bench
        --only channels_last`). Values, parameters and `state_dict` keys are unchanged;
        only the memory layout moves. Returns the model, like `nn.Module.to`.
        """
        set_conv_layout(self, enable)
        self.channels_last = enable
        return self

    def _to_layout(self, x: torch.Tensor) -> torch.Tensor:
        """The input in the layout of the weights (see `set_channels_last`)."""
        return x.contiguous(memory_format=channels_last_format(x.ndim)) if self.channels_last else x

    def get_classifier(self) -> nn.Module:
        return self.head.classifier[4]

    def _checkpoint(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """`fn(x)`, its activations recomputed in the backward pass rather than kept."""
        return torch.utils.checkpoint.checkpoint(fn, x, use_reentrant=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self._to_layout(x))
        if self.grad_checkpointing and torch.is_grad_enabled():
            for stage in self.stages:
                x = self._checkpoint(stage, x)
            return x
        return self.stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False):
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor):
        return self.forward_head(self.forward_features(x))


class EfficientVit(_EfficientVitBase):
    """2D EfficientViT image classifier, timm-compatible (`family` 'b' or 'l')."""

    def __init__(self, *, family: str, widths: Sequence[int], depths: Sequence[int], head_dim: int,
                 head_widths: Sequence[int], expand_ratio: float = 4, in_chans: int = 3, num_classes: int = 1000,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0):
        super().__init__()
        self._build_trunk(family, in_chans, widths, depths, head_dim, expand_ratio, [SPEC_2D] * 5)
        self._set_drop_path(drop_path_rate)
        self.num_classes = num_classes
        self.head = ClassifierHead(self.num_features, head_widths, num_classes, drop_rate, self._act_layer,
                                   self._norm_eps)
        self.head_hidden_size = self.head.num_features

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes)


class _EfficientVitVideo(_EfficientVitBase):
    """Shared by the frame-averaged, TSM and 3D models: verb and noun heads, B x 3 x T x H x W input."""

    def _build_video_head(self, head_widths: Sequence[int], num_verbs: int, num_nouns: int, drop_rate: float,
                          spec: ConvSpec, fold_time: bool, actions: Optional[Sequence[Sequence[int]]]) -> None:
        self.num_verbs, self.num_nouns = num_verbs, num_nouns
        self.head = VideoClassifierHead(self.num_features, head_widths, num_verbs, num_nouns, actions,
                                        dropout=drop_rate, act_layer=self._act_layer, norm_eps=self._norm_eps,
                                        spec=spec, fold_time=fold_time)
        self.head_hidden_size = self.head.num_features

    @property
    def actions(self) -> Optional[ActionClasses]:
        """The action classes of an action head (AVION's), None for separate verb and noun heads."""
        return self.head.actions

    def get_classifier(self) -> nn.ModuleDict:
        if self.actions is not None:
            return nn.ModuleDict({"action": self.head.action})
        return nn.ModuleDict({"verb": self.head.verb, "noun": self.head.noun})

    def reset_classifier(self, num_verbs: int, num_nouns: Optional[int] = None) -> None:
        self.num_verbs = num_verbs
        self.num_nouns = num_verbs if num_nouns is None else num_nouns
        self.head.reset(self.num_verbs, self.num_nouns)

    @staticmethod
    def _check_video(x: torch.Tensor) -> None:
        if x.ndim != 5:
            raise ValueError(f"video models take B x C x T x H x W input, got shape {tuple(x.shape)}")


class _EfficientVitPerFrame(_EfficientVitVideo):
    """Shared by frame averaging and TSM: the 2D trunk on every frame (time folded into the batch),
    features averaged over time in the head (`VideoClassifierHead` with `fold_time`), then verb and
    noun heads. Any number of frames works at evaluation, whatever it was trained on."""

    def __init__(self, *, family: str, widths: Sequence[int], depths: Sequence[int], head_dim: int,
                 head_widths: Sequence[int], expand_ratio: float = 4, in_chans: int = 3, num_verbs: int = 97,
                 num_nouns: int = 300, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 actions: Optional[Sequence[Sequence[int]]] = None):
        super().__init__()
        self._build_trunk(family, in_chans, widths, depths, head_dim, expand_ratio, [SPEC_2D] * 5)
        self._set_drop_path(drop_path_rate)
        self._build_video_head(head_widths, num_verbs, num_nouns, drop_rate, SPEC_2D, fold_time=True,
                               actions=actions)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x T x H x W -> B x C' x T x H' x W' (each frame through the 2D trunk)."""
        self._check_video(x)
        B, C, T, H, W = x.shape
        x = super().forward_features(x.transpose(1, 2).reshape(B * T, C, H, W))
        return x.reshape(B, T, *x.shape[1:]).transpose(1, 2)


class EfficientVitFrameAvg(_EfficientVitPerFrame):
    """The 2D trunk on each frame; features are averaged over time before the classifier."""

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x T x H x W -> B x T x C': each frame's features, computed alone (the frames of
        one clip never meet before `classify_frames` averages them)."""
        return self.head.frame_features(self.forward_features(x))

    def classify_frames(self, features: torch.Tensor) -> VideoLogits:
        """B x T x C' frame features -> verb and noun logits of their average: with
        `frame_features`, exactly `forward`, split where a clip's frames first meet."""
        return self.head.classify_frames(features)


class EfficientVitTsm(_EfficientVitPerFrame):
    """Frame averaging with TSM's residual shift (Lin, Gan and Han, ICCV 2019): an order-aware 2D
    baseline at frame averaging's cost.

    Before the main branch of every residual block with a shortcut (the stem's and stages'
    DSConv/ConvBlock, MBConv and FusedMBConv blocks, and both branches of each EfficientViT block,
    attention and MBConv), `channels // shift_div` channels move one frame back in time and as
    many one frame forward (`temporal_shift`, zeros at the clip's ends); the shortcut keeps the
    unshifted features. The shift has no parameters and no multiply-adds, so the state dict is
    frame averaging's, key for key (a 2D or frame-averaged checkpoint loads strictly), and so are
    the parameter and MAC counts. Features are averaged over frames as frame averaging does
    (TSM's average consensus). A `shift_div` above the widest stage's channels shifts nothing
    (`fold` 0 everywhere): frame averaging exactly.

    Unlike frame averaging, a frame's features depend on its neighbours, so there is no
    `frame_features` of frames computed alone.
    """

    def __init__(self, *, family: str, widths: Sequence[int], depths: Sequence[int], head_dim: int,
                 head_widths: Sequence[int], expand_ratio: float = 4, in_chans: int = 3, num_verbs: int = 97,
                 num_nouns: int = 300, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 actions: Optional[Sequence[Sequence[int]]] = None, shift_div: int = 8):
        super().__init__(family=family, widths=widths, depths=depths, head_dim=head_dim, head_widths=head_widths,
                         expand_ratio=expand_ratio, in_chans=in_chans, num_verbs=num_verbs, num_nouns=num_nouns,
                         drop_rate=drop_rate, drop_path_rate=drop_path_rate, actions=actions)
        if isinstance(shift_div, bool) or not isinstance(shift_div, int) or shift_div < 2:
            raise ValueError(f"shift_div must be an integer >= 2 (channels // shift_div move each way), "
                             f"got {shift_div!r}")
        self.shift_div = shift_div
        self._clip_frames: Optional[int] = None  # frames per clip of the forward pass under way
        for block in self._shortcut_blocks():
            block.shift = TemporalShift(shift_div)

    @contextmanager
    def _frames(self, frames: int) -> Iterator[None]:
        """Every shift set to clips of `frames` frames for the duration, then restored (unset
        outside a forward pass, so a shift called on its own raises)."""
        shifts = [m for m in self.modules() if isinstance(m, TemporalShift)]
        before = self._clip_frames
        self._clip_frames = frames
        for m in shifts:
            m.frames = frames
        try:
            yield
        finally:
            self._clip_frames = before
            for m in shifts:
                m.frames = before

    def _checkpoint(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        # the backward pass recomputes `fn` after `forward_features` has returned: it sets the frames again
        frames = self._clip_frames

        def run(x: torch.Tensor) -> torch.Tensor:
            with self._frames(frames):
                return fn(x)
        return super()._checkpoint(run, x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x T x H x W -> B x C' x T x H' x W' (the 2D trunk on every frame, the shifts
        exchanging channels between neighbouring frames)."""
        self._check_video(x)
        with self._frames(x.shape[2]):
            return super().forward_features(x)


class EfficientVit3d(_EfficientVitVideo):
    """EfficientViT with every convolution and batch norm in 3D and attention over T x H x W tokens.

    `time_kernels` and `time_strides` hold one entry for the stem and one per stage
    (default: 3 x k x k kernels everywhere, no time stride). `time_padding` is how the
    time axis is padded at the clip's ends: "zeros" (as I3D) or "replicate" (the first
    and last frames repeated). With zeros, a clip of identical frames does not stay
    identical: the first and last frames of every 3-tap conv see one zero frame, so their
    features differ from the middle frames' and the output differs from the 2D model's
    on that frame; with replicate, it equals it.

    The paper's code builds its 3D model otherwise (`efficientvit_b0_3d_paper`): `time_kernels`
    "cubic" (every k x k kernel k x k x k, LiteMLA's 5 x 5 aggregation 5 x 5 x 5) and
    `time_strides` 2 (time strided wherever space is), so a 16-frame clip keeps 8, 4, 2, 1
    and 1 time steps after the stem and stages 1-4 (`time_steps`): the attention of stages
    3 and 4 sees one time step. Two settings make its other differences: `attention_eps`
    (mit-han-lab's 1e-15 against timm's 1e-5) and `residual_bn_momentum`: its residual block
    runs the main branch twice per forward (once for an unused variable), so in training
    the batch norms there update their running statistics twice with the same batch, which
    is one update at momentum 1 - (1 - 0.1)^2 = 0.19. `actions` gives it AVION's action head.
    `drop_path_rate` is stochastic depth (0: none).
    """

    def __init__(self, *, family: str, widths: Sequence[int], depths: Sequence[int], head_dim: int,
                 head_widths: Sequence[int], expand_ratio: float = 4, in_chans: int = 3, num_verbs: int = 97,
                 num_nouns: int = 300, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 time_kernels: Union[int, str, Sequence[Union[int, str]]] = 3,
                 time_strides: Union[int, Sequence[int]] = 1, time_padding: TimePadding = "zeros",
                 attention_eps: float = 1e-5, residual_bn_momentum: Optional[float] = None,
                 actions: Optional[Sequence[Sequence[int]]] = None):
        super().__init__()
        if time_padding not in TIME_PADDINGS:
            raise ValueError(f"time_padding must be one of {TIME_PADDINGS}, got {time_padding!r}")
        kernels, strides = to_tuple(time_kernels, 5), to_tuple(time_strides, 5)
        for name, values in (("time_kernels", kernels), ("time_strides", strides)):
            if len(values) != 5:
                raise ValueError(f"{name} needs one entry for the stem and one per stage (5), got {values}")
        base = ConvSpec(dims=3, time_padding=time_padding)
        specs = []
        for i, (k, s) in enumerate(zip(kernels, strides)):
            try:
                specs.append(base.with_time(k, s))
            except ValueError as e:
                raise ValueError(f"time_kernels/time_strides entry {i} ({'stem' if i == 0 else f'stage {i}'}): {e}")
        self.time_kernels, self.time_strides, self.time_padding = kernels, strides, time_padding
        self._build_trunk(family, in_chans, widths, depths, head_dim, expand_ratio, specs)
        self._set_drop_path(drop_path_rate)
        if not attention_eps > 0:
            raise ValueError(f"attention_eps must be > 0, got {attention_eps!r}")
        for module in self.modules():
            if isinstance(module, LiteMLA):
                module.eps = attention_eps
        if residual_bn_momentum is not None:
            if not 0 < residual_bn_momentum <= 1:
                raise ValueError(f"residual_bn_momentum must be in (0, 1], got {residual_bn_momentum!r}")
            for block in self._shortcut_blocks():
                for module in block.main.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm):
                        module.momentum = residual_bn_momentum
        self._build_video_head(head_widths, num_verbs, num_nouns, drop_rate, base, fold_time=False,
                               actions=actions)

    def time_steps(self, num_frames: int) -> tuple[int, ...]:
        """The time steps a clip of `num_frames` keeps after the stem and after each stage."""
        steps, t = [], num_frames
        for stride in self.time_strides:
            t = (t - 1) // stride + 1  # a 'same'-padded odd kernel at this stride
            steps.append(t)
        return tuple(steps)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_video(x)
        return super().forward_features(x)


# ---------------------------------------------------------------------------------------
# Variants: the architecture of each size, registered as 2D, frame-averaged, TSM and 3D
# ---------------------------------------------------------------------------------------

_VARIANTS: dict[str, dict] = {
    "b0": dict(family="b", widths=(8, 16, 32, 64, 128), depths=(1, 2, 2, 2, 2),
               head_dim=16, head_widths=(1024, 1280)),
    "b1": dict(family="b", widths=(16, 32, 64, 128, 256), depths=(1, 2, 3, 3, 4),
               head_dim=16, head_widths=(1536, 1600)),
    "b2": dict(family="b", widths=(24, 48, 96, 192, 384), depths=(1, 3, 4, 4, 6),
               head_dim=32, head_widths=(2304, 2560)),
    "b3": dict(family="b", widths=(32, 64, 128, 256, 512), depths=(1, 4, 6, 6, 9),
               head_dim=32, head_widths=(2304, 2560)),
    "l1": dict(family="l", widths=(32, 64, 128, 256, 512), depths=(1, 1, 1, 6, 6),
               head_dim=32, head_widths=(3072, 3200)),
    "l2": dict(family="l", widths=(32, 64, 128, 256, 512), depths=(1, 2, 2, 8, 8),
               head_dim=32, head_widths=(3072, 3200)),
    "l3": dict(family="l", widths=(64, 128, 256, 512, 1024), depths=(1, 2, 2, 8, 8),
               head_dim=32, head_widths=(6144, 6400)),
}


# The 3D model as the paper's code builds it (github shenzeng1234/efficientvit_avion, whose training
# script builds B0; B1 follows the same rules). Its head is B0's ImageNet head (1024, 1280) in the
# script, hard-coded; B1 takes B1's own, so that ImageNet weights carry over as they do for B0.
PAPER_3D = dict(time_kernels="cubic", time_strides=2, attention_eps=1e-15, residual_bn_momentum=1 - (1 - 0.1) ** 2)
PAPER_SIZES = ("b0", "b1")


def _register_variants() -> None:
    for size, args in _VARIANTS.items():
        image = f"efficientvit_{size}"
        register_model(image, EfficientVit, args, kind="image", image_model=image)
        register_model(f"{image}_frameavg", EfficientVitFrameAvg, args, kind="frameavg", image_model=image)
        register_model(f"{image}_tsm", EfficientVitTsm, args, kind="tsm", image_model=image)
        register_model(f"{image}_3d", EfficientVit3d, args, kind="3d", image_model=image)
        if size in PAPER_SIZES:
            register_model(f"{image}_3d_paper", EfficientVit3d, {**args, **PAPER_3D}, kind="3d", image_model=image,
                           variant="the paper's code")


_register_variants()
