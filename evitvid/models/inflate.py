"""Inflation of 2D weights into a 3D model (I3D: Carreira and Zisserman, CVPR 2017).

A 2D kernel of shape (out, in, k, k) becomes (out, in, t, k, k). Every method below keeps
the sum over the t time taps equal to the 2D kernel, so that on a clip of identical frames
the 3D convolution gives the 2D one's output (with replicated time padding; see
`EfficientVit3d`): the image features carry over. Everything else (norms, attention
aggregation, head MLP) is copied unchanged. Because the 3D model's module tree mirrors the
2D one name for name, any key or shape that does not line up is a real mismatch, and it
raises.

- `"mean"` (I3D): the kernel repeated t times and divided by t. Its taps are equal, so the
  kernel is symmetric in time; with symmetric time padding and global pooling a
  mean-inflated network gives the same output for a clip and the clip played backwards.
  It starts blind to the order of frames, which is what tells "put" from "take".
- `"mean_noise"`: mean inflation plus a random perturbation of each tap that sums to zero
  over time (standard deviation `noise` times the mean tap's): asymmetric from the start.
- `"centre"`: the 2D kernel on the centre tap, small random taps beside it (standard
  deviation `noise` times the kernel's / t), the centre tap less their sum: mostly the image
  kernel on the present frame, with asymmetric glimpses of the neighbours.
- `"centre_only"`: the 2D kernel on the centre tap, zeros beside it (the central-frame
  initialisation of ViViT: Arnab et al., ICCV 2021). Symmetric in time like the mean, but
  each frame starts with its own image features, not their average over t frames: the
  control that tells "breaking symmetry helps" from "not blurring frames together helps".

The random methods draw from a generator the caller seeds, key by key in sorted order, so
the same seed gives the same weights. Like timm's `adapt_input_conv`, these are pure
functions over state dicts.
"""
from __future__ import annotations

from typing import Mapping, Optional, Union

import torch
import torch.nn as nn

# Keys of the layers that map features to classes. They are the only ones that may be
# replaced, and only when the caller asks.
CLASSIFIER_PREFIXES = ("head.classifier.4.", "head.verb.", "head.noun.", "head.action.")


class InflationError(ValueError):
    """The 2D state dict does not fit the 3D model; the message names the keys."""


def _key_list(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def is_classifier_key(key: str) -> bool:
    return key.startswith(CLASSIFIER_PREFIXES)


INFLATIONS = ("mean", "mean_noise", "centre", "centre_only")
RANDOM_INFLATIONS = ("mean_noise", "centre")  # the ones that draw from a generator


def inflate_weight(weight_2d: torch.Tensor, time_kernel: int, method: str = "mean", *, noise: float = 0.5,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(out, in, k, k) -> (out, in, t, k, k) by `method` (see the module docstring); the sum
    over the t taps is the 2D kernel whatever the method."""
    if weight_2d.ndim != 4:
        raise ValueError(f"expected a 4D conv weight, got shape {tuple(weight_2d.shape)}")
    if time_kernel < 1:
        raise ValueError(f"time kernel must be >= 1, got {time_kernel}")
    if method not in INFLATIONS:
        raise ValueError(f"inflation must be one of {INFLATIONS}, got {method!r}")
    mean = weight_2d.unsqueeze(2).repeat(1, 1, time_kernel, 1, 1) / time_kernel
    if method == "mean" or time_kernel == 1:
        return mean
    if method == "centre_only":
        out = torch.zeros_like(mean)
        out[:, :, time_kernel // 2] = weight_2d
        return out
    if generator is None:
        raise ValueError(f"inflation {method!r} is random: pass a seeded torch.Generator")
    # one scale per output channel: the spread of its 2D kernel, per time tap
    scale = noise * weight_2d.flatten(1).std(dim=1).view(-1, 1, 1, 1, 1) / time_kernel
    draw = torch.randn(mean.shape, generator=generator, dtype=torch.float64).to(weight_2d.dtype) * scale
    if method == "mean_noise":
        return mean + (draw - draw.mean(dim=2, keepdim=True))  # zero-sum over time
    centre = time_kernel // 2
    out = draw.clone()
    out[:, :, centre] = weight_2d - (draw.sum(dim=2) - draw[:, :, centre])
    return out


def inflate_state_dict(
        state_dict_2d: Mapping[str, torch.Tensor],
        model_3d: Union[nn.Module, Mapping[str, torch.Tensor]],
        *,
        drop_classifier: bool = False,
        method: str = "mean",
        noise: float = 0.5,
        generator: Optional[torch.Generator] = None,
) -> dict[str, torch.Tensor]:
    """Return a state dict for `model_3d` (a module or its state dict) made from 2D weights,
    every 4D kernel inflated by `method` (random methods draw from `generator`).

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

    if method not in INFLATIONS:
        raise ValueError(f"inflation must be one of {INFLATIONS}, got {method!r}")
    bad = []
    for key in sorted(source):  # a fixed order: a random method's draws do not depend on the dict's
        src, want = source[key], target[key]
        if src.shape == want.shape:
            out[key] = src.detach().clone()
        elif src.ndim == 4 and want.ndim == 5 and src.shape[:2] == want.shape[:2] and src.shape[2:] == want.shape[3:]:
            out[key] = inflate_weight(src.detach(), want.shape[2], method, noise=noise,
                                      generator=generator).to(want.dtype)
        else:
            bad.append(f"{key}: 2D {tuple(src.shape)} vs 3D {tuple(want.shape)}")
    if bad:
        raise InflationError(f"shapes that cannot be inflated ({len(bad)}):\n  " + "\n  ".join(bad))
    return out
