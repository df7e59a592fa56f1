"""Model registry: `create_model(name, **kwargs)` and `list_models(pattern)`, as in timm.

Each registered name maps to a model class and the architecture arguments of its size.
Keyword arguments are checked against the class: an unknown one raises `TypeError`
listing the valid ones (never dropped silently, CONTRIBUTING.md, convention 3), and an unknown
name raises `ValueError` listing the registered names.
"""
from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch.nn as nn


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its class, its size's architecture arguments, its kind ("image",
    "frameavg", "tsm" or "3d") and the registered 2D image model its weights come from (itself
    for an image model): what image pretraining trains and inflation, frame averaging or TSM
    loads."""
    name: str
    cls: type
    arch_args: dict
    kind: str
    image_model: str
    variant: str = ""

    @property
    def title(self) -> str:
        """The model as a reader calls it: "3D B1", "frame-averaged B1", "TSM B1", "2D L1", "3D B0
        (the paper's code)"."""
        size = self.name.removeprefix("efficientvit_").split("_")[0].upper()
        return f"{_KIND_TITLES[self.kind]} {size}" + (f" ({self.variant})" if self.variant else "")

    def valid_kwargs(self) -> list[str]:
        params = inspect.signature(self.cls.__init__).parameters
        return sorted(p for p in params if p != "self" and p not in self.arch_args)


_REGISTRY: dict[str, ModelEntry] = {}


MODEL_KINDS = ("image", "frameavg", "tsm", "3d")
_KIND_TITLES = {"image": "2D", "frameavg": "frame-averaged", "tsm": "TSM", "3d": "3D"}


def register_model(name: str, cls: type, arch_args: dict, kind: str, image_model: str, variant: str = "") -> None:
    """Register `name`: `cls(**arch_args, **kwargs)`; `variant` says how it differs from the
    other models of its kind and size (its title's last words)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    if kind not in MODEL_KINDS:
        raise ValueError(f"model {name!r}: kind must be one of {MODEL_KINDS}, got {kind!r}")
    _REGISTRY[name] = ModelEntry(name, cls, dict(arch_args), kind, image_model, variant)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, e.g. `"*_3d"`."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(list_models())}") from None


def create_model(name: str, pretrained: Optional[Union[str, Path]] = None, *, inflation: str = "mean",
                 inflation_noise: float = 0.5, inflation_seed: int = 0, **kwargs: Any) -> nn.Module:
    """Build a registered model by name.

    `pretrained` is a local checkpoint (timm safetensors/.bin/.pth, or a mit-han-lab `.pt`)
    or `"timm:efficientvit_b1.r288_in1k"` (downloaded through the Hugging Face hub when
    online). A 2D checkpoint is loaded as is into 2D, frame-averaged and TSM models and
    inflated into 3D models by `inflation` ("mean" is I3D's; `evitvid.models.inflate`
    lists the others, whose random taps `inflation_seed` seeds); see
    `evitvid.models.checkpoint.load_pretrained`.
    """
    entry = get_model_entry(name)
    valid = entry.valid_kwargs()
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise TypeError(f"{name}: unknown argument(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    model = entry.cls(**entry.arch_args, **kwargs)
    model.model_name = name
    if pretrained:
        from .checkpoint import load_pretrained
        load_pretrained(model, pretrained, inflation=inflation, inflation_noise=inflation_noise,
                        inflation_seed=inflation_seed)
    elif inflation != "mean":
        raise ValueError(f"{name}: inflation={inflation!r} needs pretrained weights to inflate")
    return model
