"""Mixup and CutMix of clips: CutMix's box is the same H x W box in every frame, and every
target is mixed with the clips' one lambda and mirror."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evitvid.engine.mixup import Mixer

CLASSES = {"verb": 3, "noun": 5, "action": 7}


def mixer(**kw) -> Mixer:
    return Mixer(**{**dict(mixup_alpha=0.0, cutmix_alpha=0.0, prob=1.0, switch_prob=0.5, label_smoothing=0.0,
                           num_classes=CLASSES), **kw})


def targets() -> dict[str, torch.Tensor]:
    return {"verb": torch.tensor([0, 2]), "noun": torch.tensor([4, 1]), "action": torch.tensor([6, 3])}


def test_cutmix_cuts_one_height_by_width_box_out_of_every_frame():
    """Clip 0 is zeros, clip 1 ones: after CutMix, clip 0 holds ones exactly in its box. timm
    alone would cut x[:, :, y0:y1, x0:x1] of a B x C x T x H x W clip, a T x H slab: frames
    past the box's rows untouched, and a box as wide as the whole frame."""
    cut = mixer(cutmix_alpha=1.0)
    boxes = 0
    for seed in range(20):
        np.random.seed(seed)
        clips = torch.stack([torch.zeros(3, 4, 64, 48), torch.ones(3, 4, 64, 48)])  # B=2, C=3, T=4, H=64, W=48
        mixed, soft = cut(clips, targets())
        assert mixed.shape == (2, 3, 4, 64, 48)
        lam = soft["verb"][0, 0].item()  # clip 0 keeps lam of its own verb
        pasted = mixed[0] == 1
        if lam == 1.0:
            assert not pasted.any()
            continue
        boxes += 1
        box = pasted[0, 0]
        assert box.any()
        assert all(torch.equal(pasted[c, t], box) for c in range(3) for t in range(4))  # every frame, every channel
        rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
        assert torch.equal(box[rows.min():rows.max() + 1, cols.min():cols.max() + 1].logical_not().any(),
                           torch.tensor(False))  # a filled rectangle
        assert box.float().mean().item() == pytest.approx(1 - lam)  # lambda is the share of the frame kept
        assert torch.equal(mixed[1] == 0, pasted)  # and clip 1 got clip 0's pixels in the same box
    assert boxes >= 10


def test_every_target_is_mixed_with_the_clips_lambda_and_mirror():
    mix = mixer(mixup_alpha=0.8)
    np.random.seed(0)
    clips = torch.randn(2, 3, 4, 8, 8)
    mixed, soft = mix(clips.clone(), targets())
    lam = soft["verb"][0, 0].item()
    assert 0 < lam < 1
    assert torch.allclose(mixed, lam * clips + (1 - lam) * clips.flip(0), atol=1e-6)
    for name, t in targets().items():
        one_hot = F.one_hot(t, CLASSES[name]).float()
        assert torch.allclose(soft[name], lam * one_hot + (1 - lam) * one_hot.flip(0), atol=1e-6), name


def test_label_smoothing_is_folded_into_the_targets():
    np.random.seed(0)
    _, soft = mixer(mixup_alpha=0.8, prob=0.0, label_smoothing=0.1)(torch.randn(2, 3, 4, 8, 8), targets())
    # never mixed (prob 0): each target is its smoothed one-hot, as cross-entropy's label_smoothing spreads it
    expected = F.one_hot(targets()["noun"], 5).float() * 0.9 + 0.1 / 5
    assert torch.allclose(soft["noun"], expected)


def test_mixing_needs_an_alpha_and_known_targets():
    with pytest.raises(ValueError, match=r"mixup_alpha=0.0, cutmix_alpha=0.0: one must be positive"):
        mixer()
    with pytest.raises(ValueError, match=r"targets \['label'\] have no number of classes"):
        mixer(mixup_alpha=1.0)(torch.zeros(2, 3, 4, 8, 8), {"label": torch.tensor([0, 1])})
