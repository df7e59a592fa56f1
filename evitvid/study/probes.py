"""What a model does to a clip played backwards, measured during training (`ReversalProbe`).

A frame-averaging model gives exactly 0 (its frame mean is reversal-symmetric); an
I3D-inflated 3D model with symmetric padding gives 0 up to rounding at initialisation
(`evitvid.study.reversal`). Training runs record it after every epoch.
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["ReversalProbe"]


class ReversalProbe:
    """How much a model's verb logits change when clips are played backwards.

    The first `count` clips of `dataset` (evaluation clips: deterministic) are decoded once.
    `probe(model)` returns `reversal_change`, the mean over clips of |f(x) - f(reversed x)| /
    |f(x)| (Euclidean norms of the verb logits), and `reversal_flips`, the share of clips
    whose top-1 verb changes. A frame-averaging model gives exactly 0 (its frame mean is
    reversal-symmetric); an I3D-inflated 3D model with symmetric padding gives 0 up to
    rounding at initialisation.
    """

    def __init__(self, dataset, count: int, batch_size: int = 16):
        self.dataset, self.count, self.batch_size = dataset, min(count, len(dataset)), batch_size
        self._clips: Optional[torch.Tensor] = None

    @property
    def clips(self) -> torch.Tensor:
        if self._clips is None:
            self._clips = torch.stack([self.dataset[i]["video"] for i in range(self.count)])
        return self._clips

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        changes, flips = [], []
        for start in range(0, self.count, self.batch_size):
            x = self.clips[start:start + self.batch_size].to(device)
            a, b = model(x).verb.double(), model(x.flip(2)).verb.double()
            changes.append((a - b).norm(dim=1) / a.norm(dim=1).clamp_min(1e-12))
            flips.append(a.argmax(1) != b.argmax(1))
        model.train(was_training)
        return {"reversal_change": float(torch.cat(changes).mean()),
                "reversal_flips": float(torch.cat(flips).double().mean())}
