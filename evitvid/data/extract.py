"""Extract N frames per EK100 segment to JPEG files, in parallel, resumably.

The paper (section IV-A) trains its frame-level models on frames "extracted from the action
video segments ... using the information in the train and validation annotation files",
16 per segment. This module does that with TSN midpoints (`sampling.tsn_indices` in
evaluation mode, as AVION samples evaluation clips) from chunked (AVION) or whole videos,
into the `FrameFolders` layout (see `video.py`), which `EK100Dataset(layout="frames")` reads.

Resumable and safe to kill: every file is written under a temporary name in its folder and
moved into place with `os.replace`, and a segment's `frames.json` is written last; a rerun
skips segments whose manifest and all N JPEGs exist. Failures are collected per segment
(narration_id, file, reason) and reported at the end; they do not stop the run.

    python -m evitvid extract --annotations EPIC_100_validation.csv --videos ROOT \
        --layout chunked --out data/frames --num-frames 16 --workers 2
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from evitvid.data.annotations import Segment, read_segments, segment_list
from evitvid.data.sampling import tsn_indices
from evitvid.data.video import FrameFolders, VideoError, VideoSource, make_source

__all__ = ["ExtractReport", "extract_segment", "extract_frames", "configure", "run"]


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
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                                   initargs=(source, out, num_frames, quality))
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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", type=Path, required=True, help="EK100 segment CSV")
    parser.add_argument("--videos", type=Path, required=True, help="video root")
    parser.add_argument("--layout", choices=("chunked", "whole"), default="chunked",
                        help="chunked: ROOT/P01/P01_01.MP4/0.MP4 (AVION); whole: ROOT/P01/videos/P01_01.MP4")
    parser.add_argument("--out", type=Path, required=True, help="output root (ROOT/P01/P01_01/P01_01_0/00000.jpg)")
    parser.add_argument("--num-frames", type=int, default=16, help="frames per segment (TSN midpoints)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="processes; 0 = in-process")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    parser.add_argument("--chunk-seconds", type=int, default=15, help="chunked layout: seconds per chunk")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of the files (chunked default 30; whole default: read from each file)")
    parser.add_argument("--ext", default="MP4", help="video file extension")
    parser.add_argument("--limit", type=int, default=None, help="only the first N segments")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    segments = list(read_segments(args.annotations).values())[: args.limit]
    if args.layout == "chunked":
        source = make_source(args.videos, "chunked", chunk_seconds=args.chunk_seconds,
                             fps=args.fps if args.fps is not None else 30.0, ext=args.ext)
    else:
        source = make_source(args.videos, "whole", fps=args.fps, ext=args.ext)
    report = extract_frames(segments, source, args.out, args.num_frames, workers=args.workers,
                            quality=args.quality, progress=not args.no_progress)
    print(report.summary())
    return 1 if report.failed else 0
