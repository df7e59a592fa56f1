"""Accuracy against the number of frames a segment is seen with (the paper's Fig. 2).

`evaluate_frames` runs a finished model on the validation split with k frames per segment at
several temporal positions (`positions`). Each result is cached under the run folder, keyed
by every input that changes it (frames, position, validation subset, batch size, compile,
backend and the checkpoint's contents), so a later call with other inputs never serves a
stale row. A frame-averaging model sees each frame a segment's clips share once
(`_frame_averaged_clips`).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import models as _models
from ..atomic import write_bytes_atomic
from ..engine import evaluate
from ..engine.evaluate import EvalResult
from ..engine.tasks import VIDEO
from ..inference import check_backend, evaluate_with_backend
from ..metrics import video_metrics
from ..runs import Run
from ..runtime import compile_for_inference, resolve_device, set_memory_format
from .data import clip_dataset
from .predictions import correctness, load_trained, run_data
from .training import show_progress

__all__ = ["positions", "evaluate_frames"]

_log = logging.getLogger(__name__)


def positions(count: int) -> list[float]:
    """`count` temporal positions: 0.5 for one, else evenly spread centres (4: 0.125, 0.375,
    0.625, 0.875). TSN takes each frame there within its part of the segment; dense sampling
    places its clip there within the room the segment leaves it (several clips of a segment)."""
    return [(j + 0.5) / count for j in range(count)]


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def evaluate_frames(run: Run, frames: Sequence[int] = (1, 2, 4, 8, 16), *, positions_per_clip: int = 1,
                    batch_size: int = 8, max_val: Optional[int] = None, torch_compile: bool = False,
                    backend: str = "torch", per_segment: bool = False, average_positions: bool = False
                    ) -> pd.DataFrame:
    """Validation metrics of a trained model with each number of frames per segment, at
    `positions_per_clip` temporal positions each (`positions`), sampled as the run trained (TSN,
    or dense clips at its stride); one row per (frames, position), or per (frames, position,
    segment) with `per_segment=True` (correctness, for intervals). With `average_positions`, the
    positions are one multi-clip evaluation: each segment's logits averaged over them (AVION's
    and TSN's several views), one row per frames (position "mean").

    Each (frames, position) result is cached in `run.dir/frames/` keyed by every input that
    changes it, so a later call with other inputs never serves a stale row.
    `torch_compile=True` compiles the model once (checked against eager; eager when
    compiling fails: `runtime.compile_for_inference`). A frame-averaging model in eager
    PyTorch sees each frame a segment's clips share once (`_frame_averaged_clips`).
    """
    if any(not isinstance(n, int) or n <= 0 for n in frames):
        raise ValueError(f"frames={list(frames)!r}: frame counts must be positive integers")
    if backend != "torch":
        check_backend(backend)
    p = run.params
    sampling, stride = p.get("sampling", "tsn"), p.get("clip_stride", 2)  # recorded where not TSN's
    limit = max_val if max_val is not None else p["max_val"]
    checkpoint = _file_digest(run.checkpoint)
    cache = run.dir / "frames"
    cache.mkdir(exist_ok=True)
    paths = {}
    for n in frames:
        for offset in positions(positions_per_clip):
            key = {"frames": n, "offset": offset, "max_val": limit, "batch_size": batch_size,
                   "compile": bool(torch_compile), "backend": backend, "checkpoint": checkpoint,
                   "crop_size": p["crop_size"],  # TSN's keys as before dense runs were evaluated densely
                   **({"sampling": sampling, "clip_stride": stride} if sampling != "tsn" else {})}
            paths[n, offset] = (key, cache / (hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
                                              + ".npz"))
    missing = [clip for clip, (_, path) in paths.items() if not path.exists()]
    if missing:
        device = resolve_device()
        net = set_memory_format(load_trained(run).to(device), "auto", device)
        data = run_data(run)

        def dataset(n: int, offset: float):
            return clip_dataset(data, "val", num_frames=n, crop_size=p["crop_size"], train=False, limit=limit,
                                sampling=sampling, clip_stride=stride, sampling_offset=offset,
                                frame_cache=bool(p.get("frame_cache")))
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
                res = evaluate_with_backend(load_trained(run), dataset(n, offset), backend, batch_size=batch_size)
            buffer = io.BytesIO()
            np.savez_compressed(buffer, key=json.dumps(paths[n, offset][0]), narration_id=np.array(res.narration_ids),
                                verb_logits=res.logits["verb"].numpy(), noun_logits=res.logits["noun"].numpy(),
                                verb=res.targets["verb"].numpy(), noun=res.targets["noun"].numpy(),
                                compiled=compiled)
            write_bytes_atomic(paths[n, offset][1], buffer.getvalue())
    results = {}
    for (n, offset), (_, path) in paths.items():
        with np.load(path, allow_pickle=False) as z:
            results[n, offset] = {k: z[k] for k in z.files}
    if average_positions:
        results = {(n, "mean"): _averaged([z for (m, _), z in results.items() if m == n]) for n in frames}
    tables = []
    for (n, offset), z in results.items():
        if per_segment:
            tables.append(correctness(z).assign(frames=n, position=offset))
        else:
            metrics = video_metrics(*(torch.from_numpy(z[k]) for k in ("verb_logits", "noun_logits", "verb", "noun")))
            tables.append(pd.DataFrame([{"frames": n, "position": offset, **metrics, "compiled": bool(z["compiled"])}]))
    return pd.concat(tables, ignore_index=True)


def _averaged(views: list[dict]) -> dict:
    """One evaluation from several of the same segments (`evaluate_frames`' cached results at
    several positions): the logits averaged over them, in float64, the rest the first's."""
    first = views[0]
    if any(not np.array_equal(v["narration_id"], first["narration_id"]) for v in views):
        raise ValueError("the positions evaluated other segments: they cannot be averaged")
    out = dict(first)
    for key in ("verb_logits", "noun_logits"):
        out[key] = np.mean([v[key].astype(np.float64) for v in views], axis=0)
    out["compiled"] = all(bool(v["compiled"]) for v in views)
    return out


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
