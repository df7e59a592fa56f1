"""Training and evaluation of video models on verb and noun labels.

AdamW with linear warm-up then cosine decay (per step), label smoothing, gradient
clipping, optional EMA of the weights; the loss is verb cross-entropy plus a weighted noun
cross-entropy. The device is CUDA when present, else the CPU. On CUDA, mixed precision
(bf16, or fp16 with a gradient scaler) wraps the forward pass; LiteMLA keeps its attention
in fp32 by itself.

Every epoch ends with an atomic checkpoint (`checkpoint.pt`: model, optimiser, scaler,
EMA, RNG states, history) and the metrics so far (`metrics.json`) in the run folder. A
run started again in the same folder resumes after the last finished epoch and ends
where an uninterrupted run would: the clips of an epoch depend only on (seed, epoch),
through a `DistributedSampler` (one replica when not distributed) and the dataset's
`set_epoch`.

Under `torchrun` the model is wrapped in DistributedDataParallel (NCCL on CUDA, gloo on
CPU) and each process takes its share of the global batch; evaluation runs on the first
process.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from .atomic import atomic_path
from .metrics import classification_metrics, video_metrics
from .models.layers import set_conv_layout

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 8            # global: split over processes under torchrun
    lr: float = 1e-3
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    clip_grad_norm: Optional[float] = 1.0
    ema_decay: Optional[float] = None
    freeze_bn: bool = False        # keep batch-norm statistics fixed (small per-device batches)
    sync_bn: bool = True           # under torchrun on CUDA, batch-norm statistics over the global batch
    noun_loss_weight: float = 1.0
    precision: str = "auto"        # auto: bf16 on CUDA if supported, else fp16; fp32 on CPU
    memory_format: str = "auto"    # auto: channels-last on CPU (measured faster), as built on CUDA
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"
    progress: bool = True          # tqdm bars for epochs and batches
    log_epochs: bool = True        # one line of metrics per epoch (what a notebook keeps)

    def __post_init__(self) -> None:
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "warmup_epochs": self.warmup_epochs >= 0, "num_workers": self.num_workers >= 0,
                  "label_smoothing": 0 <= self.label_smoothing < 1,
                  "ema_decay": self.ema_decay is None or 0 < self.ema_decay < 1,
                  "precision": self.precision in PRECISIONS, "memory_format": self.memory_format in MEMORY_FORMATS}
        bad = [f"{k}={getattr(self, k)!r}" for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid training parameter(s): {', '.join(bad)}")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if dist.is_available() and dist.is_initialized() and torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_memory_format(model: nn.Module, memory_format: str, device: torch.device) -> nn.Module:
    """Lay out a model's activations channels-last or contiguous.

    "auto" is channels-last on CPU, where oneDNN's depthwise and pointwise convolutions run
    faster end to end (`python -m evitvid bench --only channels_last`), and leaves the model
    as built elsewhere (not measured on CUDA here); it applies to evitvid's models only.
    An explicit "channels_last" or "contiguous" applies to any model: evitvid's through
    `set_channels_last` (inputs converted on entry), others' convolution weights through
    `set_conv_layout`.
    """
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}")
    own = hasattr(model, "set_channels_last")
    if memory_format == "auto":
        return model.set_channels_last(True) if own and device.type == "cpu" else model
    channels_last = memory_format == "channels_last"
    return model.set_channels_last(channels_last) if own else set_conv_layout(model, channels_last)


def compile_for_inference(model: nn.Module, example: torch.Tensor, *, atol: float = 1e-3) -> tuple[nn.Module, str]:
    """`torch.compile(model)` checked on `example` against eager; on any failure the eager model.

    Returns (model to call, status): "compiled", or "eager: <reason>" with a warning when
    compiling fails (inductor needs a C++ compiler on CPU) or the outputs differ by more
    than `atol`. Compiling is paid here, on the first call; other input shapes compile
    again on their first call. Compile time and speed-up: `python -m evitvid bench --only
    compile --compile`. Training is not compiled: on CPU the compiled training step was
    slower than the eager one with the fast depthwise backward when this was written.
    """
    import warnings

    def heads(out) -> list[torch.Tensor]:
        return [out] if isinstance(out, torch.Tensor) else list(out)

    # inductor's C++ toolchain check warns that a CPU-only machine has no CUDA runtime: noise here
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        compiled = torch.compile(model)
        with torch.no_grad():
            got, want = heads(compiled(example)), heads(model(example))
        diff = max((a.float() - b.float()).abs().max().item() for a, b in zip(got, want))
        if diff > atol:
            raise RuntimeError(f"compiled outputs differ from eager by {diff:.2e} (> {atol:g})")
        return compiled, "compiled"
    except Exception as exc:  # a fallback, by design: compiling is an optimisation, never a requirement
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        warnings.warn(f"torch.compile failed, running eager: {reason}", RuntimeWarning, stacklevel=2)
        return model, f"eager: {reason}"
    finally:
        quiet.setLevel(level)


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype, or None for fp32."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """Linear warm-up to `lr`, then cosine decay to `min_lr` at `total_steps`."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def save_atomic(obj: Any, path: Path) -> None:
    """Write with torch.save (or JSON for .json) to a temporary file, then rename: a killed
    process leaves either the old file or the new one, never half of one."""
    path = Path(path)
    with atomic_path(path, fsync=True) as tmp, open(tmp, "wb") as f:
        if path.suffix == ".json":
            f.write(json.dumps(obj, indent=2).encode())
        else:
            torch.save(obj, f)


