"""The cached data set: `generate` writes a folder, or reuses it, and returns its path.

The folder holds `annotations/` (`tables`), `videos/` (`encode`) and `manifest.json`, written
last and atomically: its presence with matching parameters (`GENERATOR_VERSION`, seed, every
`SynthConfig` field) means the folder is complete, and a rerun skips generation. Until then a
`.synth-incomplete` marker says a generation started there; a folder that is neither empty nor
ours is never overwritten.

Videos are written by a pool of processes (spawn: safe under a Jupyter kernel or with torch's
threads in the parent), which die with the caller (`evitvid.workers`); the files do not depend
on their number.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from evitvid.atomic import write_bytes_atomic
from evitvid.data.fashion_mnist import load_fashion_mnist
from evitvid.workers import process_pool

from .config import GENERATOR_VERSION, SynthConfig, resolve_config
from .encode import chunk_paths, write_video
from .plan import DatasetPlan, VideoPlan, plan_dataset
from .tables import write_annotations

__all__ = ["generate", "read_manifest", "is_complete", "default_out_dir"]

_GENERATOR = "evitvid.data.synth"  # the manifest's "generator": folders from before the split stay valid
_INCOMPLETE = ".synth-incomplete"  # marker: a generation started here and has not finished


def default_out_dir(preset: str = "tiny", seed: int = 0, *, data_root: str | Path, **overrides: Any) -> Path:
    """`synth-<preset>` in the folder `data_root` (suffixed for another seed or overrides)."""
    name = f"synth-{preset}"
    if seed != 0:
        name += f"-seed{seed}"
    if overrides:
        name += "-" + hashlib.sha1(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]
    return Path(data_root) / name


def _key(seed: int, config: SynthConfig) -> dict[str, Any]:
    # What must match for a folder to be reused (JSON round trip: tuples become lists).
    return json.loads(json.dumps({"generator_version": GENERATOR_VERSION, "seed": seed, "params": config.to_dict()}))


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when there is none (an incomplete or foreign folder)."""
    path = Path(root) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return manifest if manifest.get("generator") == _GENERATOR else None


def is_complete(root: str | Path, seed: int, config: SynthConfig) -> bool:
    """True when `root` holds a finished data set generated with exactly these parameters."""
    manifest = read_manifest(root)
    if manifest is None or (Path(root) / _INCOMPLETE).exists():
        return False
    return {k: manifest.get(k) for k in ("generator_version", "seed", "params")} == _key(seed, config)


def _prepare(root: Path) -> None:
    """Make `root` ready for a fresh generation, refusing to touch a folder that is not ours."""
    if root.exists() and any(root.iterdir()):
        ours = (root / _INCOMPLETE).exists() or read_manifest(root) is not None
        if not ours:
            raise FileExistsError(f"{root} exists, is not empty and holds no synthetic data set (no manifest.json "
                                  f"from {_GENERATOR}); refusing to overwrite it: choose another --out or empty it")
    root.mkdir(parents=True, exist_ok=True)
    (root / _INCOMPLETE).write_text("generation started; this folder is incomplete until manifest.json appears\n")
    (root / "manifest.json").unlink(missing_ok=True)  # first: a killed run never looks complete
    (root / "manifest.json.partial").unlink(missing_ok=True)
    for sub in ("videos", "annotations"):
        if (root / sub).exists():
            shutil.rmtree(root / sub)


