"""Clip transforms: uint8 frames (T, H, W, 3) in, normalised float (C, T, H, W) out.

Training: a random resized crop and an optional horizontal flip, drawn once per clip and
applied identically to every frame (a per-frame crop would add fake motion). The default
crop scale (0.5, 1.0) is AVION's for EK100 fine-tuning (`rrc_params=(crop_size, (0.5, 1.0))`
in `avion/data/clip_dataset.py`); the flip can be switched off because it turns "move
left" into "move right" style labels. Evaluation: resize the shorter side, centre crop.
Normalisation uses the backbone's mean/std (ImageNet's by default, as timm's EfficientViT).

The random draws come from a `numpy.random.Generator` the caller passes (the dataset seeds it
per sample), never from torch's global RNG, so a clip's augmentation is reproducible
regardless of DataLoader workers. Ops are torchvision.transforms.v2.functional on the whole
(T, 3, H, W) tensor, cropping before resizing and resizing uint8 (cheaper than float).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "random_resized_crop_box",
    "normalize_clip",
    "TrainTransform",
    "EvalTransform",
    "build_transform",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def random_resized_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop covering `scale` of the area at aspect `ratio`.

    The usual Inception-style draw (area uniform in `scale`, log-aspect uniform in `ratio`,
    retried `attempts` times); if no draw fits, the largest centred crop whose aspect lies
    within `ratio`.
    """
    if not (0 < scale[0] <= scale[1] <= 1):
        raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
    if not (0 < ratio[0] <= ratio[1]):
        raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif aspect > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def _check_frames(frames: torch.Tensor) -> None:
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames of shape (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")


def normalize_clip(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (T, 3, H, W) -> float (C, T, H, W): `(x / 255 - mean) / std` per channel.

    Three passes (convert-and-permute, scale, shift) instead of torchvision's normalize on a
    float copy: the float stage dominated the transform's cost.
    """
    out = torch.empty((x.shape[1], x.shape[0], *x.shape[2:]), dtype=torch.float32)
    out.copy_(x.permute(1, 0, 2, 3))
    std_t = torch.tensor(std, dtype=torch.float64)
    scale = (1.0 / (255.0 * std_t)).to(torch.float32).view(-1, 1, 1, 1)
    shift = (torch.tensor(mean, dtype=torch.float64) / std_t).to(torch.float32).view(-1, 1, 1, 1)
    return out.mul_(scale).sub_(shift)


class TrainTransform:
    """Random resized crop + optional horizontal flip (same for all frames) + normalisation."""

    def __init__(
        self,
        crop_size: int = 224,
        *,
        scale: tuple[float, float] = (0.5, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.crop_size = int(crop_size)
        self.scale, self.ratio, self.flip = tuple(scale), tuple(ratio), bool(flip)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        _check_frames(frames)
        x = frames.permute(0, 3, 1, 2)  # (T, 3, H, W), a view
        top, left, h, w = random_resized_crop_box(x.shape[-2], x.shape[-1], rng, scale=self.scale, ratio=self.ratio)
        x = TF.resized_crop(x, top, left, h, w, [self.crop_size, self.crop_size], antialias=True)
        # Draw the flip even when it is off, so switching it off keeps the crops identical.
        if rng.random() < 0.5 and self.flip:
            x = x.flip(-1)
        return normalize_clip(x, self.mean, self.std)

    def __repr__(self) -> str:
        return (f"TrainTransform(crop_size={self.crop_size}, scale={self.scale}, ratio={self.ratio}, "
                f"flip={self.flip}, mean={self.mean}, std={self.std})")


class EvalTransform:
    """Resize the shorter side to `resize_size` (default `crop_size`), centre crop, normalise."""

    def __init__(
        self,
        crop_size: int = 224,
        *,
        resize_size: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.crop_size = int(crop_size)
        self.resize_size = int(resize_size) if resize_size is not None else self.crop_size
        if self.resize_size < self.crop_size:
            raise ValueError(f"resize_size {self.resize_size} is smaller than crop_size {self.crop_size}")
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, frames: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_frames(frames)
        x = frames.permute(0, 3, 1, 2)
        x = TF.resize(x, self.resize_size, antialias=True)
        x = TF.center_crop(x, [self.crop_size, self.crop_size])
        return normalize_clip(x, self.mean, self.std)

    def __repr__(self) -> str:
        return (f"EvalTransform(crop_size={self.crop_size}, resize_size={self.resize_size}, "
                f"mean={self.mean}, std={self.std})")


def build_transform(
    train: bool,
    crop_size: int = 224,
    *,
    flip: bool = True,
    scale: tuple[float, float] = (0.5, 1.0),
    resize_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> TrainTransform | EvalTransform:
    """The training or evaluation transform with the given options."""
    if train:
        return TrainTransform(crop_size, scale=scale, flip=flip, mean=mean, std=std)
    return EvalTransform(crop_size, resize_size=resize_size, mean=mean, std=std)
