"""The study's steps, one function each, called by the book's notebooks and the CLI.

Each step takes literal parameters (what a notebook's `parameters` cell holds), writes its
run folder (`evitvid.runs`) and returns it; a step whose run folder is complete returns it
without training again, and an interrupted one resumes.

- `resolve_data`: the embedded synthetic dataset (`"synth:default"`, generated once into
  `data/`) or a real EK100 layout (annotation folder + AVION chunked videos).
- `train_video`: frame-averaged or 3D model on verb and noun labels, then predictions on
  the validation set.
- `evaluate_frames`: a trained model evaluated with 1, 2, 4, 8, 16 frames (the paper's Fig. 2).
- `time_inference`: inference time against frames (the paper's Fig. 3).
- `pretrain_images`: the 2D model on Fashion-MNIST train images, the stand-in for ImageNet
  pretraining on the embedded dataset; its checkpoint is a timm-format file, loaded and
  inflated exactly as a real ImageNet checkpoint would be.
- `reversal_accuracy`: accuracy within each time-reversed verb pair (put/take, ...).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from . import models as _models
from .atomic import atomic_path
from .atomic import write_json_atomic
from .engine import IMAGE, TrainConfig, Trainer, evaluate
from .runtime import compile_for_inference, resolve_device, set_memory_format
from .runs import Run, find_run, open_run

_log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = REPO_ROOT / "runs"

# Verb pairs that are time-reversals of each other, by class key (EK100 and the synthetic set).
REVERSAL_PAIRS: tuple[tuple[str, str], ...] = (
    ("take", "put"), ("open", "close"), ("turn-on", "turn-off"), ("push", "pull"),
    ("rotate-clockwise", "rotate-anticlockwise"), ("move-left", "move-right"),
)


@dataclass(frozen=True)
class DataPaths:
    train_csv: Path
    val_csv: Path
    verb_classes: Path
    noun_classes: Path
    videos: Path
    layout: str = "chunked"

    @classmethod
    def from_params(cls, params: dict) -> "DataPaths":
        """The paths a run recorded in its params.json (as strings)."""
        return cls(**{k: v if k == "layout" else Path(v) for k, v in params.items()})

    def check(self) -> "DataPaths":
        for name, path in asdict(self).items():
            if name != "layout" and not Path(path).exists():
                raise FileNotFoundError(f"{name}: {path} does not exist")
        return self


def resolve_data(dataset: str = "synth:default", *, annotations_dir: Optional[str] = None,
                 videos_dir: Optional[str] = None, layout: str = "chunked", seed: int = 0) -> DataPaths:
    """Where the annotation CSVs and videos are.

    `dataset` is `"synth:PRESET"` (generated into `data/synth-PRESET` on first use), or a
    folder holding `annotations/` and `videos/` as the synthetic set does. For the real
    EK100, pass `annotations_dir` (the epic-kitchens-100-annotations checkout) and
    `videos_dir` (AVION's resized chunks) instead.
    """
    if annotations_dir or videos_dir:
        if not (annotations_dir and videos_dir):
            raise ValueError("annotations_dir and videos_dir go together (got only one of them)")
        ann, videos = Path(annotations_dir), Path(videos_dir)
    elif dataset.startswith("synth:"):
        from .data.synth import generate
        root = generate(preset=dataset.split(":", 1)[1], seed=seed)
        ann, videos = root / "annotations", root / "videos"
    else:
        root = Path(dataset)
        if not root.is_dir():
            raise FileNotFoundError(f"dataset: {root} is not a folder (nor 'synth:PRESET')")
        ann, videos = root / "annotations", root / "videos"
    return DataPaths(ann / "EPIC_100_train.csv", ann / "EPIC_100_validation.csv", ann / "EPIC_100_verb_classes.csv",
                     ann / "EPIC_100_noun_classes.csv", videos, layout).check()


def class_names(path: Path) -> list[str]:
    from .data import read_classes
    return [c.key for c in read_classes(path)]


def _show_bars(progress: Optional[bool]) -> bool:
    """Progress bars in a terminal; in a notebook kernel (papermill) only the per-epoch lines,
    which are what an executed notebook should keep."""
    if progress is not None:
        return progress
    try:
        from IPython import get_ipython
        return get_ipython() is None
    except ImportError:
        return True


def _check_positive(**values: int) -> None:
    bad = [f"{k}={v!r}" for k, v in values.items() if v is None or v <= 0]
    if bad:
        raise ValueError(f"must be positive: {', '.join(bad)}")


def check_parameters(**params: Any) -> None:
    """Fail at once, naming the parameter, on values a notebook would otherwise trip over
    minutes later: model names (`model`, `models`, `*_model`, `model_*`), frame counts and sizes
    (`num_frames`, `*_frames` lists, `crop_size`, `epochs`, `batch_size`, ...)."""
    problems = []
    for name, value in params.items():
        if name == "models" or name == "model" or name.endswith("_model") or name.startswith("model_"):
            for model in (value if isinstance(value, (list, tuple)) else [value]):
                if model not in _models.list_models():
                    problems.append(f"{name}: unknown model {model!r} (see evitvid.list_models())")
        elif name.endswith("_frames") and isinstance(value, (list, tuple)):
            if not value or any(not isinstance(v, int) or v <= 0 for v in value):
                problems.append(f"{name}={value!r}: frame counts must be positive integers")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            problems.append(f"{name}={value!r}: must be positive")
    if problems:
        raise ValueError("bad parameter(s): " + "; ".join(problems))


def make_dataset(data: DataPaths, split: str, *, num_frames: int, crop_size: int, train: bool, seed: int = 0,
                 limit: Optional[int] = None, model_cfg: Optional[dict] = None):
    """An `EK100Dataset` on one split; `limit` keeps the first segments (a smoke run)."""
    from .data import EK100Dataset
    segments = read_split(data, split)
    if limit:
        segments = segments[:limit]
    cfg = model_cfg or _models.EfficientVit.default_cfg
    # No flip: it would turn move-left into move-right and clockwise into anticlockwise.
    return EK100Dataset(segments, data.videos, layout=data.layout, num_frames=num_frames, train=train,
                        crop_size=crop_size, flip=False, mean=cfg["mean"], std=cfg["std"], seed=seed)


def read_split(data: DataPaths, split: str) -> list:
    from .data import read_classes, read_segments
    path = data.train_csv if split == "train" else data.val_csv
    return list(read_segments(path, verb_classes=read_classes(data.verb_classes),
                              noun_classes=read_classes(data.noun_classes)).values())


def dataset_summary(data: DataPaths, frames_per_segment: int = 16) -> pd.DataFrame:
    """The paper's dataset statistics per split (segments, videos, shortest/longest/mean length
    in frames and seconds, classes present, images a fixed-frames extraction would write)."""
    from .data import dataset_stats
    rows = {}
    for split in ("train", "validation"):
        segments = read_split(data, split)
        row = asdict(dataset_stats(segments))
        row["images_extracted"] = frames_per_segment * row["segments"]
        rows[split] = row
    return pd.DataFrame(rows).dropna(how="all")


def class_counts(data: DataPaths) -> pd.DataFrame:
    """Segments per verb and noun class and split (columns: kind, class, split, segments)."""
    verbs, nouns = class_names(data.verb_classes), class_names(data.noun_classes)
    rows = []
    for split in ("train", "validation"):
        segments = read_split(data, split)
        for kind, names, attr in (("verb", verbs, "verb_class"), ("noun", nouns, "noun_class")):
            counts = pd.Series([getattr(s, attr) for s in segments]).value_counts()
            rows += [{"kind": kind, "class": names[i], "split": split, "segments": int(n)} for i, n in counts.items()]
    return pd.DataFrame(rows)


def segment_lengths(data: DataPaths) -> pd.DataFrame:
    return pd.DataFrame([{"split": split, "seconds": s.duration, "frames": s.num_frames}
                         for split in ("train", "validation") for s in read_split(data, split)])


def _load_weights(model: torch.nn.Module, run: Run) -> torch.nn.Module:
    state = torch.load(run.checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict(state["ema"] if state.get("ema") else state["model"])
    return model.eval()


def _write_predictions(run: Run, result) -> pd.DataFrame:
    np.savez_compressed(run.dir / "logits.npz", narration_id=np.array(result.narration_ids),
                        verb_logits=result.logits["verb"].numpy(), noun_logits=result.logits["noun"].numpy(),
                        verb=result.targets["verb"].numpy(), noun=result.targets["noun"].numpy())
    df = predictions_frame(run)
    with atomic_path(run.dir / "predictions.csv") as tmp:
        df.to_csv(tmp, index=False)
    return df


def predictions_frame(run: Run) -> pd.DataFrame:
    """narration_id, true verb/noun, top-5 predicted verbs/nouns (best first) and their probabilities."""
    z = np.load(run.dir / "logits.npz")
    out = {"narration_id": z["narration_id"], "verb": z["verb"], "noun": z["noun"]}
    for name in ("verb", "noun"):
        p = torch.from_numpy(z[f"{name}_logits"]).softmax(-1)
        top = p.topk(min(5, p.shape[1]), dim=-1)
        out[f"{name}_top5"] = [" ".join(map(str, r)) for r in top.indices.tolist()]
        out[f"{name}_top5_prob"] = [" ".join(f"{x:.3f}" for x in r) for r in top.values.tolist()]
    return pd.DataFrame(out)


def train_video(name: str, *, model: str, data: DataPaths, pretrained: Optional[str] = None, num_frames: int = 8,
                crop_size: int = 64, epochs: int = 3, batch_size: int = 8, lr: float = 1e-3,
                weight_decay: float = 0.05, warmup_epochs: float = 0.5, label_smoothing: float = 0.1,
                ema_decay: Optional[float] = None, precision: str = "auto", num_workers: int = 0, seed: int = 0,
                max_train: Optional[int] = None, max_val: Optional[int] = None,
                runs_root: Optional[Path | str] = None, progress: Optional[bool] = None,
                memory_format: str = "auto", **model_kwargs: Any) -> Run:
    """Train a video model (frame-averaged or 3D) and write its run folder; resumes or returns a finished run.

    `num_workers`, `progress` and `memory_format` only change speed and output, so they are
    not part of the run's recorded parameters.
    """
    _models.get_model_entry(model)  # an unknown name fails now, not after the data is read
    _check_positive(num_frames=num_frames, crop_size=crop_size, epochs=epochs, batch_size=batch_size)
    params = dict(model=model, pretrained=pretrained, data={k: str(v) for k, v in asdict(data).items()},
                  num_frames=num_frames, crop_size=crop_size, epochs=epochs, batch_size=batch_size, lr=lr,
                  weight_decay=weight_decay, warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
                  ema_decay=ema_decay, precision=precision, seed=seed, max_train=max_train, max_val=max_val,
                  model_kwargs=model_kwargs)
    run = open_run(runs_root or DEFAULT_RUNS, name, params)
    if run.complete:
        return run
    verbs, nouns = class_names(data.verb_classes), class_names(data.noun_classes)
    torch.manual_seed(seed)
    net = _models.create_model(model, pretrained=pretrained, num_verbs=len(verbs), num_nouns=len(nouns),
                               **model_kwargs)
    train_set = make_dataset(data, "train", num_frames=num_frames, crop_size=crop_size, train=True, seed=seed,
                             limit=max_train)
    val_set = make_dataset(data, "val", num_frames=num_frames, crop_size=crop_size, train=False, limit=max_val)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                      warmup_epochs=warmup_epochs, label_smoothing=label_smoothing, ema_decay=ema_decay,
                      precision=precision, memory_format=memory_format, num_workers=num_workers, seed=seed,
                      progress=_show_bars(progress))
    started = time.perf_counter()
    trainer = Trainer(net, train_set, val_set, cfg, run.dir)
    history = trainer.fit()
    train_seconds = time.perf_counter() - started
    if trainer.rank != 0:  # under torchrun the first process evaluates and writes the results
        return run
    result = trainer.evaluate(val_set, desc="validation")
    _write_predictions(run, result)
    run.write_results({"model": model, "pretrained": pretrained, "num_frames": num_frames,
                       "train_clips": len(train_set), "val_clips": len(val_set),
                       "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
                       "train_seconds": train_seconds, "epochs": len(history), "val": result.metrics})
    return run


def load_trained(run: Run) -> torch.nn.Module:
    """The model of a finished `train_video` run, in eval mode (EMA weights when the run kept them)."""
    p = run.params
    data = DataPaths.from_params(p["data"])
    net = _models.create_model(p["model"], num_verbs=len(class_names(data.verb_classes)),
                               num_nouns=len(class_names(data.noun_classes)), **p.get("model_kwargs", {}))
    return _load_weights(net, run)


def evaluate_frames(run: Run, frames: Sequence[int] = (1, 2, 4, 8, 16), *, batch_size: int = 8,
                    max_val: Optional[int] = None, torch_compile: bool = False) -> pd.DataFrame:
    """Validation metrics of a trained model with each number of frames per segment (cached in the run folder).

    `torch_compile=True` compiles the model once (checked against eager on the first number
    of frames, eager when compiling fails: `runtime.compile_for_inference`); each other
    input shape compiles again on first use. Worth it for the full EK100 validation set, not
    for a few hundred clips. Each row records whether it ran compiled.
    """
    _check_positive(**{f"frames[{i}]": f for i, f in enumerate(frames)})
    cache = run.dir / "frames.json"
    rows = json.loads(cache.read_text()) if cache.exists() else []
    done = {r["frames"] for r in rows}
    p = run.params
    data = DataPaths.from_params(p["data"])
    net, compiled, device = None, False, resolve_device()
    for n in frames:
        if n in done:
            continue
        if net is None:
            net = set_memory_format(load_trained(run).to(device), "auto", device)
            if torch_compile:
                example = torch.randn(batch_size, 3, n, p["crop_size"], p["crop_size"], device=device)
                net, status = compile_for_inference(net, example)
                compiled = status == "compiled"
                _log.info("evaluate_frames: %s", status)
        val = make_dataset(data, "val", num_frames=n, crop_size=p["crop_size"], train=False,
                           limit=max_val if max_val is not None else p["max_val"])
        res = evaluate(net, val, device, batch_size, desc=f"{n} frames", progress=_show_bars(None))
        rows.append({"frames": n, **res.metrics, "compiled": compiled})
        write_json_atomic(cache, rows)
    return pd.DataFrame([r for r in rows if r["frames"] in set(frames)]).sort_values("frames").reset_index(drop=True)


def time_inference(model: str, frames: Sequence[int] = (1, 2, 4, 8, 16), *, crop_size: int = 224,
                   batch_size: int = 1, repeats: int = 5, warmup: int = 2, threads: Optional[int] = None,
                   **model_kwargs: Any) -> pd.DataFrame:
    """Median inference time per clip and per frame against frames per clip (the paper's Fig. 3)."""
    _check_positive(crop_size=crop_size, batch_size=batch_size, repeats=repeats)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device()
    net = set_memory_format(_models.create_model(model, **model_kwargs).eval().to(device), "auto", device)
    rows = []
    for n in frames:
        x = torch.randn(batch_size, 3, n, crop_size, crop_size, device=device)
        times = []
        with torch.no_grad():
            for i in range(warmup + repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                net(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    times.append(time.perf_counter() - t)
        clip_ms = float(np.median(times)) * 1000 / batch_size
        rows.append({"model": model, "frames": n, "ms_per_clip": clip_ms, "ms_per_frame": clip_ms / n,
                     "threads": torch.get_num_threads(), "device": str(device)})
    return pd.DataFrame(rows)


def benchmark_run(name: str = "06_performance", *, preset: str = "light", threads: Optional[int] = None,
                  layout: str = "channels_last", torch_compile: bool = True, runs_root: Optional[Path | str] = None,
                  rerun: bool = False) -> Run:
    """`python -m evitvid bench` as a study step: its results in the run folder `name`.

    A finished run with the same parameters is returned as it is (timings describe the
    machine and code they were taken on: `rerun=True` measures again). `torch_compile` adds
    the torch.compile section to a preset without one.
    """
    from . import bench
    cfg = bench.bench_config(preset, threads=threads or None, layout=layout, compile=torch_compile)
    params = dict(preset=preset, threads=cfg.threads, layout=layout, torch_compile=torch_compile)
    run = open_run(runs_root or DEFAULT_RUNS, name, params, fresh=rerun)
    if run.complete:
        return run
    run.write_results(bench.benchmark(cfg, log=lambda line: _log.info("bench: %s", line)))
    return run


def pretrain_images(name: str = "02_image_pretraining", *, model: str = "efficientvit_b1", image_size: int = 64,
                    epochs: int = 2, batch_size: int = 64, lr: float = 2e-3, weight_decay: float = 0.05,
                    warmup_epochs: float = 0.3, label_smoothing: float = 0.1, max_train: Optional[int] = 12000,
                    val_images: int = 2000, precision: str = "auto", num_workers: int = 0, seed: int = 0,
                    runs_root: Optional[Path | str] = None, progress: Optional[bool] = None) -> Run:
    """Train the 2D `model` to name Fashion-MNIST train items drawn in the videos' style, and save
    it as `model.safetensors` in timm's format (what `create_model(..., pretrained=PATH)` loads).

    The last `val_images` of the train split are held out for validation; t10k, the videos'
    items, is never used.
    """
    from safetensors.torch import save_file

    from .data.images import FashionImages
    entry = _models.get_model_entry(model)
    if entry.kind != "image":
        raise ValueError(f"model: pretraining needs a 2D image model (e.g. efficientvit_b1), got {model!r}")
    _check_positive(image_size=image_size, epochs=epochs, batch_size=batch_size, val_images=val_images)
    params = dict(model=model, image_size=image_size, epochs=epochs, batch_size=batch_size, lr=lr,
                  weight_decay=weight_decay, warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
                  max_train=max_train, val_images=val_images, precision=precision, seed=seed)
    run = open_run(runs_root or DEFAULT_RUNS, name, params)
    if run.complete:
        return run
    full = FashionImages("train", size=image_size)
    n = len(full)
    train_idx = np.arange(n - val_images)[:max_train]
    train_set = FashionImages("train", size=image_size, train=True, seed=seed, indices=train_idx)
    val_set = FashionImages("train", size=image_size, train=False, seed=seed, indices=np.arange(n - val_images, n))
    torch.manual_seed(seed)
    net = _models.create_model(model, num_classes=len(FashionImages.classes))
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                      warmup_epochs=warmup_epochs, label_smoothing=label_smoothing, precision=precision,
                      num_workers=num_workers, seed=seed, progress=_show_bars(progress))
    started = time.perf_counter()
    trainer = Trainer(net, train_set, val_set, cfg, run.dir, task=IMAGE)
    trainer.fit()
    train_seconds = time.perf_counter() - started
    result = trainer.evaluate(val_set, desc="validation")
    weights = run.dir / "model.safetensors"
    with atomic_path(weights) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in trainer.eval_model.state_dict().items()}, str(tmp))
    run.write_results({"model": model, "checkpoint": str(weights), "train_images": len(train_set),
                       "val_images": len(val_set), "train_seconds": train_seconds, "val": result.metrics})
    return run


