"""Mixup and CutMix of training batches and their targets, with timm's `Mixup`.

Mixup (Zhang et al., 2018) blends two clips and their labels; CutMix (Yun et al., 2019)
pastes a box of one into the other and weights the labels by the box's area. AVION's
fine-tuning script applies timm's `Mixup` per batch (each clip with the clip at the mirrored
position, `x.flip(0)`, one lambda for the batch) and trains on the mixed, label-smoothed
targets with soft-target cross-entropy; `Mixer` does the same with two changes:

* timm cuts its box as `x[:, :, y0:y1, x0:x1]`, the last two axes of an image batch. On a
  B x C x T x H x W clip those indices would land on T x H. A clip is mixed with its time
  folded into the channels (B x CT x H x W) and unfolded after, so the box covers the same
  H x W rectangle of every frame, and the lambda timm corrects for the box's area is the
  share of every frame that was kept.
* Every target of the task (verb and noun, or the action) is mixed with that one lambda and
  mirror (`timm.data.mixup.mixup_target`, label smoothing folded in as timm does), so the
  verb and noun of a mixed clip stay the mixture of the same two clips.

The draws come from NumPy's global generator, as timm's do; the trainer seeds it and keeps
its state in every checkpoint, so a resumed run mixes as an uninterrupted one would.
"""
from __future__ import annotations

from typing import Mapping

import torch
from timm.data.mixup import Mixup, mixup_target

__all__ = ["Mixer"]


class Mixer:
    """Mixes a batch of images (B x C x H x W) or clips (B x C x T x H x W) and its targets.

    `num_classes` names each target the task trains on and its number of classes; a call
    takes class indices for those names and returns class probabilities for them."""

    def __init__(self, *, mixup_alpha: float, cutmix_alpha: float, prob: float, switch_prob: float,
                 label_smoothing: float, num_classes: Mapping[str, int]) -> None:
        if not (mixup_alpha > 0 or cutmix_alpha > 0):
            raise ValueError(f"mixup_alpha={mixup_alpha!r}, cutmix_alpha={cutmix_alpha!r}: one must be positive "
                             f"for batches to be mixed")
        self.mixup = Mixup(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, prob=prob, switch_prob=switch_prob,
                           mode="batch", label_smoothing=label_smoothing)
        self.label_smoothing = label_smoothing
        self.num_classes = dict(num_classes)

    def __call__(self, inputs: torch.Tensor, targets: Mapping[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(mixed inputs, {name: B x classes probabilities}); `inputs` may be changed in place."""
        unknown = sorted(set(targets) - set(self.num_classes))
        if unknown:
            raise ValueError(f"targets {unknown} have no number of classes (known: {sorted(self.num_classes)})")
        if inputs.ndim == 5:
            frames = inputs.flatten(1, 2)  # B x CT x H x W: timm's box lands on H x W of every frame
        elif inputs.ndim == 4:
            frames = inputs
        else:
            raise ValueError(f"expected B x C x H x W images or B x C x T x H x W clips, got {tuple(inputs.shape)}")
        # timm's per-batch draw and mix, without its __call__'s single target
        lam = self.mixup._mix_batch(frames)
        mixed = frames.unflatten(1, inputs.shape[1:3]) if inputs.ndim == 5 else frames
        soft = {name: mixup_target(torch.as_tensor(t, device=inputs.device), self.num_classes[name], lam,
                                   self.label_smoothing) for name, t in targets.items()}
        return mixed, soft
