"""`python -m evitvid extract`: N JPEG frames per segment, resumable, in parallel (`evitvid.data.extract`).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..data.annotations import read_segments
from ..data.extract import extract_frames
from ..data.decoders import BACKENDS
from ..data.video import make_source


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
    parser.add_argument("--decoder", choices=BACKENDS, default="auto",
                        help="auto (decord, PyAV for files decord cannot open), decord or pyav")
    parser.add_argument("--limit", type=int, default=None, help="only the first N segments")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    segments = list(read_segments(args.annotations).values())[: args.limit]
    if args.layout == "chunked":
        source = make_source(args.videos, "chunked", chunk_seconds=args.chunk_seconds,
                             fps=args.fps if args.fps is not None else 30.0, ext=args.ext, backend=args.decoder)
    else:
        source = make_source(args.videos, "whole", fps=args.fps, ext=args.ext, backend=args.decoder)
    report = extract_frames(segments, source, args.out, args.num_frames, workers=args.workers,
                            quality=args.quality, progress=not args.no_progress)
    print(report.summary())
    return 1 if report.failed else 0