# The paper's verb top-1 accuracies on EK100 validation (%), as it reports them.
PAPER_VERB_TOP1: dict[str, float] = {
    "frame averaging (B1-r288, ImageNet)": 22.35,
    "frame averaging (L1-r224, ImageNet)": 22.55,
    "3D (B1-r288, random init)": 23.7,
    "3D (B1-r288, ImageNet inflated)": 27.7,
}


def compare_methods(runs: dict[str, Run]) -> pd.DataFrame:
    """One row per method: verb, noun and action top-1 and top-5 (%) of finished runs."""
    rows = []
    for label, run in runs.items():
        val = run.results["val"]
        rows.append({"method": label, **{k: 100 * val[k] for k in (
            "verb_top1", "noun_top1", "action_top1", "verb_top5", "noun_top5", "action_top5")},
            "train_minutes": run.results["train_seconds"] / 60})
    return pd.DataFrame(rows)


def completed_run(name: str, runs_root: Optional[Path | str] = None) -> Optional[Run]:
    """The finished run `name` in `runs_root`, whatever its parameters (they are in its params.json), or None."""
    run = find_run(runs_root or DEFAULT_RUNS, name)
    return run if run is not None and run.complete else None


def open_notebook_run(name: str, params: dict, runs_root: Optional[Path | str] = None) -> Run:
    """A run folder for a notebook that trains nothing itself (data, results, explorer): parameters and figures.
    Rerunning with other parameters starts the folder afresh."""
    return open_run(runs_root or DEFAULT_RUNS, name, params, fresh=True)


