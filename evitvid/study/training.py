"""Training the study's models: video runs and the image pretraining.

- `train_video`: a frame-averaged or 3D model on verbs and nouns, then its predictions on
  the validation split (or, in a tuning study, on the tuning split carved from the training
  videos: `split`). Everything that could fail (parameters, the pretrained checkpoint,
  the data, missing videos) is checked before the run folder is written, so a corrected
  retry is never refused. A finished run is returned as it is, an interrupted one resumes.
- `pretrain_images`: the 2D model on Fashion-MNIST train images drawn in the videos' style,
  the embedded study's stand-in for ImageNet; saved in timm's format, loaded and inflated
  exactly as an ImageNet checkpoint would be.

Many runs at once, in parallel and in the order their dependencies allow: `evitvid.study.jobs`;
which runs the study trains: `evitvid.study.plan`.

Runs are named by what determines them: `run_name(prefix, params)` appends a short hash of
the parameters, so a run is reused only when every parameter matches, and another setting
gets its own folder (CONTRIBUTING.md, Run folders). The training recipe's parameters added
after the study's first runs (the optimiser, mixup, sampling, accumulation, ...: `RECIPE`) are
recorded only where they differ from what those runs trained with (`recipe_record`), so the
earlier runs, and the record kept in `book/recorded/`, keep their names. Beside its
parameters a run records what computed it (`evitvid.provenance.made_by`: the code, the CPU
kernels, the memory layout); a finished run made otherwise is refused, naming what differs,
or trained again with `stale="retrain"`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import save_file

from .. import models as _models
from .. import runtime
from ..atomic import atomic_path
from ..data.images import FashionImages
from ..data.sampling import SAMPLERS
from ..models.inflate import RANDOM_INFLATIONS
from ..engine import IMAGE, VIDEO, ActionTask, TrainConfig, Trainer, check_step_memory
from ..engine.trainer import check_batches, world_size
from ..provenance import made_by
from ..runs import Run, open_run, relative_to_root, resolve_from_root
from ..runtime import set_threads
from .data import DataPaths, action_pairs, action_record, clip_dataset, frame_cache_size, missing_videos, read_splits
from .params import HEADS, PROTOCOL, SPLITS, ParameterError
from .predictions import write_predictions
from .probes import ReversalProbe

__all__ = ["WEIGHTS_FILE", "STALE", "RECIPE", "recipe_record", "run_name", "finished_here", "train_video",
           "pretrain_images", "initial_model", "checkpoint_source", "pretraining_run", "training_params",
           "pretraining_params", "show_progress"]

_log = logging.getLogger(__name__)
WEIGHTS_FILE = "model.safetensors"  # a pretraining run's checkpoint, in timm's format
STALE = ("refuse", "retrain")  # what to do with a finished run that other code or kernels computed
# The training recipe's parameters added after the study's first runs, with the values those
# runs trained with; the image pretraining still trains with them.
RECIPE = dict(optimizer="adamw", lr_scaling_batch=None, min_lr=1e-6, mixup_alpha=0.0, cutmix_alpha=0.0,
              mixup_prob=1.0, mixup_switch_prob=0.5, accum_steps=1, grad_checkpointing=False, sampling="tsn",
              clip_stride=2, head="verb_noun", clip_grad_norm=1.0, split="validation", tune_fraction=0.2)
_ENGINE_RECIPE = {k: v for k, v in RECIPE.items()  # TrainConfig's
                  if k not in ("sampling", "clip_stride", "head", "split", "tune_fraction")}


def run_name(prefix: str, params: dict) -> str:
    """`prefix-<8 hex digits>`: the digits hash the run's parameters (their JSON, keys sorted)."""
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{prefix}-{digest}"


def recipe_record(values: dict) -> dict:
    """What a run records of the `RECIPE` parameters in `values`: those that train otherwise than
    the study's first runs did, and those that then matter (mixup's probabilities once batches are
    mixed, the switch once both mixup and CutMix are on, the stride of dense sampling, the share
    held out once a run trains and evaluates on the tuning split)."""
    out = {k: values[k] for k in ("optimizer", "lr_scaling_batch", "min_lr", "clip_grad_norm", "accum_steps",
                                  "grad_checkpointing", "sampling", "head", "split") if values[k] != RECIPE[k]}
    if values["mixup_alpha"] > 0 or values["cutmix_alpha"] > 0:
        out.update(mixup_alpha=values["mixup_alpha"], cutmix_alpha=values["cutmix_alpha"],
                   mixup_prob=values["mixup_prob"])
        if values["mixup_alpha"] > 0 and values["cutmix_alpha"] > 0:
            out["mixup_switch_prob"] = values["mixup_switch_prob"]
    if values["sampling"] == "dense":
        out["clip_stride"] = values["clip_stride"]
    if values["split"] == "tune":
        out["tune_fraction"] = values["tune_fraction"]
    return out


