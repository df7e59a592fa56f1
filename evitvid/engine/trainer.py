"""`Trainer`: fits a model for a `Task` and keeps its run folder resumable.

AdamW or SGD with momentum (`TrainConfig.optimizer`, neither decaying norms and biases) with
linear warm-up then cosine decay (per optimiser step; the learning rate optionally scaled by
the global batch, `TrainConfig.peak_lr`), label smoothing, optional gradient clipping, optional
EMA of the weights; the loss is the task's (`evitvid.engine.tasks`). Optionally: mixup and CutMix of
each batch (`evitvid.engine.mixup`; label smoothing then goes into the mixed targets),
gradients summed over `accum_steps` batches before each optimiser step, and activation
checkpointing (the model's `set_grad_checkpointing`: each stage's activations recomputed in
the backward pass instead of kept; batch norm then updates its running statistics in both
passes).
The device is CUDA when present, else the CPU. On CUDA, mixed precision (bf16, or fp16
with a gradient scaler) wraps the forward pass; LiteMLA keeps its attention in fp32 by
itself.

Every epoch ends with an atomic checkpoint (`checkpoint.pt`: model, optimiser, scaler,
EMA, RNG states, history, number of processes) and the metrics so far (`metrics.json`) in
the run folder. A run started again in the same folder resumes after the last finished
epoch and ends where an uninterrupted run would: the items of an epoch depend only on
(seed, epoch), through a `DistributedSampler` (one replica when not distributed) and the
dataset's `set_epoch` (`evitvid.data.hooks.EpochHooks`). Resuming with another number of
processes is refused: the data order and batch-norm statistics would match neither run.

Where each epoch's time went is kept beside its metrics (`Trainer.timings`, merged into
the rows of `metrics.json`): `step_seconds` (forward, backward and optimiser),
`data_seconds` (waiting for the loader), `epoch_seconds` (the whole training pass) and
`val_seconds` (validation, every `val_every` epochs and after the last). `fit` returns the
metrics alone, which a resumed run reproduces exactly.

Under `torchrun` the model is wrapped in DistributedDataParallel (NCCL on CUDA, gloo on
CPU) and each process takes its share of the global batch; evaluation runs on the first
process.
"""
from __future__ import annotations

import copy
import os
import pickle
import random
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from ..atomic import torch_save_atomic, write_json_atomic
from ..data.datasets import collate
from ..data.hooks import EpochHooks
from ..runtime import autocast_dtype, resolve_device, seed_everything, set_memory_format
from .config import TrainConfig
from .evaluate import EvalResult, evaluate
from .mixup import Mixer
from .schedule import lr_at
from .tasks import VIDEO, Task

__all__ = ["Trainer", "ResumeError", "CheckpointError", "read_checkpoint", "adamw", "sgd", "make_optimizer",
           "enable_grad_checkpointing", "world_size", "check_batches"]


def world_size() -> int:
    """The number of training processes: torchrun's world, or 1."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def check_batches(batch_size: int, train_items: int, world: int, *, accum_steps: int) -> int:
    """Optimiser steps per epoch for `train_items` in batches of `batch_size` over `world`
    processes, `accum_steps` batches a step (the last partial batch, and the batches short of a
    whole step, dropped); a one-line `ValueError` when the batch does not split over the
    processes or the training set holds less than one step. Callers that write a run folder
    check this before writing it, so a corrected retry is not refused."""
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} is not divisible by the {world} processes")
    steps = (train_items // world) // (batch_size // world) // accum_steps
    if steps == 0:
        if accum_steps == 1:
            raise ValueError(f"the training set ({train_items} items) is smaller than one batch "
                             f"(batch_size={batch_size})")
        raise ValueError(f"the training set ({train_items} items) is smaller than one optimiser step "
                         f"(batch_size={batch_size} x accum_steps={accum_steps})")
    return steps


def enable_grad_checkpointing(model: nn.Module) -> nn.Module:
    """Turn on the model's activation checkpointing (`set_grad_checkpointing`); a model without
    it raises, naming the parameter. Returns the model."""
    if not hasattr(model, "set_grad_checkpointing"):
        raise ValueError(f"grad_checkpointing=True: {type(model).__name__} has no set_grad_checkpointing")
    model.set_grad_checkpointing(True)
    return model


def _decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights, none on norms and biases (every parameter of fewer than two
    dimensions; AVION's script also exempts names holding "bias", "bn", "ln" or "pos_embed",
    which on EfficientViT are exactly these)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW without weight decay on norms and biases, fused (one kernel for every parameter
    instead of a dozen small ops each) on CPU and CUDA, several times faster than the loop of
    small ops at the study's shapes."""
    return torch.optim.AdamW(_decay_groups(model, weight_decay), lr=lr, fused=device.type in ("cpu", "cuda"))


