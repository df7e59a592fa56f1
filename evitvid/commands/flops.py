"""`python -m evitvid flops`: parameters and GMACs of the paper's models at its input shapes
(`evitvid.models.flops`).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ..models.flops import PAPER_MODELS, format_table, model_cost


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    rows = [model_cost(name, shape) for name, shape in PAPER_MODELS]
    print(json.dumps([asdict(r) for r in rows], indent=2) if args.json else format_table(rows))
    return 0
