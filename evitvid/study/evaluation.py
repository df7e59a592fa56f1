"""Evaluating trained runs: predictions per segment, frames and positions, reversal, timing.

- `load_trained`, `segment_results`, `predictions_frame`: a finished run's model and its
  validation predictions (from `logits.npz`: every logit, so statistics need no model).
- `evaluate_frames`: accuracy with k frames per segment at several temporal positions (the
  paper's Fig. 2, done with positions); each result is cached under the run folder, keyed
  by every input that changes it (frames, position, validation subset, batch size, compile,
  backend and the checkpoint's contents).
- `ReversalProbe`: after each epoch, validation clips played forwards and backwards; how
  much the verb logits change (frame averaging: exactly 0). `reversal_at_initialisation`:
  the same before any training (I3D's mean inflation: 0 up to rounding).
- `time_inference`: inference time against frames (the paper's Fig. 3).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import models as _models
from ..atomic import write_bytes_atomic
from ..engine import evaluate
from ..engine.evaluate import EvalResult
from ..engine.tasks import VIDEO
from ..metrics import video_metrics
from ..models.action import action_scores
from ..runs import Run
from ..runtime import compile_for_inference, resolve_device, set_memory_format
from .data import DataPaths, clip_dataset, read_splits
from .training import show_progress

__all__ = ["load_trained", "segment_results", "predictions_frame", "positions", "evaluate_frames",
           "ReversalProbe", "reversal_at_initialisation", "time_inference"]

_log = logging.getLogger(__name__)


def _checkpoint_state(run: Run) -> dict:
    try:
        return torch.load(run.checkpoint, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"{run.checkpoint}: cannot read the run's checkpoint "
                         f"({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None


def load_trained(run: Run) -> torch.nn.Module:
    """The model of a finished `train_video` run, in eval mode (EMA weights when the run kept them)."""
    p = run.params
    splits = read_splits(DataPaths.from_record(p["data"]))
    net = _models.create_model(p["model"], num_verbs=len(splits.verbs), num_nouns=len(splits.nouns),
                               **p.get("model_kwargs", {}))
    state = _checkpoint_state(run)
    net.load_state_dict(state["ema"] if state.get("ema") else state["model"])
    return net.eval()


def _logits(run: Run) -> dict[str, np.ndarray]:
    z = np.load(run.dir / "logits.npz")
    return {k: z[k] for k in z.files}


def segment_results(run: Run) -> pd.DataFrame:
    """One row per validation segment: narration_id, true and predicted verb/noun, and whether
    the verb, noun and action (both) were right at top-1."""
    return _correctness(_logits(run))


def _correctness(z: dict) -> pd.DataFrame:
    verb_pred, noun_pred = z["verb_logits"].argmax(1), z["noun_logits"].argmax(1)
    pairs = action_scores(torch.from_numpy(z["verb_logits"]), torch.from_numpy(z["noun_logits"]), top_k=1)
    action = (pairs.verb[:, 0].numpy() == z["verb"]) & (pairs.noun[:, 0].numpy() == z["noun"])
    return pd.DataFrame({"narration_id": z["narration_id"], "verb": z["verb"], "noun": z["noun"],
                         "verb_pred": verb_pred, "noun_pred": noun_pred, "verb_correct": verb_pred == z["verb"],
                         "noun_correct": noun_pred == z["noun"], "action_correct": action})


def predictions_frame(run: Run) -> pd.DataFrame:
    """narration_id, true verb/noun, top-5 predicted verbs/nouns (best first) and their probabilities."""
    z = _logits(run)
    out = {"narration_id": z["narration_id"], "verb": z["verb"], "noun": z["noun"]}
    for name in ("verb", "noun"):
        p = torch.from_numpy(z[f"{name}_logits"]).softmax(-1)
        top = p.topk(min(5, p.shape[1]), dim=-1)
        out[f"{name}_top5"] = [" ".join(map(str, r)) for r in top.indices.tolist()]
        out[f"{name}_top5_prob"] = [" ".join(f"{x:.3f}" for x in r) for r in top.values.tolist()]
    return pd.DataFrame(out)


def positions(count: int) -> list[float]:
    """`count` temporal positions within each of a clip's parts: 0.5 (the midpoint) for one,
    else evenly spread centres (4: 0.125, 0.375, 0.625, 0.875)."""
    return [(j + 0.5) / count for j in range(count)]


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def evaluate_frames(run: Run, frames: Sequence[int] = (1, 2, 4, 8, 16), *, positions_per_clip: int = 1,
                    batch_size: int = 8, max_val: Optional[int] = None, torch_compile: bool = False,
                    backend: str = "torch", per_segment: bool = False) -> pd.DataFrame:
    """Validation metrics of a trained model with each number of frames per segment, at
    `positions_per_clip` temporal positions each (`positions`); one row per (frames, position),
    or per (frames, position, segment) with `per_segment=True` (correctness, for intervals).

    Each (frames, position) result is cached in `run.dir/frames/` keyed by every input that
    changes it, so a later call with other inputs never serves a stale row.
    `torch_compile=True` compiles the model once (checked against eager; eager when
    compiling fails: `runtime.compile_for_inference`). A frame-averaging model in eager
    PyTorch sees each frame a segment's clips share once (`_frame_averaged_clips`).
    """
    if any(not isinstance(n, int) or n <= 0 for n in frames):
        raise ValueError(f"frames={list(frames)!r}: frame counts must be positive integers")
    if backend != "torch":
        from ..inference import check_backend
        check_backend(backend)
    p = run.params
    limit = max_val if max_val is not None else p["max_val"]
    checkpoint = _file_digest(run.checkpoint)
    cache = run.dir / "frames"
    cache.mkdir(exist_ok=True)
    paths = {}
    for n in frames:
        for offset in positions(positions_per_clip):
            key = {"frames": n, "offset": offset, "max_val": limit, "batch_size": batch_size,
                   "compile": bool(torch_compile), "backend": backend, "checkpoint": checkpoint,
                   "crop_size": p["crop_size"]}
            paths[n, offset] = (key, cache / (hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
                                              + ".npz"))
    missing = [clip for clip, (_, path) in paths.items() if not path.exists()]
    if missing:
        data, device = DataPaths.from_record(p["data"]), resolve_device()
        net = set_memory_format(load_trained(run).to(device), "auto", device)

        def dataset(n: int, offset: float):
            return clip_dataset(data, "val", num_frames=n, crop_size=p["crop_size"], train=False, limit=limit,
                                sampling_offset=offset, frame_cache=bool(p.get("frame_cache")))
        compiled, results = False, {}
        if backend == "torch" and torch_compile:  # once, on the first missing clip's shape
            example = torch.randn(batch_size, 3, missing[0][0], p["crop_size"], p["crop_size"], device=device)
            net, status = compile_for_inference(net, example)
            compiled = status == "compiled"
            _log.info("evaluate_frames: %s", status)
        elif backend == "torch" and isinstance(net, _models.EfficientVitFrameAvg):
            results = _frame_averaged_clips(net, {clip: dataset(*clip) for clip in missing}, device,
                                            batch_size * max(frames))
        for n, offset in missing:
            if (n, offset) in results:
                res = results[n, offset]
            elif backend == "torch":
                res = evaluate(net, dataset(n, offset), device, batch_size, desc=f"{n} frames @ {offset:.3f}",
                               progress=show_progress(None))
            else:
                from ..inference import evaluate_with_backend
                res = evaluate_with_backend(load_trained(run), dataset(n, offset), backend, batch_size=batch_size)
            buffer = io.BytesIO()
            np.savez_compressed(buffer, key=json.dumps(paths[n, offset][0]), narration_id=np.array(res.narration_ids),
                                verb_logits=res.logits["verb"].numpy(), noun_logits=res.logits["noun"].numpy(),
                                verb=res.targets["verb"].numpy(), noun=res.targets["noun"].numpy(),
                                compiled=compiled)
            write_bytes_atomic(paths[n, offset][1], buffer.getvalue())
    tables = []
    for (n, offset), (_, path) in paths.items():
        z = np.load(path)
        z = {k: z[k] for k in z.files}
        if per_segment:
            tables.append(_correctness(z).assign(frames=n, position=offset))
        else:
            metrics = video_metrics(*(torch.from_numpy(z[k]) for k in ("verb_logits", "noun_logits", "verb", "noun")))
            tables.append(pd.DataFrame([{"frames": n, "position": offset, **metrics, "compiled": bool(z["compiled"])}]))
    return pd.concat(tables, ignore_index=True)


def _frame_averaged_clips(net: "_models.EfficientVitFrameAvg", datasets: dict, device: torch.device,
                          frames_per_batch: int) -> dict:
    """{clip: EvalResult} of a frame-averaging model on each evaluation dataset of `datasets`
    (the same segments, other frames or positions). Every frame a segment's clips read passes
    through the 2D trunk once, `frames_per_batch` at a time, and each clip averages its frames'
    features (`classify_frames`): the model's own computation on each clip, with the frames
    batched otherwise (equal to rounding). Fig. 2's 4 positions of 1 to 16 frames read 124
    frames of each segment, of which the embedded set's segments hold 96 different ones."""
    first = next(iter(datasets.values()))
    logits: dict = {clip: {"verb": [], "noun": []} for clip in datasets}
    pending: list = []  # (segment index, frame indices read, {clip: positions in them}, frames)

    def flush() -> None:
        if not pending:
            return
        video = torch.cat([f for *_, f in pending], dim=1).unsqueeze(0).to(device, dtype)
        features = net.frame_features(video)[0]
        starts = np.cumsum([0] + [len(read) for _, read, _, _ in pending])
        for clip in datasets:
            out = net.classify_frames(torch.stack([features[int(start) + where[clip]]
                                                   for start, (_, _, where, _) in zip(starts, pending)]))
            logits[clip]["verb"].append(out.verb.cpu())
            logits[clip]["noun"].append(out.noun.cpu())
        pending.clear()

    dtype = next(net.parameters()).dtype
    net.eval()
    with torch.inference_mode():
        for i in tqdm(range(len(first)), desc="frame features", leave=False, disable=not show_progress(None)):
            wanted = {clip: ds.indices(i) for clip, ds in datasets.items()}
            read = np.unique(np.concatenate(list(wanted.values())))
            where = {clip: torch.from_numpy(np.searchsorted(read, idx)) for clip, idx in wanted.items()}
            if sum(len(r) for _, r, _, _ in pending) + len(read) > frames_per_batch:
                flush()
            pending.append((i, read, where, first.frames(i, read)))
        flush()
    segments = first.segments
    targets = {head: torch.tensor([getattr(s, f"{head}_class") for s in segments]) for head in ("verb", "noun")}
    ids = [s.narration_id for s in segments]
    out = {}
    for clip, heads in logits.items():
        joined = {head: torch.cat(v) for head, v in heads.items()}
        out[clip] = EvalResult(VIDEO.metrics(joined, targets), ids, joined, targets)
    return out


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