def sgd(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.SGD:
    """SGD as AVION's fine-tuning script runs it: momentum 0.9 (its `--betas`' first), no
    dampening, no Nesterov, weight decay (added to the gradient, L2) on weights only; fused on
    CPU and CUDA, as `adamw`."""
    return torch.optim.SGD(_decay_groups(model, weight_decay), lr=lr, momentum=0.9,
                           fused=device.type in ("cpu", "cuda"))


def make_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float,
                   device: torch.device) -> torch.optim.Optimizer:
    """The optimiser `name` ("adamw" or "sgd") of `model`'s parameters."""
    builders = {"adamw": adamw, "sgd": sgd}
    if name not in builders:
        raise ValueError(f"optimizer={name!r}: one of {', '.join(builders)}")
    return builders[name](model, lr, weight_decay, device)


class ResumeError(ValueError):
    """A run's checkpoint cannot be resumed here; the message names the file and what to do."""


class CheckpointError(ValueError):
    """A checkpoint cannot be read as plain tensors; the message names the file."""


def _rng_state() -> dict:
    """The global generators' states as tensors and plain values, which a checkpoint read with
    `weights_only=True` can hold (numpy's key array is not among them)."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])


def read_checkpoint(path: os.PathLike) -> dict:
    """A checkpoint `Trainer` wrote, read as tensors and plain values only (`weights_only=True`):
    a file from elsewhere cannot run code while it is read. One line naming the file when it
    cannot be read (a crafted pickle, a truncated file, an older format)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # an object beyond tensors and plain values, by name
            raise CheckpointError(f"{path}: cannot be read as a checkpoint (not a file torch.save wrote with tensors "
                                  f"and plain values)") from None
        # torch's own message advises weights_only=False: the one thing not to do with a file from elsewhere
        raise CheckpointError(f"{path}: holds Python objects beyond tensors and plain values, which evitvid does not "
                              f"load (loading them could run code); use a checkpoint evitvid wrote") from None
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({reason})") from None


