"""`python -m evitvid bench-data`: data-loader throughput in clips/s (`evitvid.data.loader_bench`).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..atomic import write_bytes_atomic
from ..data.loader_bench import benchmark_loader, format_loader_results


def _ensure_root(root: Path | None) -> Path:
    """`root`, or the synthetic 'default' set (generated once into `data/synth-default`, then reused)."""
    if root is not None:
        return root
    from ..data.synth import generate
    return generate(None, preset="default", seed=0)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=None,
                        help="dataset root with annotations/ and videos/ (default: the synthetic 'default' set in "
                             "data/synth-default, generated on first use)")
    parser.add_argument("--split", default="train", help="annotations/EPIC_100_<split>.csv")
    parser.add_argument("--clips", type=int, default=48, help="clips per measurement")
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--crop-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default runs/bench-data/<time>/results.json)")


def run(args: argparse.Namespace) -> int:
    root = _ensure_root(args.root)
    results = benchmark_loader(root, split=args.split, clips=args.clips, num_frames=args.num_frames,
                        crop_size=args.crop_size, batch_size=args.batch_size, workers=tuple(args.workers))
    print(format_loader_results(results))
    out = args.out or Path("runs") / "bench-data" / time.strftime("%Y%m%d-%H%M%S") / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, json.dumps(results, indent=2).encode())
    print(f"wrote {out}")
    return 0
