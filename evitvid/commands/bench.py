"""`python -m evitvid bench`: model speed and memory against timm and torchvision (`evitvid.bench`).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..bench import ISOLATE, LAYOUTS, PRESETS, SECTIONS, bench_config, benchmark, format_results, only_sections
from ..study.params import load_profile


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=PRESETS, default="light",
                        help="smoke: B0 at tiny shapes (seconds); light: study shape, a subset of models (2 min); "
                             "full: everything (long)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/bench/<time>/)")
    parser.add_argument("--threads", type=int, default=None, help="torch and onnxruntime threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-row memory subprocesses")
    parser.add_argument("--layout", choices=LAYOUTS, default="channels_last",
                        help="memory layout of every model and input (default channels_last, as evitvid trains)")
    parser.add_argument("--only", default=None, help=f"comma-separated sections to run ({', '.join(SECTIONS)})")
    parser.add_argument("--compile", action="store_true",
                        help="add the torch.compile section to the light preset (about a minute of compiling)")
    parser.add_argument("--profile", default="cpu",
                        help="the study profile whose clip shape and batch the presets measure: a YAML path, or a "
                             "name in --profiles (default: cpu)")
    parser.add_argument("--profiles", default="book/params",
                        help="the folder a profile name is looked up in (default: book/params)")
    parser.add_argument("--isolate", choices=ISOLATE, default=None,
                        help="rows that run each in a fresh process, so that none depends on the rows before it: "
                             "large (default: a largest tensor of 32 MiB or more), all or none")


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_json_atomic

    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else ()
    params = load_profile(args.profile, profiles=args.profiles)
    cfg = bench_config(args.preset, study_shape=(3, params.num_frames, params.crop_size, params.crop_size),
                       study_batch=params.batch_size, threads=args.threads, layout=args.layout,
                       compile=args.compile, memory=False if args.no_memory else None, isolate=args.isolate)
    if only:
        cfg = only_sections(cfg, only)
    out = args.out or Path("runs") / "bench" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    results = benchmark(cfg, log=lambda s: print(f"  {s}", file=sys.stderr, flush=True))
    write_json_atomic(out / "results.json", results)
    print(format_results(results))
    print(f"\nwrote {out / 'results.json'}")
    return 0
