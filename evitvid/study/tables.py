"""The book's tables: a notebook's run folder, tables written to it and read back, and the
readable versions the pages show (headers for people, formatted numbers).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..atomic import atomic_path
from ..models import create_model, get_model_entry
from ..runs import Run, open_run
from .params import StudyParams

__all__ = ["notebook_run", "save_table", "read_table", "SUMMARY_LABELS", "readable_summary", "readable_baselines",
           "verdict_display", "pretraining_curves", "pretraining_table", "reversal_table", "time_steps_table"]


def notebook_run(name: str, params: StudyParams, **extra: Any) -> Run:
    """The run folder of a notebook that trains nothing itself (its tables and figures), started
    afresh with the parameters it ran with."""
    return open_run(Path(params.runs_root), name, {**params.as_dict(), **extra}, fresh=True)


def save_table(table: pd.DataFrame, run: Run, name: str, *, index: bool = True) -> pd.DataFrame:
    """Write `table` as `run.dir/name.csv` (atomically) and return it, for display."""
    with atomic_path(run.dir / f"{name}.csv") as tmp:
        table.to_csv(tmp, index=index)
    return table


def read_table(params: StudyParams, notebook: str, name: str) -> pd.DataFrame:
    """A table another notebook wrote into its run folder (`save_table`)."""
    path = Path(params.runs_root) / notebook / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: run notebook {notebook} first")
    return pd.read_csv(path)


SUMMARY_LABELS = {
    "segments": "segments", "videos": "videos", "participants": "participants",
    "min_frames": "shortest segment (frames)", "max_frames": "longest segment (frames)",
    "mean_frames": "mean segment (frames)", "min_seconds": "shortest segment (s)",
    "max_seconds": "longest segment (s)", "mean_seconds": "mean segment (s)", "total_seconds": "total (s)",
    "verb_classes": "verb classes present", "noun_classes": "noun classes present",
    "action_classes": "actions (verb, noun) present", "images_extracted": "images at 16 frames a segment",
}


def readable_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """`data.dataset_summary` with readable row names: counts as integers, lengths and means
    with one decimal, the same format across a row."""
    out = summary.astype(float).rename(index=SUMMARY_LABELS)
    counts = [k for k in summary.index if k not in ("mean_frames",) and not k.endswith("seconds")]
    text = {column: [f"{v:,.0f}" if key in counts else f"{v:,.1f}" for key, v in zip(summary.index, out[column])]
            for column in out.columns}
    return pd.DataFrame(text, index=out.index)


def readable_baselines(table: pd.DataFrame) -> pd.DataFrame:
    """`baselines.baselines` as a table of percentages ("" where a baseline does not apply)."""
    out = table.set_index("baseline")[["verb", "noun", "action"]]
    out = out.map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}")
    out.columns = [f"{c} top-1 (%)" for c in out.columns]
    out.index.name = ""
    return out


def verdict_display(verdicts: pd.DataFrame):
    """The verdict table as the book shows it: a Styler, so that the reasons are shown whole
    (a DataFrame's HTML cuts text at pandas' `display.max_colwidth`), left-aligned."""
    shown = ["finding", "paper", "ours (95% interval, unadjusted)", "p (Holm)", "verdict", "why"]
    table = verdicts[shown].set_index("finding")
    return table.style.set_properties(**{"text-align": "left", "vertical-align": "top"})


def pretraining_curves(runs: Mapping) -> pd.DataFrame:
    """Long table of the pretraining runs' epochs (method = the 2D model)."""
    return pd.DataFrame([{"method": model, "seed": r.params["seed"], **m} for model, r in runs.items()
                         for m in r.metrics])


def pretraining_table(pretraining: Mapping) -> pd.DataFrame:
    """One row per 2D backbone: where its image weights come from and how good they are."""
    rows = []
    for model, r in pretraining.items():
        title = get_model_entry(model).title
        if r is None:
            rows.append({"2D model": title, "image weights": "a real checkpoint (the profile's pretrained)"})
        else:
            res = r.results
            rows.append({"2D model": title, "image weights": "pretrained here, on Fashion-MNIST pictures",
                         "training images": f"{res['train_images']:,}", "held-out images": f"{res['val_images']:,}",
                         "epochs": len(r.metrics), "held-out top-1 (%)": f"{100 * res['val']['top1']:.1f}",
                         "minutes": f"{res['train_seconds'] / 60:.1f}"})
    return pd.DataFrame(rows).set_index("2D model")


def reversal_table(at_init: pd.DataFrame) -> pd.DataFrame:
    """Relative change under time reversal at initialisation, mean and range over seeds."""
    g = at_init.groupby("method", sort=False)["reversal_change"]
    return pd.DataFrame({"relative change (mean over seeds)": g.mean().map(lambda v: f"{v:.2e}"),
                         "lowest seed": g.min().map(lambda v: f"{v:.2e}"),
                         "highest seed": g.max().map(lambda v: f"{v:.2e}")})


def time_steps_table(models: list[str], frames: list[int]) -> pd.DataFrame:
    """How many time steps a clip of each length in `frames` keeps after the stem and after each
    stage, per 3D model (`EfficientVit3d.time_steps`; the stages' attention sees stages 3 and 4's)."""
    rows = []
    for name in models:
        model = create_model(name, num_verbs=1, num_nouns=1)
        for n in frames:
            steps = model.time_steps(n)
            rows.append({"model": get_model_entry(name).title, "frames": n, "stem": steps[0],
                         **{f"stage {i}": s for i, s in enumerate(steps[1:], 1)}})
    return pd.DataFrame(rows).set_index(["model", "frames"])
