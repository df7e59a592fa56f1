"""What a training set may tell the trainer around each epoch: a declared protocol.

`evitvid.engine.Trainer` calls these on any dataset that implements `EpochHooks` (and on
no other): `set_epoch` before the epoch's loader is built (a dataset whose augmentation
depends on the epoch reseeds there), `collect_skipped` on every batch (segments left out in
the opt-in skip mode of `EK100Dataset`), `end_epoch` after the last batch (reports and
forgets them). `EpochDataset` implements all three as no-ops, for datasets that need only
some of them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from torch.utils.data import Dataset

__all__ = ["EpochHooks", "EpochDataset"]


@runtime_checkable
class EpochHooks(Protocol):
    def set_epoch(self, epoch: int) -> None: ...

    def collect_skipped(self, batch: Mapping[str, Any]) -> int: ...

    def end_epoch(self) -> list: ...


class EpochDataset(Dataset):
    """A dataset with `EpochHooks` that do nothing: override what applies."""

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def collect_skipped(self, batch: Mapping[str, Any]) -> int:
        return 0

    def end_epoch(self) -> list:
        return []
