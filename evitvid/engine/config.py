"""`TrainConfig`: every setting of a training run, checked when it is made."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..runtime import MEMORY_FORMATS, PRECISIONS

__all__ = ["TrainConfig", "OPTIMIZERS"]

OPTIMIZERS = ("adamw", "sgd")


@dataclass(kw_only=True)
class TrainConfig:
    """The hyper-parameters a profile sets have no default here (`evitvid.study.params`: their
    values are written once, in `book/params/cpu.yaml`); the rest are the engine's own.

    `batch_size` is what one forward and backward pass takes, over every process (each takes
    `batch_size // processes`); the optimiser steps once every `accum_steps` such batches, so
    one step sees `global_batch = batch_size x accum_steps` clips, and the schedule counts those
    steps. With `lr_scaling_batch` set, `lr` and `min_lr` are for a global batch of that size
    and scale linearly with the real one (AVION's `lr x batch / 128`; `peak_lr`, `final_lr`)."""
    epochs: int
    batch_size: int                # one forward pass, over every process (split under torchrun)
    lr: float
    weight_decay: float
    warmup_epochs: float
    label_smoothing: float
    seed: int
    optimizer: str                 # adamw, or sgd (momentum 0.9, no Nesterov, as AVION)
    lr_scaling_batch: Optional[int]  # None: lr as given; N: lr x global_batch / N
    min_lr: float                  # where the cosine ends (scaled as lr)
    mixup_alpha: float             # 0: no mixup
    cutmix_alpha: float            # 0: no CutMix
    mixup_prob: float              # chance that a batch is mixed at all (when either alpha > 0)
    mixup_switch_prob: float       # chance of CutMix rather than mixup (when both alphas > 0)
    accum_steps: int               # forward/backward passes summed into one optimiser step
    grad_checkpointing: bool       # recompute each stage's activations in the backward pass
    clip_grad_norm: Optional[float]  # the gradients' global norm clipped to this (None: not clipped)
    ema_decay: Optional[float] = None
    freeze_bn: bool = False        # keep batch-norm statistics fixed (small per-device batches)
    sync_bn: bool = True           # under torchrun on CUDA, batch-norm statistics over the global batch
    precision: str = "auto"        # auto: bf16 on CUDA if supported, else fp16; fp32 on CPU
    memory_format: str = "auto"    # auto: channels-last on CPU (measured faster), as built on CUDA
    num_workers: int = 0
    val_every: int = 1             # validate every N epochs and after the last
    device: str = "auto"
    progress: bool = True          # tqdm bars for epochs and batches
    log_epochs: bool = True        # one line of metrics per epoch (what a notebook keeps)

    def __post_init__(self) -> None:
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "warmup_epochs": self.warmup_epochs >= 0, "num_workers": self.num_workers >= 0,
                  "val_every": self.val_every >= 1,
                  "label_smoothing": 0 <= self.label_smoothing < 1,
                  "ema_decay": self.ema_decay is None or 0 < self.ema_decay < 1,
                  "precision": self.precision in PRECISIONS, "memory_format": self.memory_format in MEMORY_FORMATS,
                  "optimizer": self.optimizer in OPTIMIZERS,
                  "lr_scaling_batch": self.lr_scaling_batch is None or (isinstance(self.lr_scaling_batch, int)
                                                                        and self.lr_scaling_batch >= 1),
                  "min_lr": 0 <= self.min_lr <= self.lr,
                  "mixup_alpha": self.mixup_alpha >= 0, "cutmix_alpha": self.cutmix_alpha >= 0,
                  "mixup_prob": 0 <= self.mixup_prob <= 1, "mixup_switch_prob": 0 <= self.mixup_switch_prob <= 1,
                  "accum_steps": isinstance(self.accum_steps, int) and self.accum_steps >= 1,
                  "grad_checkpointing": isinstance(self.grad_checkpointing, bool),
                  "clip_grad_norm": self.clip_grad_norm is None or self.clip_grad_norm > 0}
        bad = [f"{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid training parameter(s): {', '.join(bad)}")

    @property
    def global_batch(self) -> int:
        """Clips per optimiser step, over every process."""
        return self.batch_size * self.accum_steps

    def _scaled(self, lr: float) -> float:
        return lr if self.lr_scaling_batch is None else lr * self.global_batch / self.lr_scaling_batch

    @property
    def peak_lr(self) -> float:
        """The learning rate at the end of the warm-up: `lr`, scaled by the global batch when
        `lr_scaling_batch` is set."""
        return self._scaled(self.lr)

    @property
    def final_lr(self) -> float:
        """The learning rate at the end of the cosine: `min_lr`, scaled as `peak_lr`."""
        return self._scaled(self.min_lr)

    @property
    def mixes(self) -> bool:
        """Whether training batches are mixed (mixup or CutMix)."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0
