"""`python -m evitvid stats FILE`: statistics of an EK100 annotation file (`evitvid.data.stats`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.annotations import read_classes, read_segments
from ..data.stats import dataset_stats, format_stats


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("annotations", type=Path, help="EK100 segment CSV (train, validation or test timestamps)")
    parser.add_argument("--verb-classes", type=Path,
                        help="EPIC_100_verb_classes.csv: check ids and report classes defined")
    parser.add_argument("--noun-classes", type=Path, help="EPIC_100_noun_classes.csv")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    verbs = read_classes(args.verb_classes, name="verb classes") if args.verb_classes else None
    nouns = read_classes(args.noun_classes, name="noun classes") if args.noun_classes else None
    segments = read_segments(args.annotations, verb_classes=verbs, noun_classes=nouns)
    stats = dataset_stats(segments, verb_classes=verbs, noun_classes=nouns)
    if args.json:
        print(json.dumps({"file": str(args.annotations), **stats.as_dict()}, indent=2))
    else:
        print(format_stats(stats, title=str(args.annotations)))
    return 0
