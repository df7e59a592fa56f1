"""`python -m evitvid eval RUN_DIR`: a finished training run evaluated with 1, 2, 4, 8, 16 frames.

The paper's Fig. 2 as a command (`evitvid.study.evaluate_frames`): prints one row per
number of frames (and temporal position, or the positions' logits averaged: a multi-clip
evaluation, `--average-positions`) and caches each result in the run folder
(`frames/*.npz`, keyed by every input that changes it: frames, position, clips, batch size,
compile, backend, the checkpoint's digest, crop size).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run folder written by `train` or a notebook")
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-val", type=int, default=None, help="first N validation segments only")
    parser.add_argument("--positions", type=int, default=1,
                        help="temporal positions per number of frames (1: each part's midpoint, or the centred "
                             "clip of a run trained with dense sampling)")
    parser.add_argument("--average-positions", action="store_true",
                        help="one multi-clip evaluation: each segment's logits averaged over the positions")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (eager when compiling fails); pays off on large sets")
    parser.add_argument("--backend", default="torch",
                        help="torch (PyTorch eager), onnxruntime or openvino (fp32, on the CPU: evitvid.inference)")


def run(args: argparse.Namespace) -> int:
    from ..runs import Run
    from ..study import evaluate_frames
    run_ = Run(args.run_dir)
    if not run_.complete:
        raise SystemExit(f"eval: {args.run_dir} is not a finished run (no results.json)")
    table = evaluate_frames(run_, args.frames, positions_per_clip=args.positions, batch_size=args.batch_size,
                            max_val=args.max_val, torch_compile=args.compile, backend=args.backend,
                            average_positions=args.average_positions)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0