def image_model_of(model: str) -> str:
    """The 2D image model a video model is built from: efficientvit_b1_3d -> efficientvit_b1."""
    entry = _models.get_model_entry(model)
    return model if entry.kind == "image" else model.rsplit("_", 1)[0]


def resolve_pretrained(pretrained: Optional[str | dict], model: str, *, runs_root: Optional[Path | str] = None,
                       **pretraining: Any) -> Optional[str]:
    """`pretrained` as `create_model` takes it (a dict maps each model to its own). "auto" means the embedded study's stand-in for
    ImageNet: the image-pretraining run of `model`'s 2D backbone, trained now if it is not in
    `runs_root` yet (with `pretraining` arguments), reused otherwise. None means random init."""
    if isinstance(pretrained, dict):  # one checkpoint per model, e.g. B1 and L1 in one notebook
        if model not in pretrained:
            raise ValueError(f"pretrained: no checkpoint given for {model!r} (given for {', '.join(pretrained)})")
        pretrained = pretrained[model]
    if pretrained != "auto":
        return pretrained
    image_model = image_model_of(model)
    name = f"02_pretrain_{image_model}"
    run = completed_run(name, runs_root) or pretrain_images(name, model=image_model, runs_root=runs_root,
                                                           **pretraining)
    return run.results["checkpoint"]


