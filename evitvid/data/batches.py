"""Batches of clips: `collate` stacks samples and carries skipped segments alongside.

Kept apart from `datasets` (which decodes video) so that the trainer can batch any dataset
without importing a decoder.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import default_collate

__all__ = ["SkippedSegment", "collate"]


@dataclass(frozen=True)
class SkippedSegment:
    """A segment left out in skip mode, and why."""

    narration_id: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.narration_id} ({self.path}): {self.reason}"


def collate(batch: list[dict[str, Any] | SkippedSegment]) -> dict[str, Any]:
    """DataLoader `collate_fn` for `EK100Dataset`: stacks samples, moves skips to "skipped".

    The result always has "skipped" (a list of `SkippedSegment`, usually empty). When every
    sample of the batch was skipped, "video" is None and the label tensors are empty.
    """
    skipped = [item for item in batch if isinstance(item, SkippedSegment)]
    samples = [item for item in batch if not isinstance(item, SkippedSegment)]
    if samples:
        out = default_collate(samples)
    else:
        empty = torch.empty(0, dtype=torch.long)
        out = {"video": None, "verb": empty, "noun": empty.clone(), "action": empty.clone(), "narration_id": []}
    out["skipped"] = skipped
    return out
