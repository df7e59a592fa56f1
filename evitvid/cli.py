"""Command line: `python -m evitvid COMMAND ...`.

Each command is a module of `evitvid.commands` that declares its arguments
(`configure(parser)`) and runs (`run(args) -> int`) by calling the library; it parses and
prints, the work lives in the library. Modules are imported only when their command runs,
so `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "flops": ("evitvid.commands.flops",
              "params and GMACs of 2D and 3D models at the paper's input shapes"),
    "study": ("evitvid.commands.study",
              "train every run a profile's book reads (pretraining, methods, seeds), N at a time"),
    "train": ("evitvid.commands.train",
              "train a frame-averaged or 3D model on verbs and nouns (resumable; torchrun for DDP)"),
    "eval": ("evitvid.commands.eval",
             "evaluate a finished training run with each number of frames per segment"),
    "stats": ("evitvid.commands.stats",
              "dataset statistics of an EK100 annotation file (segments, lengths, classes)"),
    "extract": ("evitvid.commands.extract",
                "extract N JPEG frames per segment (TSN midpoints), resumable, in parallel"),
    "bench-data": ("evitvid.commands.bench_data",
                   "data-loader throughput (clips/s) with 0, 1 and 2 workers"),
    "bench": ("evitvid.commands.bench",
              "model latency, throughput, memory and scaling against timm and torchvision"),
    "synth": ("evitvid.commands.synth",
              "generate the synthetic EK100-format data set (Fashion-MNIST items, paired motions)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evitvid", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        # add_help=False: `COMMAND --help` is answered by the command's own parser below.
        sub.add_parser(name, help=help_text, add_help=False).set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .allocator import tune_malloc
    tune_malloc()  # before any command allocates its tensors (`evitvid.allocator`: where it helps)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse the command name first, then let its module declare the rest.
    args, _ = parser.parse_known_args(argv)
    module = importlib.import_module(args._module)
    sub = argparse.ArgumentParser(prog=f"python -m evitvid {args.command}", description=COMMANDS[args.command][1])
    module.configure(sub)
    sub_args = sub.parse_args(argv[argv.index(args.command) + 1:])
    from .data.decoders import VideoError
    from .runs import RunBusyError
    try:
        return int(module.run(sub_args) or 0)
    except (ValueError, FileNotFoundError, RunBusyError, VideoError) as e:
        # Bad input (a wrong row, a missing file, a checkpoint that does not fit) or a run
        # folder another process is writing: the message names the file, row, parameter or
        # process; a traceback would only bury it.
        print(f"python -m evitvid {args.command}: error: {e}", file=sys.stderr)
        return 2
