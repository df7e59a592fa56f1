"""Extract N frames per EK100 segment to JPEG files, in parallel, resumably.

The paper (section IV-A) trains its frame-level models on frames "extracted from the action
video segments ... using the information in the train and validation annotation files",
16 per segment. This module does that with TSN midpoints (`sampling.tsn_indices` in
evaluation mode, as AVION samples evaluation clips) from chunked (AVION) or whole videos,
into the `FrameFolders` layout (see `video.py`), which `EK100Dataset(layout="frames")` reads.

Resumable and safe to kill: every file is written under a temporary name in its folder and
moved into place with `os.replace`, and a segment's `frames.json` is written last; a rerun
skips segments whose manifest and all N JPEGs exist and redoes the others, removing the
temporaries a killed run left in their folders. The worker processes die with the
process that started them (`evitvid.workers`), so a killed run stops writing. Failures are
collected per segment (narration_id, file, reason) and reported at the end; they do not stop
the run.

    python -m evitvid extract --annotations EPIC_100_validation.csv --videos ROOT \
        --layout chunked --out data/frames --num-frames 16 --workers 2
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from evitvid.atomic import remove_stale_temporaries
from evitvid.data.annotations import Segment, segment_list
from evitvid.data.sampling import tsn_indices
from evitvid.data.video import FrameFolders, VideoError, VideoSource
from evitvid.workers import process_pool

__all__ = ["ExtractReport", "extract_segment", "extract_frames"]


@dataclass
class ExtractReport:
    """What a run did: narration_ids written and skipped (already done), and failures."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (narration_id, path, reason)

    def summary(self) -> str:
        text = f"{len(self.written)} written, {len(self.skipped)} already done, {len(self.failed)} failed"
        for narration_id, path, reason in self.failed:
            text += f"\n  FAILED {narration_id} ({path}): {reason}"
        return text


def extract_segment(source: VideoSource, segment: Segment, out: FrameFolders, num_frames: int, *,
                    quality: int = 90) -> bool:
    """Write `num_frames` TSN-midpoint frames of `segment`; False when it was already complete."""
    if out.is_complete(segment, num_frames):
        return False
    remove_stale_temporaries(out.path(segment))  # what a killed run was writing here
    start, stop = source.frame_range(segment)
    indices = tsn_indices(start, stop, num_frames)
    frames = source.read(segment, indices)
    out.write(segment, frames, indices, quality=quality, source=str(source.path(segment)))
    return True


# Worker state, set once per process by the pool initializer (a source holds no readers
# when pickled, so each worker opens its own).
_WORKER: dict = {}


def _init_worker(source: VideoSource, out: FrameFolders, num_frames: int, quality: int,
                 single_thread: bool = True) -> None:
    if single_thread:  # one process per core already; not in-process, where it would leak out
        torch.set_num_threads(1)
    _WORKER.update(source=source, out=out, num_frames=num_frames, quality=quality)


def _work(segment: Segment) -> tuple[str, str, str, str]:
    """(status, narration_id, path, reason) with status "written", "skipped" or "failed"."""
    try:
        written = extract_segment(_WORKER["source"], segment, _WORKER["out"], _WORKER["num_frames"],
                                  quality=_WORKER["quality"])
    except VideoError as exc:
        return "failed", segment.narration_id, exc.path, exc.reason
    except Exception as exc:  # noqa: BLE001 - report any failure against its segment, keep going
        return "failed", segment.narration_id, str(_WORKER["source"].path(segment)), f"{type(exc).__name__}: {exc}"
    return ("written" if written else "skipped"), segment.narration_id, "", ""


def extract_frames(
    segments: Mapping[str, Segment] | Iterable[Segment],
    source: VideoSource,
    out_dir: str | Path,
    num_frames: int,
    *,
    workers: int = 0,
    quality: int = 90,
    progress: bool = True,
) -> ExtractReport:
    """Extract every segment; `workers=0` runs in this process. Returns what happened."""
    items = segment_list(segments)
    out = FrameFolders(out_dir)
    report = ExtractReport()
    bar = tqdm(total=len(items), desc="extract", unit="segment", disable=not progress, file=sys.stderr)
    if workers <= 0:
        _init_worker(source, out, num_frames, quality, single_thread=False)
        results: Iterable = map(_work, items)
        pool = None
    else:
        pool = process_pool(workers, initializer=_init_worker, initargs=(source, out, num_frames, quality))
        # Segments of one video are adjacent in EK100 files; chunks keep them in one worker,
        # so its open reader is reused.
        results = pool.map(_work, items, chunksize=max(1, min(16, len(items) // (4 * workers) or 1)))
    try:
        for status, narration_id, path, reason in results:
            if status == "written":
                report.written.append(narration_id)
            elif status == "skipped":
                report.skipped.append(narration_id)
            else:
                report.failed.append((narration_id, path, reason))
                bar.write(f"FAILED {narration_id} ({path}): {reason}")
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return report
