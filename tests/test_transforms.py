"""evitvid.data.transforms: clip-consistent augmentation, uint8 (T, H, W, 3) -> float (C, T, H, W)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evitvid.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EvalTransform,
    TrainTransform,
    build_transform,
    random_resized_crop_box,
)


def clip(t=4, h=48, w=64, seed=0):
    """Every frame the same asymmetric random image: any per-frame difference comes from the transform."""
    image = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    return image.expand(t, h, w, 3).contiguous()


def test_train_output_shape_dtype_and_same_crop_for_all_frames():
    out = TrainTransform(32)(clip(), np.random.default_rng(0))
    assert out.shape == (3, 4, 32, 32) and out.dtype == torch.float32
    for t in range(1, 4):
        assert torch.equal(out[:, t], out[:, 0])


def test_train_is_a_function_of_the_generator():
    frames = clip()
    a = TrainTransform(32)(frames, np.random.default_rng(5))
    b = TrainTransform(32)(frames, np.random.default_rng(5))
    c = TrainTransform(32)(frames, np.random.default_rng(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_switches_off():
    frames = clip()
    flipped = 0
    for seed in range(20):
        on = TrainTransform(32, flip=True)(frames, np.random.default_rng(seed))
        off = TrainTransform(32, flip=False)(frames, np.random.default_rng(seed))
        # same draws, so the same crop: either identical or mirror images
        if torch.equal(on, off.flip(-1)):
            flipped += 1
        else:
            assert torch.equal(on, off)
        assert not torch.equal(off, off.flip(-1))
    assert 3 <= flipped <= 17


def test_eval_resizes_shorter_side_and_centre_crops():
    # 48 x 96 frame whose columns are 0..95: shorter side 48 -> 24 keeps the aspect (24 x 48),
    # the centre 24 x 24 crop keeps columns 24..71 of the original.
    frames = torch.zeros(2, 48, 96, 3, dtype=torch.uint8)
    frames[..., 0] = torch.arange(96, dtype=torch.uint8)
    out = EvalTransform(24, mean=(0, 0, 0), std=(1, 1, 1))(frames)
    assert out.shape == (3, 2, 24, 24)
    red = out[0, 0, 0] * 255
    assert 22 <= red[0] <= 27 and 68 <= red[-1] <= 73
    assert torch.equal(out, EvalTransform(24, mean=(0, 0, 0), std=(1, 1, 1))(frames))


def test_eval_resize_size_larger_than_crop():
    out = EvalTransform(16, resize_size=32)(clip(h=64, w=64))
    assert out.shape == (3, 4, 16, 16)
    with pytest.raises(ValueError):
        EvalTransform(32, resize_size=16)


def test_normalisation_default_imagenet_and_custom():
    frames = torch.full((1, 8, 8, 3), 128, dtype=torch.uint8)
    out = EvalTransform(8)(frames)
    expected = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(out[:, 0, 0, 0], expected, atol=1e-6)
    out = build_transform(False, 8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))(frames)
    assert torch.allclose(out[:, 0, 0, 0], (128 / 255 - 0.5) / torch.tensor([0.25, 0.5, 1.0]), atol=1e-6)


def test_random_resized_crop_box_property():
    rng = np.random.default_rng(0)
    for _ in range(500):
        h, w = int(rng.integers(8, 400)), int(rng.integers(8, 400))
        top, left, ch, cw = random_resized_crop_box(h, w, rng, scale=(0.5, 1.0))
        assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w and ch > 0 and cw > 0
        assert 0.5 * 0.9 * h * w <= ch * cw or ch in (h,) or cw in (w,)  # fallback is the largest crop
    # impossible aspect (a 1 x 100 strip): falls back to a centred crop at the nearest allowed ratio
    top, left, ch, cw = random_resized_crop_box(1, 100, np.random.default_rng(0), scale=(0.9, 1.0))
    assert (ch, cw) == (1, 1) and left == 49


def test_build_transform_and_bad_input():
    assert isinstance(build_transform(True, 32, flip=False), TrainTransform)
    assert isinstance(build_transform(False, 32), EvalTransform)
    with pytest.raises(ValueError, match="uint8"):
        EvalTransform(8)(torch.zeros(2, 8, 8, 3))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        EvalTransform(8)(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