class Trainer:
    """Fits `model` on `train_set` for `task` and writes one run folder."""

    def __init__(self, model: nn.Module, train_set: Dataset, val_set: Optional[Dataset], config: TrainConfig,
                 run_dir: os.PathLike, *, task: Task = VIDEO, collate_fn: Callable = collate,
                 probes: Sequence[Callable[[nn.Module], dict]] = ()):
        """`probes` are extra measurements of the model after each validation (e.g. how much
        its output changes when a clip is played backwards): each returns {name: value},
        recorded as `val_<name>` in the epoch's row."""
        self.cfg = config
        self.task = task
        self.probes = tuple(probes)
        self.run_dir = Path(run_dir)
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = world_size()
        self.steps_per_epoch = check_batches(config.batch_size, len(train_set), self.world,
                                             accum_steps=config.accum_steps)
        self.device = resolve_device(config.device)
        self.amp_dtype = autocast_dtype(config.precision, self.device)
        if self.distributed and config.sync_bn and not config.freeze_bn and self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # SyncBatchNorm has no CPU kernel
        self.model = set_memory_format(model.to(self.device), config.memory_format, self.device)
        if config.grad_checkpointing:
            enable_grad_checkpointing(self.model)
        classes = task.num_classes(self.model)  # also: an action task refuses a model of other action classes
        self.mixer = Mixer(mixup_alpha=config.mixup_alpha, cutmix_alpha=config.cutmix_alpha, prob=config.mixup_prob,
                           switch_prob=config.mixup_switch_prob, label_smoothing=config.label_smoothing,
                           num_classes=classes) if config.mixes else None
        self.train_set, self.val_set, self.collate_fn = train_set, val_set, collate_fn
        # The dataset's epoch hooks, if it declares them (`EpochHooks`); other datasets get none.
        self.hooks: Optional[EpochHooks] = train_set if isinstance(train_set, EpochHooks) else None
        self.sampler = DistributedSampler(train_set, num_replicas=self.world, rank=self.rank, shuffle=True,
                                          seed=config.seed, drop_last=True)
        self.ddp = (nn.parallel.DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                        if self.device.type == "cuda" else None)
                    if self.distributed else self.model)
        self.optimizer = make_optimizer(config.optimizer, self.model, config.peak_lr, config.weight_decay, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False) if config.ema_decay else None
        self.epoch = 0
        self.step = 0
        self.history: list[dict] = []
        self.timings: list[dict] = []

    # -- checkpoints -------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
                "epoch": self.epoch, "step": self.step, "history": self.history, "timings": self.timings,
                "rng": _rng_state(), "config": asdict(self.cfg), "world_size": self.world}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        self.timings = state.get("timings", [])
        _set_rng_state(state["rng"])

    def resume(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        try:
            state = read_checkpoint(self.checkpoint_path)
        except CheckpointError as e:
            reason = str(e).removeprefix(f"{self.checkpoint_path}: ")
            raise ResumeError(f"{self.checkpoint_path}: cannot resume from this checkpoint ({reason}); delete it "
                              f"to train this run from the start") from None
        written_by = state.get("world_size", 1)
        if written_by != self.world:
            raise ResumeError(f"{self.checkpoint_path} was written by {written_by} process(es), this run has "
                              f"{self.world}: resume it with {written_by}, or start a new run (the data order and "
                              f"batch-norm statistics would match neither)")
        self.load_state_dict(state)
        return True

    # -- loops -------------------------------------------------------------------------

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _loader(self, dataset: Dataset, sampler=None, batch_size: int = 1) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                          num_workers=self.cfg.num_workers, collate_fn=self.collate_fn,
                          pin_memory=self.device.type == "cuda", drop_last=sampler is not None)

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        self.sampler.set_epoch(epoch)
        if self.hooks is not None:
            self.hooks.set_epoch(epoch)
        self.ddp.train()
        if self.cfg.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        loader = self._loader(self.train_set, self.sampler, cfg.batch_size // self.world)
        total_steps = cfg.epochs * self.steps_per_epoch
        warmup = int(cfg.warmup_epochs * self.steps_per_epoch)
        accum = cfg.accum_steps
        losses, skipped, step_seconds = [], 0, 0.0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not cfg.progress or self.rank != 0, total=self.steps_per_epoch * accum)
        key = self.task.input_key
        # mixed targets carry the label smoothing (timm's mixup_target); the loss must not add it again
        smoothing = 0.0 if self.mixer is not None else cfg.label_smoothing
        accumulated = 0  # batches whose gradients wait for the optimiser step
        started = time.perf_counter()
        for index, batch in enumerate(bar):
            if index == self.steps_per_epoch * accum:  # batches short of a whole step
                break
            step_start = time.perf_counter()
            if index % accum == 0:
                for group in self.optimizer.param_groups:
                    group["lr"] = lr_at(self.step, total_steps, warmup, cfg.peak_lr, cfg.final_lr)
                self.optimizer.zero_grad(set_to_none=True)
            if self.hooks is not None:
                skipped += self.hooks.collect_skipped(batch)
            if batch[key] is not None:  # None: every clip of the batch was skipped (opt-in skip mode)
                inputs = batch[key].to(self.device, non_blocking=True)
                targets = self.task.targets(batch, self.device)
                if self.mixer is not None:
                    inputs, targets = self.mixer(inputs, targets)
                # under DDP, gradients are averaged over the processes once a step, at its last batch
                with self.ddp.no_sync() if self.distributed and (index + 1) % accum else nullcontext():
                    with self._autocast():
                        out = self.ddp(inputs)
                    loss = self.task.loss(out, targets, label_smoothing=smoothing)
                    # the step's gradient is the mean over its batches (x / 1 is exact: one batch a step is unchanged)
                    self.scaler.scale(loss / accum).backward()
                accumulated += 1
                losses.append(loss.item())
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if (index + 1) % accum == 0 and accumulated:
                if cfg.clip_grad_norm:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad_norm)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                if self.ema is not None:
                    self._update_ema()
                self.step += 1
                accumulated = 0
            step_seconds += time.perf_counter() - step_start
        epoch_seconds = time.perf_counter() - started
        loss = torch.tensor(float(np.mean(losses)), device=self.device)
        if self.distributed:  # gloo has no AVG: sum, then divide
            dist.all_reduce(loss, op=dist.ReduceOp.SUM)
            loss /= self.world
        row = {"train_loss": loss.item(), "lr": self.optimizer.param_groups[0]["lr"]}
        self._timing = {"epoch_seconds": epoch_seconds, "step_seconds": step_seconds,
                        "data_seconds": epoch_seconds - step_seconds}
        if self.hooks is not None:  # report (and log) the segments skipped this epoch
            self.hooks.end_epoch()
            row["skipped"] = skipped
        return row

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
                        task=self.task, num_workers=self.cfg.num_workers, amp_dtype=self.amp_dtype,
                        collate_fn=self.collate_fn, progress=self.cfg.progress, desc=desc)

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
            timing = {"epoch": epoch + 1, **self._timing}
            last = epoch + 1 == self.cfg.epochs
            if self.val_set is not None and self.rank == 0 and ((epoch + 1) % self.cfg.val_every == 0 or last):
                started = time.perf_counter()
                row.update({f"val_{k}": v for k, v in self.evaluate(self.val_set).metrics.items()})
                for probe in self.probes:
                    row.update({f"val_{k}": v for k, v in probe(self.eval_model).items()})
                timing["val_seconds"] = time.perf_counter() - started
            self.epoch = epoch + 1
            self.history.append(row)
            self.timings.append(timing)
            if self.rank == 0 and self.cfg.log_epochs:
                print(f"{self.run_dir.name}: " + ", ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
            if self.rank == 0:
                torch_save_atomic(self.checkpoint_path, self.state_dict())
                self._write_metrics()
            if self.distributed:
                dist.barrier()
        if self.rank == 0:  # also after a resume that found every epoch done (killed before metrics.json)
            self._write_metrics()
        return self.history

    def _write_metrics(self) -> None:
        rows = [{**row, **{k: v for k, v in timing.items() if k != "epoch"}}
                for row, timing in zip(self.history, self.timings + [{}] * (len(self.history) - len(self.timings)))]
        write_json_atomic(self.run_dir / "metrics.json", rows)

    @property
    def train_seconds(self) -> float:
        """Training and validation time of every epoch, across resumes."""
        return sum(t.get("epoch_seconds", 0.0) + t.get("val_seconds", 0.0) for t in self.timings)