def finished_here(folder: Path | str, memory_format: str = "auto") -> bool:
    """Whether the run in `folder` is finished and was computed as this code would compute it
    now (its `made_by`): what may be reused without training."""
    run = Run(Path(folder))
    return run.complete and run.params.get("made_by") == made_by(__name__, memory_format=memory_format)


def show_progress(progress: Optional[bool] = None) -> bool:
    """Progress bars in a terminal; in a notebook kernel (papermill) only the per-epoch lines,
    which are what an executed notebook should keep."""
    if progress is not None:
        return progress
    try:
        from IPython import get_ipython
        return get_ipython() is None
    except ImportError:
        return True


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _positive(**values: Any) -> None:
    bad = [f"{k}={v!r}" for k, v in values.items() if v is None or v <= 0]
    if bad:
        raise ValueError(f"must be positive: {', '.join(bad)}")


def wall_clock(started: float) -> dict:
    """When this process started training a run and when it finished (Unix seconds): runs
    trained side by side overlap, so the study's training time is the span of these, not the
    sum of the runs' `train_seconds` (`study.budget.training_span`)."""
    return {"started": round(started, 1), "finished": round(time.time(), 1)}


def train_video(name: str, *, model: str, data: DataPaths, pretrained: Optional[str] = None,
                inflation: str = "mean", inflation_noise: float, num_frames: int, crop_size: int,
                epochs: int, batch_size: int, lr: float, weight_decay: float, warmup_epochs: float,
                label_smoothing: float, precision: str, seed: int, max_train: Optional[int],
                max_val: Optional[int], val_every: int, reversal_clips: int, frame_cache: bool,
                optimizer: str, lr_scaling_batch: Optional[int], min_lr: float,
                clip_grad_norm: Optional[float], mixup_alpha: float,
                cutmix_alpha: float, mixup_prob: float, mixup_switch_prob: float, sampling: str, clip_stride: int,
                accum_steps: int, grad_checkpointing: bool, head: str, split: str, tune_fraction: float,
                runs_root: Path | str,
                data_root: Optional[Path | str] = None, ema_decay: Optional[float] = None,
                environment: Optional[dict] = None, num_workers: int = 0, progress: Optional[bool] = None,
                memory_format: str = "auto", threads: Optional[int] = None, stale: str = "refuse",
                **model_kwargs: Any) -> Run:
    """Train a video model (frame-averaged or 3D) and write its run folder; resumes or returns a finished run.

    The protocol's keywords have no defaults: the study's come from its profile
    (`training_params(params)`, `evitvid.study.params`), so no second set can drift from them.

    `pretrained` (a path or `timm:NAME`) starts from image weights, inflated into a 3D model
    by `inflation` (`evitvid.models.inflate`); None starts from random initialisation.
    `reversal_clips` validation clips are also played backwards after every epoch and the
    change of the verb logits recorded (`probes.ReversalProbe`). `num_workers`, `progress` and
    `threads` change speed and output only, so they are not part of the run's parameters;
    `memory_format` decides whether the CPU kernels run, which changes the rounding, so it is
    recorded with the code's digest (`made_by`): a finished run that other code, kernels or
    layout computed is refused (`stale="refuse"`) or trained again (`"retrain"`). Runs live in
    `runs_root`; `data_root` is where `data` (an embedded dataset) was generated, recorded
    relative to the runs root so the run finds it again (`predictions.run_data`).
    `environment` names variables the run needs set before torch starts (e.g.
    `{"ONEDNN_MAX_CPU_ISA": "AVX2"}` to stand in for another machine); they are part of its
    parameters, and a process without them is refused. `frame_cache` reads the
    frames from a `FrameCache` (decoded once; its resolution is recorded, since it changes the
    training crops' pixels).

    The recipe (`evitvid.study.params` says what each means): `optimizer`, `lr` scaled by the
    global batch (`batch_size` x `accum_steps`) over `lr_scaling_batch` when that is set,
    `min_lr`, `clip_grad_norm`, mixup and CutMix (`mixup_alpha`, `cutmix_alpha`, `mixup_prob`,
    `mixup_switch_prob`), the frames of a clip (`sampling`, `clip_stride`), gradients summed
    over `accum_steps` batches a step, `grad_checkpointing`, and what the model classifies
    (`head`: verbs and nouns, or AVION's action classes, `action_pairs`, whose number and
    digest the run records); each is recorded where it departs from the study's first runs
    (`recipe_record`). `split` is what the run trains and evaluates on: "validation" (the
    training split, then the validation split) or "tune" (the training videos but a
    `tune_fraction` of them, then those: `Splits.tuning`, the split a tuning study chooses on;
    its "val" metrics and predictions are the tuning videos').
    """
    for key, value in (environment or {}).items():
        if os.environ.get(key) != value:
            raise ValueError(f"environment: this run needs {key}={value} set before torch starts "
                             f"(train it through train_runs, which sets it), found {os.environ.get(key)!r}")
    entry = _models.get_model_entry(model)  # an unknown name fails now, not after the data is read
    _positive(num_frames=num_frames, crop_size=crop_size, epochs=epochs, batch_size=batch_size,
              clip_stride=clip_stride)
    recipe = dict(optimizer=optimizer, lr_scaling_batch=lr_scaling_batch, min_lr=min_lr,
                  clip_grad_norm=clip_grad_norm, mixup_alpha=mixup_alpha,
                  cutmix_alpha=cutmix_alpha, mixup_prob=mixup_prob, mixup_switch_prob=mixup_switch_prob,
                  accum_steps=accum_steps, grad_checkpointing=grad_checkpointing)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                      warmup_epochs=warmup_epochs, label_smoothing=label_smoothing, ema_decay=ema_decay,
                      precision=precision, memory_format=memory_format, num_workers=num_workers, seed=seed,
                      val_every=val_every, progress=show_progress(progress), **recipe)
    if sampling not in SAMPLERS:
        raise ValueError(f"sampling={sampling!r}: one of {', '.join(SAMPLERS)}")
    if head not in HEADS:
        raise ValueError(f"head={head!r}: one of {', '.join(HEADS)}")
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: one of {', '.join(SPLITS)}")
    # the action classes come from the annotation files: read them now for the run's record
    splits = read_splits(data) if head == "action" else None
    if stale not in STALE:
        raise ValueError(f"stale={stale!r}: one of {', '.join(STALE)}")
    root = Path(runs_root)
    inflated = entry.kind == "3d" and pretrained is not None
    noise = inflation_noise if inflated and inflation in RANDOM_INFLATIONS else None
    params = dict(model=model, pretrained=relative_to_root(pretrained, root) if pretrained else None,
                  inflation=inflation if inflated else None, inflation_noise=noise, data=data.record,
                  num_frames=num_frames, crop_size=crop_size,
                  epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                  warmup_epochs=warmup_epochs, label_smoothing=label_smoothing, ema_decay=ema_decay,
                  precision=precision, seed=seed, max_train=max_train, max_val=max_val, val_every=val_every,
                  reversal_clips=reversal_clips, model_kwargs=model_kwargs,
                  **recipe_record(dict(recipe, sampling=sampling, clip_stride=clip_stride, head=head, split=split,
                                       tune_fraction=tune_fraction)),
                  **({"actions": action_record(action_pairs(splits))} if head == "action" else {}),
                  **({"frame_cache": {"train": frame_cache_size(crop_size, True),
                                      "val": frame_cache_size(crop_size, False)}} if frame_cache else {}),
                  **({"environment": dict(environment)} if environment else {}),
                  **({"data_root": relative_to_root(data_root, root)} if data_root is not None else {}),
                  made_by=made_by(__name__, memory_format=memory_format))
    existing = root / name / "results.json"
    if existing.exists() and json.loads((root / name / "params.json").read_text()) == json.loads(
            json.dumps(params, default=str)):
        return Run(root / name)
    set_threads(threads)
    # Everything that can fail is tried before the run folder exists.
    splits = splits or read_splits(data)
    # the action classes (initial_model) stay those of both files; only the segments are carved
    tuning = tune_fraction if split == "tune" else None
    carved = splits.tuning(tuning) if tuning else splits
    train_segments, val_segments = carved.train[:max_train], carved.validation[:max_val]
    missing = missing_videos(data, train_segments + val_segments)
    if missing:
        shown = ", ".join(missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
        raise FileNotFoundError(f"{len(missing)} video file(s) the segments need do not exist: {shown}")
    net = initial_model(model, splits, seed=seed, pretrained=pretrained, inflation=inflation,
                        inflation_noise=inflation_noise, head=head, runs_root=root, **model_kwargs)
    clips = dict(num_frames=num_frames, crop_size=crop_size, sampling=sampling, clip_stride=clip_stride,
                 frame_cache=frame_cache, tune_fraction=tuning)
    train_set = clip_dataset(data, "train", train=True, seed=seed, segments=train_segments, **clips)
    val_set = clip_dataset(data, "val", train=False, segments=val_segments, **clips)
    check_batches(batch_size, len(train_set), world_size(), accum_steps=accum_steps)
    task = ActionTask(actions=net.actions) if head == "action" else VIDEO
    # beside the step, the run keeps the reversal probe's clips and the loader's batches in flight (2 a worker), fp32
    check_step_memory(net, (3, num_frames, crop_size, crop_size), batch_size // world_size(), batch_size=batch_size,
                      accum_steps=accum_steps, device=cfg.device, precision=precision, memory_format=memory_format,
                      grad_checkpointing=grad_checkpointing, optimizer=optimizer, task=task,
                      host_bytes=4 * 3 * num_frames * crop_size ** 2
                      * (min(reversal_clips, len(val_set)) + 2 * num_workers * (batch_size // world_size())))
    run = open_run(root, name, params, lock=_rank() == 0, retrain_other_code=stale == "retrain")
    if run.complete:
        return run
    started = time.time()
    probes = [ReversalProbe(val_set, reversal_clips)] if reversal_clips else []
    trainer = Trainer(net, train_set, val_set, cfg, run.dir, task=task, probes=probes)
    history = trainer.fit()
    if trainer.rank != 0:  # under torchrun the first process evaluates and writes the results
        return run
    result = trainer.evaluate(val_set, desc="validation")
    write_predictions(run, result)
    run.write_results({"model": model, "pretrained": params["pretrained"], "inflation": params["inflation"],
                       "num_frames": num_frames, "seed": seed, "train_clips": len(train_set),
                       "val_clips": len(val_set), "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
                       "train_seconds": trainer.train_seconds, "epochs": len(history), "val": result.metrics,
                       "wall_clock": wall_clock(started), "environment": runtime.environment()})
    return run


def initial_model(model: str, splits, *, seed: int, pretrained: Optional[str] = None, inflation: str = "mean",
                  inflation_noise: float, head: str, runs_root: Path | str, **model_kwargs: Any):
    """A video model as a run starts it: seeded, with the splits' class counts, from `pretrained`
    (a path relative to the runs root, absolute, or timm:NAME), inflated by `inflation` for 3D;
    with `head="action"`, one classifier over the splits' action classes (`action_pairs`)."""
    root = Path(runs_root)
    inflated = _models.get_model_entry(model).kind == "3d" and pretrained is not None
    torch.manual_seed(seed)
    return _models.create_model(model, pretrained=resolve_from_root(pretrained, root) if pretrained else None,
                                num_verbs=len(splits.verbs), num_nouns=len(splits.nouns),
                                **({"actions": action_pairs(splits)} if head == "action" else {}),
                                **(dict(inflation=inflation, inflation_noise=inflation_noise, inflation_seed=seed)
                                   if inflated else {}), **model_kwargs)


def pretrain_images(name: str, *, model: str, image_size: int, image_scale: Optional[int], epochs: int,
                    batch_size: int, lr: float, held_out: int, max_train: Optional[int], views: Optional[int],
                    weight_decay: float = 0.05, warmup_epochs: float = 0.5, label_smoothing: float = 0.1,
                    precision: str = "auto", seed: int = 0, runs_root: Path | str, num_workers: int = 0,
                    progress: Optional[bool] = None, threads: Optional[int] = None, memory_format: str = "auto",
                    stale: str = "refuse") -> Run:
    """Train the 2D `model` to name Fashion-MNIST train items drawn in the videos' style, and save
    it as `model.safetensors` in timm's format (what `create_model(..., pretrained=PATH)` loads).

    Pictures are `image_size` pixels square with items and textures drawn as in an
    `image_scale`-pixel video frame (default `image_size`; `FashionImages`).

    The last `held_out` images of the train split are held out for validation, the rest (or
    the first `max_train` of them) train; t10k, the videos' items, is never used. `views`
    drawings of each training image are rendered once and shown in turn (None: a new drawing
    every epoch; `FashionImages`). What a profile sets has no default (`pretraining_params`).
    Runs live in `runs_root`; `made_by` and `stale` as for `train_video`.
    """
    if stale not in STALE:
        raise ValueError(f"stale={stale!r}: one of {', '.join(STALE)}")
    entry = _models.get_model_entry(model)
    if entry.kind != "image":
        raise ValueError(f"model: pretraining needs a 2D image model (e.g. efficientvit_b1), got {model!r}")
    _positive(image_size=image_size, epochs=epochs, batch_size=batch_size, held_out=held_out)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                      warmup_epochs=warmup_epochs, label_smoothing=label_smoothing, precision=precision,
                      num_workers=num_workers, seed=seed, progress=show_progress(progress),
                      memory_format=memory_format, **_ENGINE_RECIPE)
    params = dict(model=model, image_size=image_size, image_scale=image_scale, epochs=epochs, batch_size=batch_size,
                  lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
                  held_out=held_out, max_train=max_train, views=views, precision=precision, seed=seed,
                  made_by=made_by(__name__, memory_format=memory_format))
    root = Path(runs_root)
    set_threads(threads)
    full = FashionImages("train", size=image_size)
    n = len(full)
    if held_out >= n:
        raise ValueError(f"held_out={held_out}: the train split has only {n} images")
    train_idx = np.arange(n - held_out)[:max_train]
    train_set = FashionImages("train", size=image_size, scale=image_scale, train=True, seed=seed, indices=train_idx,
                              views=views)
    val_set = FashionImages("train", size=image_size, scale=image_scale, train=False, seed=seed,
                            indices=np.arange(n - held_out, n), views=1)
    torch.manual_seed(seed)
    net = _models.create_model(model, num_classes=len(FashionImages.classes))
    check_batches(batch_size, len(train_set), world_size(), accum_steps=1)
    run = open_run(root, name, params, retrain_other_code=stale == "retrain")
    if run.complete:
        return run
    started = time.time()
    for images in (train_set, val_set):  # every drawing at once, on as many processes as the run has threads
        images.render(workers=torch.get_num_threads())
    trainer = Trainer(net, train_set, val_set, cfg, run.dir, task=IMAGE)
    trainer.fit()
    result = trainer.evaluate(val_set, desc="validation")
    weights = run.dir / WEIGHTS_FILE
    with atomic_path(weights) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in trainer.eval_model.state_dict().items()}, str(tmp))
    run.write_results({"model": model, "checkpoint": relative_to_root(weights, root), "train_images": len(train_set),
                       "val_images": len(val_set), "train_seconds": trainer.train_seconds, "val": result.metrics,
                       "wall_clock": wall_clock(started), "environment": runtime.environment()})
    return run


def training_params(params, lr: Optional[float] = None) -> dict:
    """`train_video`'s protocol keywords (all but the model, its start and the seed) from the
    study's parameters (`StudyParams`), at the learning rate `lr` when given: a method's own
    (`methods.method_rates`), which a profile that gives each method its rate requires."""
    out = {key: getattr(params, key) for key in PROTOCOL}
    if lr is not None:
        out["lr"] = lr
    elif isinstance(out["lr"], dict):
        raise ParameterError(f"lr: the profile gives each method its own rate ({out['lr']}); give this run's "
                             f"(python -m evitvid train --lr RATE)")
    return out


def pretraining_params(params) -> dict:
    """`pretrain_images` keyword arguments from the study's parameters (`StudyParams`)."""
    return dict(image_size=params.pretrain_image_size, image_scale=params.pretrain_image_scale,
                epochs=params.pretrain_epochs, batch_size=params.pretrain_batch_size, lr=params.pretrain_lr,
                held_out=params.pretrain_held_out, max_train=params.pretrain_max_train, views=params.pretrain_views)


def checkpoint_source(pretrained: Optional[str | dict], model: str) -> Optional[str]:
    """What `pretrained` says `model` starts from: a path, `timm:NAME`, "auto" (the embedded
    study's image pretraining) or None (random init). A dict maps each model to its own
    source (e.g. B1 and L1 in one notebook)."""
    if isinstance(pretrained, dict):
        if model not in pretrained:
            raise ValueError(f"pretrained: no checkpoint given for {model!r} (given for {', '.join(pretrained)})")
        return pretrained[model]
    return pretrained


def pretraining_run(model: str, **pretraining: Any) -> tuple[str, dict]:
    """(run name, `pretrain_images` arguments) of the image pretraining of `model`'s 2D backbone
    with the `pretraining` arguments (`pretraining_params`): the folder is named by them."""
    image_model = _models.get_model_entry(model).image_model
    kwargs = {"model": image_model, **pretraining}
    return run_name(f"02_pretrain_{image_model}", kwargs), kwargs