def _package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in ("evitvid", "numpy", "av", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _counts(plan: DatasetPlan, root: Path) -> dict[str, Any]:
    cfg = plan.config
    out: dict[str, Any] = {"participants": len({v.participant_id for v in plan.videos})}
    for split in ("train", "validation"):
        vids = plan.split_videos(split)
        segs = [s for v in vids for s in v.segments]
        out[split] = {
            "videos": len(vids), "segments": len(segs),
            "verbs_present": len({s.verb_class for s in segs}), "nouns_present": len({s.noun_class for s in segs}),
            "crossing_chunk_boundary": sum(int(s.start // cfg.chunk_seconds) != int(s.stop // cfg.chunk_seconds)
                                           for s in segs),
        }
    segs = [s for v in plan.videos for s in v.segments]
    lengths = np.array([s.stop_cs - s.start_cs for s in segs]) / 100
    out["segment_seconds"] = {"min": float(lengths.min()), "median": float(np.median(lengths)),
                              "mean": round(float(lengths.mean()), 3), "max": float(lengths.max())}
    out["frames"] = sum(v.num_frames for v in plan.videos)
    out["hours"] = round(out["frames"] / cfg.fps / 3600, 4)
    out["chunks"] = sum(len(chunk_paths(root, v, cfg)) for v in plan.videos)
    out["bytes"] = sum(p.stat().st_size for p in (root / "videos").rglob("*.MP4") if p.is_file())
    return out


def _write_video_task(args: tuple[VideoPlan, dict[int, np.ndarray], SynthConfig, str]) -> tuple[str, int]:
    video, images, config, root = args
    try:
        return video.video_id, write_video(video, images, config, root)
    except Exception as err:
        raise RuntimeError(f"synth: writing video {video.video_id} under {root} failed: {err!r}") from err


def generate(out_dir: str | Path | None = None, preset: str = "tiny", seed: int = 0, *,
             data_root: str | Path | None = None, workers: int | None = None, progress: bool = True,
             force: bool = False, **overrides: Any) -> Path:
    """Generate (or reuse) the synthetic data set and return its folder.

    `out_dir` defaults to `default_out_dir(preset, seed, data_root=data_root, **overrides)`
    (one of the two must be given). A folder whose
    manifest matches (seed, every parameter, `GENERATOR_VERSION`) is returned as it is
    unless `force`; otherwise it is regenerated from scratch. `workers` processes write
    videos in parallel (default: one per available core); the output does not depend on it.
    The workers die with this process (`evitvid.workers.process_pool`).
    """
    config = resolve_config(preset, **overrides)
    if out_dir is None and data_root is None:
        raise ValueError("synth: give out_dir (the dataset's folder) or data_root (where synth-PRESET goes)")
    root = Path(out_dir) if out_dir is not None else default_out_dir(preset, seed, data_root=data_root, **overrides)
    if not force and is_complete(root, seed, config):
        return root
    t0 = time.perf_counter()
    _prepare(root)
    plan = plan_dataset(preset, seed, **overrides)
    images, _ = load_fashion_mnist("t10k")
    tasks = []
    for video in sorted(plan.videos, key=lambda v: -v.num_frames):  # longest first: balances the pool
        needed = {s.item for s in video.segments} | {d.item for s in video.segments for d in s.distractors}
        tasks.append((video, {i: np.asarray(images[i]) for i in needed}, config, str(root)))
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(tasks)))
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(v.num_frames for v in plan.videos), unit="frame", desc=f"synth-{preset} videos",
               disable=not progress)
    try:
        if workers == 1:
            for task in tasks:
                bar.update(_write_video_task(task)[1])
        else:
            import multiprocessing
            from concurrent.futures import as_completed

            # spawn: safe under a Jupyter kernel or with torch's threads in the parent.
            pool = process_pool(workers, mp_context=multiprocessing.get_context("spawn"))
            try:
                futures = [pool.submit(_write_video_task, task) for task in tasks]
                for future in as_completed(futures):
                    bar.update(future.result()[1])
            finally:
                pool.shutdown(wait=True, cancel_futures=True)  # on an error, drop what has not started
    finally:
        bar.close()
    write_annotations(plan, root)
    manifest = {
        "generator": _GENERATOR, **_key(seed, config), "preset": preset,
        "counts": _counts(plan, root),
        "fashion_mnist": {"split": "t10k", "items_used": len(plan.items())},
        "frame_numbers": "floor(seconds * round(native fps)); files at params.fps",
        "generation_seconds": round(time.perf_counter() - t0, 2), "workers": workers,
        "versions": _package_versions(),
    }
    write_bytes_atomic(root / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    (root / _INCOMPLETE).unlink()
    return root
