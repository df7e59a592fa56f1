"""Data-loader throughput: `python -m evitvid bench-data [--root DIR]`.

Zhao and Krähenbühl (AVION, the paper's ref. [16]) name IO and CPU decoding as training
bottlenecks. This measures, on the synthetic dataset (`evitvid.data.synth`, AVION's chunked
layout) or any root with the same layout, clips per second for 16-frame 224x224 training
clips through `EK100Dataset` + DataLoader with 0, 1 and 2 workers, beside decoding the
sampled frames only and decoding every frame of each segment ("whole segment", what a
loader without frame-accurate seeking would pay). A bounded number of clips keeps a run
short. Prints a table; writes JSON to `runs/bench-data/<time>/results.json` (or `--out`).
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from evitvid.data.annotations import read_segments
from evitvid.data.datasets import EK100Dataset, collate, sample_rng

__all__ = ["benchmark_loader", "format_loader_results"]

def _loader_rate(dataset: EK100Dataset, count: int, workers: int, batch_size: int) -> dict[str, Any]:
    loader = DataLoader(Subset(dataset, range(count)), batch_size=batch_size, num_workers=workers,
                        collate_fn=collate, shuffle=False)
    clips = 0
    start = time.perf_counter()
    first = None
    for batch in loader:
        if first is None:
            first = time.perf_counter() - start
        clips += 0 if batch["video"] is None else batch["video"].shape[0]
    elapsed = time.perf_counter() - start
    return {"clips": clips, "seconds": elapsed, "clips_per_s": clips / elapsed, "first_batch_s": first}


def benchmark_loader(
    root: str | Path,
    *,
    split: str = "train",
    clips: int = 48,
    num_frames: int = 16,
    crop_size: int = 224,
    batch_size: int = 4,
    workers: tuple[int, ...] = (0, 1, 2),
    chunk_seconds: int = 15,
    fps: float = 30.0,
) -> dict[str, Any]:
    """Run the measurements on `root/annotations/EPIC_100_<split>.csv` + `root/videos`."""
    root = Path(root)
    segments = read_segments(root / "annotations" / f"EPIC_100_{split}.csv")
    dataset = EK100Dataset(segments, root / "videos", layout="chunked",
                           source_options={"chunk_seconds": chunk_seconds, "fps": fps},
                           num_frames=num_frames, crop_size=crop_size, train=True, sampling="tsn")
    count = min(clips, len(dataset))
    rows = []
    for w in workers:
        rows.append({"what": f"DataLoader, {w} worker{'s' if w != 1 else ''}", "workers": w,
                     **_loader_rate(dataset, count, w, batch_size)})

    source = dataset.source
    sampled_frames = whole_frames = 0
    start = time.perf_counter()
    for i in range(count):
        sampled_frames += source.read(dataset.segments[i], dataset.indices(i, sample_rng(0, 0, i))).shape[0]
    elapsed = time.perf_counter() - start
    rows.append({"what": "decode sampled frames only, in-process", "workers": 0, "clips": count,
                 "seconds": elapsed, "clips_per_s": count / elapsed, "frames": sampled_frames})
    source.close()
    start = time.perf_counter()
    for i in range(count):
        whole_frames += source.read_segment(dataset.segments[i]).shape[0]
    elapsed = time.perf_counter() - start
    rows.append({"what": "decode whole segment, in-process", "workers": 0, "clips": count,
                 "seconds": elapsed, "clips_per_s": count / elapsed, "frames": whole_frames,
                 "frames_per_s": whole_frames / elapsed})
    return {
        "root": str(root),
        "split": split,
        "params": {"clips": count, "num_frames": num_frames, "crop_size": crop_size, "batch_size": batch_size,
                   "sampling": "tsn", "train": True},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform()},
        "results": rows,
    }


def format_loader_results(results: dict[str, Any]) -> str:
    p = results["params"]
    lines = [f"{p['clips']} clips of {p['num_frames']} frames at {p['crop_size']}px from {results['root']} "
             f"({results['split']})", f"{'what':<40} {'clips/s':>8} {'seconds':>8}"]
    lines.append(f"{'-' * 40} {'-' * 8} {'-' * 8}")
    for row in results["results"]:
        lines.append(f"{row['what']:<40} {row['clips_per_s']:>8.2f} {row['seconds']:>8.2f}")
    return "\n".join(lines)
