"""I3D inflation of 2D weights into a 3D model (Carreira and Zisserman, CVPR 2017).

A 2D kernel of shape (out, in, k, k) becomes (out, in, t, k, k) by repeating it t times
along time and dividing by t, so that on a clip of identical frames the 3D convolution
gives the 2D one's output (with replicated time padding; see `EfficientVit3d`).
Everything else (norms, attention aggregation, head MLP) is copied unchanged. Because
the 3D model's module tree mirrors the 2D one name for name, any key or shape that does
not line up is a real mismatch, and it raises.

Like timm's `adapt_input_conv`, this is a pure function over state dicts.
"""
from __future__ import annotations

from typing import Mapping, Union

import torch
import torch.nn as nn

# Keys of the layers that map features to classes. They are the only ones that may be
# replaced, and only when the caller asks.
CLASSIFIER_PREFIXES = ("head.classifier.4.", "head.verb.", "head.noun.")


class InflationError(ValueError):
    """The 2D state dict does not fit the 3D model; the message names the keys."""


def _key_list(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def is_classifier_key(key: str) -> bool:
    return key.startswith(CLASSIFIER_PREFIXES)


def inflate_weight(weight_2d: torch.Tensor, time_kernel: int) -> torch.Tensor:
    """(out, in, k, k) -> (out, in, t, k, k): the kernel repeated t times along time, divided by t."""
    if weight_2d.ndim != 4:
        raise ValueError(f"expected a 4D conv weight, got shape {tuple(weight_2d.shape)}")
    if time_kernel < 1:
        raise ValueError(f"time kernel must be >= 1, got {time_kernel}")
    return weight_2d.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel


def inflate_state_dict(
        state_dict_2d: Mapping[str, torch.Tensor],
        model_3d: Union[nn.Module, Mapping[str, torch.Tensor]],
        *,
        drop_classifier: bool = False,
) -> dict[str, torch.Tensor]:
    """Return a state dict for `model_3d` (a module or its state dict) made from 2D weights.

    Every key of the 3D model must be in `state_dict_2d` and the other way round, with
    the same shape except that a 4D conv weight becomes 5D. The only exception is the
    classifier: an ImageNet checkpoint has a 1000-way `head.classifier.4` where a video
    model has `head.verb` and `head.noun`. Pass `drop_classifier=True` to drop the
    checkpoint's classifier and keep the 3D model's own (freshly initialised) one; it is
    never done silently. The inputs are not modified.
    """
    target = model_3d.state_dict() if isinstance(model_3d, nn.Module) else dict(model_3d)
    source = dict(state_dict_2d)
    out: dict[str, torch.Tensor] = {}
    if drop_classifier:
        source = {k: v for k, v in source.items() if not is_classifier_key(k)}
        out.update({k: v.detach().clone() for k, v in target.items() if is_classifier_key(k)})

    missing = sorted(k for k in target if k not in source and k not in out)
    unexpected = sorted(k for k in source if k not in target)
    if missing or unexpected:
        lines = ["the 2D state dict does not match the 3D model:"]
        if missing:
            lines.append(f"  3D model keys missing from the 2D state dict ({len(missing)}): {_key_list(missing)}")
        if unexpected:
            lines.append(f"  2D keys with no place in the 3D model ({len(unexpected)}): {_key_list(unexpected)}")
        if not drop_classifier and any(is_classifier_key(k) for k in missing + unexpected):
            lines.append("  the classifiers differ: pass drop_classifier=True to keep the 3D model's own "
                         "verb/noun heads and drop the checkpoint's classifier")
        raise InflationError("\n".join(lines))

    bad = []
    for key, src in source.items():
        want = target[key]
        if src.shape == want.shape:
            out[key] = src.detach().clone()
        elif src.ndim == 4 and want.ndim == 5 and src.shape[:2] == want.shape[:2] and src.shape[2:] == want.shape[3:]:
            out[key] = inflate_weight(src, want.shape[2]).to(want.dtype)
        else:
            bad.append(f"{key}: 2D {tuple(src.shape)} vs 3D {tuple(want.shape)}")
    if bad:
        raise InflationError(f"shapes that cannot be inflated ({len(bad)}):\n  " + "\n  ".join(bad))
    return out