def reversal_accuracy(run: Run) -> pd.DataFrame:
    """For each time-reversed verb pair present: accuracy of choosing between the two verbs
    on the segments of either (chance is 50%), and the number of segments."""
    z = np.load(run.dir / "logits.npz")
    data = run.params["data"]
    keys = class_names(Path(data["verb_classes"]))
    index = {k: i for i, k in enumerate(keys)}
    rows = []
    for a, b in REVERSAL_PAIRS:
        if a not in index or b not in index:
            continue
        ia, ib = index[a], index[b]
        mask = np.isin(z["verb"], [ia, ib])
        if not mask.any():
            continue
        pick = np.where(z["verb_logits"][mask, ia] >= z["verb_logits"][mask, ib], ia, ib)
        rows.append({"pair": f"{a} / {b}", "segments": int(mask.sum()),
                     "pair_accuracy": float((pick == z["verb"][mask]).mean())})
    return pd.DataFrame(rows)


__all__ = ["DataPaths", "REVERSAL_PAIRS", "PAPER_VERB_TOP1", "benchmark_run", "check_parameters", "class_counts", "class_names", "compare_methods", "completed_run", "dataset_summary", "evaluate_frames",
           "find_run", "image_model_of", "load_trained", "make_dataset", "open_notebook_run", "predictions_frame", "pretrain_images",
           "read_split", "resolve_data", "resolve_pretrained", "reversal_accuracy", "segment_lengths",
           "time_inference", "train_video"]