def _rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def collate_clips(samples: list) -> dict:
    """Batch samples of `EK100Dataset` (segments skipped in skip mode go to "skipped") or any
    dataset of dicts with a "video" tensor, integer labels and a "narration_id"."""
    from .data.datasets import collate
    return collate(samples)


@dataclass
class EvalResult:
    """Metrics, and per clip: its id, the logits of each head and the targets (keyed "verb"
    and "noun" for video models, "label" for image classifiers)."""
    metrics: dict[str, float]
    narration_ids: list[str] = field(default_factory=list)
    logits: dict[str, torch.Tensor] = field(default_factory=dict)
    targets: dict[str, torch.Tensor] = field(default_factory=dict)


class Trainer:
    """Fits a video model (outputs with `.verb` and `.noun`) and writes one run folder."""

    def __init__(self, model: nn.Module, train_set: Dataset, val_set: Optional[Dataset], config: TrainConfig,
                 run_dir: os.PathLike, collate_fn=collate_clips):
        self.cfg = config
        self.run_dir = Path(run_dir)
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        if config.batch_size % self.world:
            raise ValueError(f"batch_size={config.batch_size} is not divisible by the {self.world} processes")
        self.device = resolve_device(config.device)
        self.amp_dtype = autocast_dtype(config.precision, self.device)
        if self.distributed and config.sync_bn and not config.freeze_bn and self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # SyncBatchNorm has no CPU kernel
        self.model = set_memory_format(model.to(self.device), config.memory_format, self.device)
        self.train_set, self.val_set, self.collate_fn = train_set, val_set, collate_fn
        self.sampler = DistributedSampler(train_set, num_replicas=self.world, rank=self.rank, shuffle=True,
                                          seed=config.seed, drop_last=True)
        self.steps_per_epoch = len(self.sampler) // (config.batch_size // self.world)
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training set ({len(train_set)} clips) is smaller than one batch "
                             f"({config.batch_size})")
        self.ddp = (nn.parallel.DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                        if self.device.type == "cuda" else None)
                    if self.distributed else self.model)
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on norms and biases
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False) if config.ema_decay else None
        self.epoch = 0
        self.step = 0
        self.history: list[dict] = []

    # -- checkpoints -------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
                "epoch": self.epoch, "step": self.step, "history": self.history, "rng": _rng_state(),
                "config": asdict(self.cfg)}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        _set_rng_state(state["rng"])

    def resume(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        try:
            state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise RuntimeError(f"{self.checkpoint_path}: cannot resume from this checkpoint ({e})") from e
        self.load_state_dict(state)
        return True

    # -- loops -------------------------------------------------------------------------

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _loss(self, out, batch: dict) -> torch.Tensor:
        ls = self.cfg.label_smoothing
        if isinstance(out, torch.Tensor):  # an image classifier (pretraining): one label
            return F.cross_entropy(out.float(), batch["label"].to(self.device), label_smoothing=ls)
        verb, noun = batch["verb"].to(self.device), batch["noun"].to(self.device)
        return (F.cross_entropy(out.verb.float(), verb, label_smoothing=ls)
                + self.cfg.noun_loss_weight * F.cross_entropy(out.noun.float(), noun, label_smoothing=ls))

    def _set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)

    def _loader(self, dataset: Dataset, sampler=None, batch_size: int = 1) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                          num_workers=self.cfg.num_workers, collate_fn=self.collate_fn,
                          pin_memory=self.device.type == "cuda", drop_last=sampler is not None)

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        self._set_epoch(epoch)
        self.ddp.train()
        if self.cfg.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        loader = self._loader(self.train_set, self.sampler, cfg.batch_size // self.world)
        total_steps = cfg.epochs * self.steps_per_epoch
        warmup = int(cfg.warmup_epochs * self.steps_per_epoch)
        losses, skipped = [], 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not cfg.progress or self.rank != 0)
        for batch in bar:
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(self.step, total_steps, warmup, cfg.lr, cfg.min_lr)
            skipped += self._collect_skipped(batch)
            if batch["video"] is None:  # every clip of the batch was skipped (opt-in skip mode)
                continue
            video = batch["video"].to(self.device, non_blocking=True)
            with self._autocast():
                out = self.ddp(video)
            loss = self._loss(out, batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.clip_grad_norm:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self._update_ema()
            self.step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        loss = torch.tensor(float(np.mean(losses)), device=self.device)
        if self.distributed:  # gloo has no AVG: sum, then divide
            dist.all_reduce(loss, op=dist.ReduceOp.SUM)
            loss /= self.world
        row = {"train_loss": loss.item(), "lr": self.optimizer.param_groups[0]["lr"]}
        if hasattr(self.train_set, "end_epoch"):  # report (and log) the segments skipped this epoch
            self.train_set.end_epoch()
            row["skipped"] = skipped
        return row

    def _collect_skipped(self, batch: dict) -> int:
        if hasattr(self.train_set, "collect_skipped"):
            return self.train_set.collect_skipped(batch)
        return 0

    @torch.no_grad()
    def _update_ema(self) -> None:
        d = self.cfg.ema_decay
        for e, p in zip(self.ema.state_dict().values(), self.model.state_dict().values()):
            if e.is_floating_point():
                e.mul_(d).add_(p.detach(), alpha=1 - d)
            else:
                e.copy_(p)

    @torch.no_grad()
    def evaluate(self, dataset: Dataset, model: Optional[nn.Module] = None, batch_size: Optional[int] = None,
                 desc: str = "eval") -> EvalResult:
        return evaluate(model or self.eval_model, dataset, self.device, batch_size or self.cfg.batch_size,
                        num_workers=self.cfg.num_workers, amp_dtype=self.amp_dtype, collate_fn=self.collate_fn,
                        progress=self.cfg.progress, desc=desc)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema if self.ema is not None else self.model

    def fit(self) -> list[dict]:
        """Train for `epochs`, resuming from the run folder's checkpoint if there is one."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.resume():
            if self.rank == 0 and self.cfg.progress:
                print(f"resuming {self.run_dir} after epoch {self.epoch}")
        else:
            seed_everything(self.cfg.seed)
        for epoch in tqdm(range(self.epoch, self.cfg.epochs), desc="epochs", initial=self.epoch,
                          total=self.cfg.epochs, disable=not self.cfg.progress or self.rank != 0):
            row = {"epoch": epoch + 1, **self.train_one_epoch(epoch)}
            if self.val_set is not None and self.rank == 0:
                row.update({f"val_{k}": v for k, v in self.evaluate(self.val_set).metrics.items()})
            self.epoch = epoch + 1
            self.history.append(row)
            if self.rank == 0 and self.cfg.log_epochs:
                print(f"{self.run_dir.name}: " + ", ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
            if self.rank == 0:
                save_atomic(self.state_dict(), self.checkpoint_path)
                save_atomic(self.history, self.run_dir / "metrics.json")
            if self.distributed:
                dist.barrier()
        return self.history


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 8, *,
             num_workers: int = 0, amp_dtype: Optional[torch.dtype] = None, collate_fn=collate_clips,
             progress: bool = True, desc: str = "eval") -> EvalResult:
    """Predict every clip of `dataset` and score the predictions (see `evitvid.metrics`)."""
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_fn)
    ids, logits, targets = [], {}, {}
    ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        if batch["video"] is None:
            continue
        with ctx:
            out = model(batch["video"].to(device))
        heads = {"label": out} if isinstance(out, torch.Tensor) else out._asdict()
        for head, value in heads.items():
            logits.setdefault(head, []).append(value.float().cpu())
            targets.setdefault(head, []).append(torch.as_tensor(batch[head]))
        ids.extend(batch["narration_id"])
    logits = {k: torch.cat(v) for k, v in logits.items()}
    targets = {k: torch.cat(v) for k, v in targets.items()}
    if "label" in logits:
        metrics = classification_metrics(logits["label"], targets["label"])
    else:
        metrics = video_metrics(logits["verb"], logits["noun"], targets["verb"], targets["noun"])
    return EvalResult(metrics, ids, logits, targets)
