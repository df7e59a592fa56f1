"""`TrainConfig`: every setting of a training run, checked when it is made."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..runtime import MEMORY_FORMATS, PRECISIONS

__all__ = ["TrainConfig"]


@dataclass(kw_only=True)
class TrainConfig:
    """The hyper-parameters a profile sets have no default here (`evitvid.study.params`: their
    values are written once, in `book/params/cpu.yaml`); the rest are the engine's own."""
    epochs: int
    batch_size: int                # global: split over processes under torchrun
    lr: float
    weight_decay: float
    warmup_epochs: float
    label_smoothing: float
    seed: int
    min_lr: float = 1e-6
    clip_grad_norm: Optional[float] = 1.0
    ema_decay: Optional[float] = None
    freeze_bn: bool = False        # keep batch-norm statistics fixed (small per-device batches)
    sync_bn: bool = True           # under torchrun on CUDA, batch-norm statistics over the global batch
    precision: str = "auto"        # auto: bf16 on CUDA if supported, else fp16; fp32 on CPU
    memory_format: str = "auto"    # auto: channels-last on CPU (measured faster), as built on CUDA
    num_workers: int = 0
    val_every: int = 1             # validate every N epochs (and after the last); learning curves need 1
    device: str = "auto"
    progress: bool = True          # tqdm bars for epochs and batches
    log_epochs: bool = True        # one line of metrics per epoch (what a notebook keeps)

    def __post_init__(self) -> None:
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "warmup_epochs": self.warmup_epochs >= 0, "num_workers": self.num_workers >= 0,
                  "val_every": self.val_every >= 1,
                  "label_smoothing": 0 <= self.label_smoothing < 1,
                  "ema_decay": self.ema_decay is None or 0 < self.ema_decay < 1,
                  "precision": self.precision in PRECISIONS, "memory_format": self.memory_format in MEMORY_FORMATS}
        bad = [f"{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid training parameter(s): {', '.join(bad)}")
