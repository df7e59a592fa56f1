"""`python -m evitvid synth`: generate the embedded EK100-format dataset (`evitvid.data.synth`).
"""
from __future__ import annotations

import argparse
import dataclasses

from ..data.synth import PRESETS, SynthConfig, generate, read_manifest


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                        help="parameter set: tiny (tests, seconds), default (the book) or motion (the default "
                        "with the motion pairs the most frequent verbs: make study-motion)")
    parser.add_argument("--out", default=None, help="output folder (default: DATA_ROOT/synth-<preset>)")
    parser.add_argument("--data-root", default="data", help="where the default output folder goes (default: ./data)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes writing videos (default: all cores)")
    parser.add_argument("--force", action="store_true", help="regenerate even when the folder is complete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = parser.add_argument_group("parameters (override the preset)")
    for f in dataclasses.fields(SynthConfig):
        kind = type(f.default)
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=_yes_no if kind is bool else kind,
                           default=None, metavar="yes|no" if kind is bool else kind.__name__.upper(),
                           help=f"default: the preset's (default preset: {f.default})")


def _yes_no(text: str) -> bool:
    if text.lower() in ("yes", "true", "1"):
        return True
    if text.lower() in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


def run(args: argparse.Namespace) -> int:
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(SynthConfig)
                 if getattr(args, f.name) is not None}
    root = generate(args.out, args.preset, args.seed, data_root=args.data_root, workers=args.workers,
                    progress=not args.no_progress,
                    force=args.force, **overrides)
    manifest = read_manifest(root) or {}
    counts = manifest.get("counts", {})
    train, val = counts.get("train", {}), counts.get("validation", {})
    print(f"{root}: {train.get('segments')} train / {val.get('segments')} validation segments in "
          f"{train.get('videos')} + {val.get('videos')} videos, {counts.get('hours')} h, "
          f"{counts.get('bytes', 0) / 1e6:.1f} MB (generated in {manifest.get('generation_seconds')} s)")
    return 0
