"""The models and inputs a bench row runs, built from a key.

Keys: "evitvid:NAME" (evitvid's registry), "timm:NAME" (timm's 2D model), "timm-frames:NAME"
(timm's 2D model on every frame, `PerFrame`: the reference doing the frame-averaged model's
work) and "torchvision:NAME" (a video model, weights=None). Every model and input is in one
memory layout (`apply_layout`, `make_input`); GMACs are counted on the meta device where the
model allows it (`model_gmacs`).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYOUTS = ("channels_last", "contiguous")  # how a measured model's activations and inputs are laid out


class PerFrame(nn.Module):
    """An image classifier on every frame of B x C x T x H x W clips, logits averaged over time.

    The reference for frame averaging: the same trunk work (T folded into the batch); the
    only difference is where the average is taken (logits here, features in evitvid).
    """

    def __init__(self, image_model: nn.Module):
        super().__init__()
        self.image_model = image_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        logits = self.image_model(x.transpose(1, 2).reshape(B * T, C, H, W))
        return logits.reshape(B, T, -1).mean(dim=1)


def apply_layout(model: nn.Module, layout: str) -> nn.Module:
    """Any model's convolutions channels-last or contiguous (`runtime.set_memory_format`)."""
    from evitvid.runtime import set_memory_format
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return set_memory_format(model, layout, torch.device("cpu"))


def make_input(batch: int, shape: Sequence[int], layout: str) -> torch.Tensor:
    """A random batch in `layout` (clips NDHWC, images NHWC when channels-last)."""
    from evitvid.models.layers import channels_last_format
    x = torch.randn(batch, *shape)
    return x.contiguous(memory_format=channels_last_format(x.ndim)) if layout == "channels_last" else x


def model_title(key: str) -> str:
    """A model key as a reader calls it: "evitvid:efficientvit_b1_3d" -> "3D B1 (evitvid)",
    "timm-frames:efficientvit_b1" -> "timm 2D B1 on each frame", "torchvision:r3d_18" ->
    "torchvision r3d_18"; a bare registered name by its title ("3D B1")."""
    from evitvid.models.registry import get_model_entry, list_models
    source, _, name = key.rpartition(":")
    title = get_model_entry(name).title if name in list_models() else name
    return {"": title, "evitvid": f"{title} (evitvid)", "timm": f"timm {title}",
            "timm-frames": f"timm {title} on each frame"}.get(source, f"{source} {name}")


def build_model(key: str, layout: Optional[str] = None, **kwargs: Any) -> nn.Module:
    """A model in eval mode from its key: "evitvid:NAME", "timm-frames:NAME" (timm's 2D model per
    frame), "timm:NAME" (timm's 2D model) or "torchvision:NAME" (a video model, weights=None);
    its convolutions in `layout` when given."""
    source, _, name = key.partition(":")
    if source == "evitvid":
        from evitvid.models.registry import create_model
        model = create_model(name, **kwargs)
    elif source in ("timm", "timm-frames"):
        import timm
        model = timm.create_model(name, **kwargs)
        model = PerFrame(model) if source == "timm-frames" else model
    elif source == "torchvision":
        import torchvision.models.video as tvv
        model = getattr(tvv, name)(weights=None, **kwargs)
    else:
        raise ValueError(f"model key must start with evitvid:, timm:, timm-frames: or torchvision:, got {key!r}")
    return (apply_layout(model, layout) if layout else model).eval()


def model_gmacs(key: str, input_shape: Sequence[int]) -> tuple[float, float, str]:
    """(params in M, GMACs per clip, how counted): on the meta device, else on real tensors."""
    from evitvid.models.flops import count_gmacs, count_params
    try:
        with torch.device("meta"):
            model = build_model(key)
        return count_params(model) / 1e6, count_gmacs(model, input_shape), "meta"
    except Exception:  # e.g. a model calling .item() or building tensors from data in forward
        model = build_model(key)
        return count_params(model) / 1e6, count_gmacs(model, input_shape), "real tensors"


def _first_tensor(out: Any) -> torch.Tensor:
    """The logits of a model's output (the first of a tuple: verb and noun)."""
    return out[0] if isinstance(out, tuple) else out


def _loss(out: Any) -> torch.Tensor:
    """A training loss on random labels for any of the models' outputs (logits or verb/noun)."""
    outs = out if isinstance(out, tuple) else (out,)
    return sum(F.cross_entropy(o, torch.randint(o.shape[-1], (o.shape[0],))) for o in outs)


def _train_step_fn(model: nn.Module, x: torch.Tensor, fast: bool = True) -> Callable[[], None]:
    """One training step on `x` (forward, backward, AdamW), the model put in training mode.
    `fast`: as evitvid's trainer runs it (`Conv3d`'s CPU fast paths, the trainer's fused AdamW);
    otherwise PyTorch's kernels only and its default AdamW, the reference the fast paths are
    measured against."""
    from evitvid.engine.trainer import adamw
    from evitvid.models.kernels import cpu_fast_paths
    model.train()
    opt = adamw(model, 1e-4, 0.05, x.device) if fast else torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        with cpu_fast_paths(fast):
            opt.zero_grad(set_to_none=True)
            _loss(model(x)).backward()
            opt.step()
    return step
