"""The annotation CSVs, with EK100's columns, formats and row order.

`EPIC_100_{train,validation}.csv` (EK100's 15 columns, rows in narration_id order),
`EPIC_100_{verb,noun}_classes.csv` and `EPIC_100_video_info.csv`, with the column lists of
`evitvid.data.annotations`, whose readers read these files as they read EK100's. Time codes
and frame numbers as in `timecode`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from evitvid.atomic import write_bytes_atomic
from evitvid.data.annotations import CLASS_COLUMNS, LABELLED_COLUMNS, VIDEO_INFO_COLUMNS

from .plan import DatasetPlan
from .timecode import annotation_rate, format_timestamp
from .vocabulary import NOUNS, VERBS

__all__ = ["ANNOTATION_COLUMNS", "annotation_tables", "write_annotations"]

ANNOTATION_COLUMNS: tuple[str, ...] = LABELLED_COLUMNS  # EPIC_100_{train,validation}.csv


def annotation_tables(plan: DatasetPlan):
    """The five EK100 annotation tables as pandas DataFrames, keyed by file name."""
    import pandas as pd

    rows: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for video in plan.videos:
        rate = annotation_rate(video.native_fps)
        for seg in video.segments:
            noun_words = " ".join(reversed(seg.noun.split(":")))
            rows[video.split].append({
                "narration_id": seg.narration_id, "participant_id": video.participant_id,
                "video_id": video.video_id,
                "narration_timestamp": format_timestamp(seg.narration_ms / 1000, 3),
                "start_timestamp": format_timestamp(seg.start_cs / 100),
                "stop_timestamp": format_timestamp(seg.stop_cs / 100),
                "start_frame": seg.start_cs * rate // 100, "stop_frame": seg.stop_cs * rate // 100,
                "narration": f"{seg.verb.replace('-', ' ')} {noun_words}",
                "verb": seg.verb, "verb_class": seg.verb_class, "noun": seg.noun, "noun_class": seg.noun_class,
                "all_nouns": repr([seg.noun]), "all_noun_classes": repr([seg.noun_class]),
            })
    tables = {}
    for split, name in (("train", "EPIC_100_train.csv"), ("validation", "EPIC_100_validation.csv")):
        df = pd.DataFrame(rows[split], columns=list(ANNOTATION_COLUMNS))
        tables[name] = df.sort_values("narration_id", kind="stable").reset_index(drop=True)  # EK100's order
    tables["EPIC_100_verb_classes.csv"] = pd.DataFrame(
        [{"id": i, "key": v.key, "instances": repr(list(v.instances)), "category": v.category}
         for i, v in enumerate(VERBS)], columns=list(CLASS_COLUMNS))
    tables["EPIC_100_noun_classes.csv"] = pd.DataFrame(
        [{"id": i, "key": n.key, "instances": repr(list(n.instances)), "category": n.category}
         for i, n in enumerate(NOUNS)], columns=list(CLASS_COLUMNS))
    cfg = plan.config
    tables["EPIC_100_video_info.csv"] = pd.DataFrame(
        [{"video_id": v.video_id, "duration": v.duration(cfg.fps), "fps": v.native_fps,
          "resolution": f"{cfg.size}x{cfg.size}"} for v in plan.videos], columns=list(VIDEO_INFO_COLUMNS))
    return tables


def write_annotations(plan: DatasetPlan, root: str | Path) -> list[Path]:
    """Write the five annotation CSVs under `root/annotations`; returns their paths."""
    folder = Path(root) / "annotations"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in annotation_tables(plan).items():
        path = folder / name
        write_bytes_atomic(path, df.to_csv(index=False).encode())
        paths.append(path)
    return paths