def time_inference(model: str, frames: Sequence[int] = (1, 2, 4, 8, 16), *, crop_size: int = 224,
                   batch_size: int = 1, repeats: int = 5, warmup: int = 2, threads: Optional[int] = None,
                   backend: str = "torch", precision: str = "fp32", **model_kwargs: Any) -> pd.DataFrame:
    """Inference time per clip and per frame against frames per clip (the paper's Fig. 3): every
    repeat's time is kept (`ms_per_clip` per repeat), so intervals can be drawn from them.

    `backend` "torch" runs PyTorch eager (channels-last on CPU); "onnxruntime" and "openvino"
    run the model compiled for each number of frames (`evitvid.inference.compile_model`, on the
    CPU; compiling is not timed) at `precision` (fp32; OpenVINO also bf16 or fp16 where the CPU
    has it). Each row records its backend and precision."""
    if min(crop_size, batch_size, repeats) <= 0:
        raise ValueError(f"must be positive: crop_size={crop_size}, batch_size={batch_size}, repeats={repeats}")
    from ..inference import check_backend, check_precision, compile_model
    check_backend(backend)
    check_precision(backend, precision)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device() if backend == "torch" else torch.device("cpu")
    net = _models.create_model(model, **model_kwargs).eval().to(device)
    if backend == "torch":
        net = set_memory_format(net, "auto", device)
    rows = []
    for n in frames:
        x = torch.randn(batch_size, 3, n, crop_size, crop_size, device=device)
        run = net if backend == "torch" else compile_model(net, x.shape[1:], backend, precision=precision,
                                                            threads=threads)
        with torch.no_grad():
            for i in range(warmup + repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                run(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    clip_ms = (time.perf_counter() - t) * 1000 / batch_size
                    rows.append({"model": model, "frames": n, "repeat": i - warmup, "ms_per_clip": clip_ms,
                                 "ms_per_frame": clip_ms / n, "threads": torch.get_num_threads(),
                                 "device": str(device), "backend": backend, "precision": precision})
    return pd.DataFrame(rows)


def reversal_at_initialisation(params, keys: Optional[Sequence[str]] = None, data: Optional[DataPaths] = None,
                               batch_size: Optional[int] = None) -> pd.DataFrame:
    """How much each 3D method's verb logits change under time reversal before any training:
    the model as its runs start it (same seed, weights, inflation), batch-norm statistics set
    from one training batch (as the first training step would see them), probed on validation
    clips (`ReversalProbe`). One row per (method, seed)."""
    from .methods import method_runs, study_data, study_methods
    from .training import initial_model
    methods = study_methods(params)
    keys = [k for k, m in methods.items() if _models.get_model_entry(m.model).kind == "3d"] if keys is None \
        else list(keys)
    data = data or study_data(params)
    splits = read_splits(data)
    train = clip_dataset(data, "train", num_frames=params.num_frames, crop_size=params.crop_size, train=True,
                         seed=0, segments=splits.train, frame_cache=params.frame_cache)
    batch = torch.stack([train[i]["video"] for i in range(batch_size or params.batch_size)])
    val = clip_dataset(data, "val", num_frames=params.num_frames, crop_size=params.crop_size, train=False,
                       segments=splits.validation[:params.max_val], frame_cache=params.frame_cache)
    probe = ReversalProbe(val, params.reversal_clips or 128)
    rows = []
    for key, specs in method_runs(params, keys, data).items():
        for spec in specs:
            kw = spec.kwargs
            net = initial_model(kw["model"], splits, seed=kw["seed"], pretrained=kw["pretrained"],
                                inflation=kw["inflation"], inflation_noise=kw["inflation_noise"],
                                runs_root=params.runs_root, time_padding=kw["time_padding"])
            for m in net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.reset_running_stats()
                    m.momentum = None  # a cumulative average: one batch sets the statistics
            net.train()
            with torch.no_grad():
                net(batch)
            rows.append({"method": methods[key].label, "seed": kw["seed"], **probe(net)})
    return pd.DataFrame(rows)
