"""The study's tables, computed from run folders: seeds, intervals, baselines, differences.

Every function takes {method key: [Run per seed]} (`methods.train_methods`) and returns a
DataFrame. Accuracies are in % here (the library's metrics are fractions). Column names
are what the book shows:

- `accuracy` (numbers) and `summary` (the book's table): per method, mean ± sd over seeds
  and the 95 % interval over validation segments (`intervals`), for verb, noun and action
  top-1; baselines below.
- `differences`: method A minus method B on the same segments, paired bootstrap, and over
  seeds (`seed_difference_of`, Welch's t: what other seeds could do to the difference).
- `pair_accuracy` (numbers) and `pair_summary` (table): within each time-reversed verb
  pair, balanced accuracy (mean of the two verbs' recalls, 50 % for any constant answer)
  with its interval, beside the majority rate.
- `learning_curves`: validation metrics per epoch, per seed.
- `frames_curve`: accuracy against frames per segment, averaged over temporal positions and
  seeds, with intervals (the paper's Fig. 2).
- `seed_spread`: the range between seeds of each method.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from ..runs import Run
from .baselines import pair_baselines, reversal_pairs
from .data import Splits
from .frames import evaluate_frames
from .intervals import (Interval, balanced_accuracy, balanced_accuracy_interval, mean_interval, paired_difference,
                        seed_difference)
from .methods import Method
from .predictions import read_logits, segment_results

__all__ = ["HEADS", "segments_by_seed", "per_segment_correctness", "main_metrics", "accuracy", "summary",
           "per_seed_top1", "difference", "seed_difference_of", "differences", "pair_accuracy", "pair_summary",
           "learning_curves", "frames_curve",
           "seed_spread"]

HEADS = ("verb", "noun", "action")


def segments_by_seed(runs: Sequence[Run]) -> pd.DataFrame:
    """Per-segment results of every seed, stacked (a `seed` column); segments in the same order."""
    frames = [segment_results(run).assign(seed=run.params["seed"]) for run in runs]
    ids = [f["narration_id"].tolist() for f in frames]
    if any(i != ids[0] for i in ids[1:]):
        raise ValueError("the seeds of a method were evaluated on different validation segments")
    return pd.concat(frames, ignore_index=True)


def per_segment_correctness(runs: Sequence[Run], head: str) -> np.ndarray:
    """Correctness of `head` per segment, averaged over seeds (in [0, 1])."""
    table = segments_by_seed(runs)
    return table.groupby("narration_id", sort=False)[f"{head}_correct"].mean().to_numpy(dtype=np.float64)


def per_seed_top1(runs: Sequence[Run], head: str = "verb") -> list[float]:
    """Each seed's own top-1 of `head` (%), in the runs' order."""
    return [100 * r.results["val"][f"{head}_top1"] for r in runs]


def main_metrics(runs: Sequence[Run], head: str = "verb", **interval) -> dict:
    """mean and sd over seeds, and the interval over segments, of one head's top-1 (in %)."""
    per_seed = per_seed_top1(runs, head)
    ci = mean_interval(per_segment_correctness(runs, head), **interval).scaled(100)
    return {"mean": float(np.mean(per_seed)), "sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
            "ci": ci, "seeds": len(per_seed), "per_seed": per_seed}


def accuracy(runs: dict[str, list[Run]], methods: dict[str, Method], *, heads: Sequence[str] = HEADS,
             confidence: float = 0.95, resamples: int = 4000) -> pd.DataFrame:
    """Long table, one row per (method, head): seeds, mean and sd over seeds, and the interval
    over segments (`accuracy`, `low`, `high`), all top-1 in %."""
    rows = []
    for key, group in runs.items():
        for head in heads:
            m = main_metrics(group, head, confidence=confidence, resamples=resamples)
            rows.append({"key": key, "method": methods[key].label, "head": head, "seeds": m["seeds"],
                         "mean": m["mean"], "sd": m["sd"], "accuracy": m["ci"].estimate, "low": m["ci"].low,
                         "high": m["ci"].high})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame, baselines_table: pd.DataFrame) -> pd.DataFrame:
    """The book's table from `accuracy` and `baselines.baselines`: per method, mean ± sd over seeds
    and the 95 % interval over segments of each head's top-1; the baselines below."""
    rows = []
    for method, group in table.groupby("method", sort=False):
        row = {"method": method, "seeds": int(group["seeds"].iloc[0])}
        for _, r in group.iterrows():
            row[f"{r['head']} top-1 (%)"] = f"{r['mean']:.1f} ± {r['sd']:.1f}"
            row[f"{r['head']} 95% interval"] = f"[{r['low']:.1f}, {r['high']:.1f}]"
        rows.append(row)
    heads = list(dict.fromkeys(table["head"]))
    for _, b in baselines_table.iterrows():
        row = {"method": b["baseline"], "seeds": ""}
        for head in heads:
            row[f"{head} top-1 (%)"] = "" if pd.isna(b[head]) else f"{100 * b[head]:.1f}"
            row[f"{head} 95% interval"] = ""
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def difference(runs_a: Sequence[Run], runs_b: Sequence[Run], head: str = "verb", **interval) -> Interval:
    """A minus B in points of top-1 on the same segments (seed-averaged), paired bootstrap."""
    return paired_difference(per_segment_correctness(runs_a, head), per_segment_correctness(runs_b, head),
                             **interval).scaled(100)


def seed_difference_of(runs_a: Sequence[Run], runs_b: Sequence[Run], head: str = "verb",
                       confidence: float = 0.95, **_: object) -> Optional[Interval]:
    """A minus B in points of top-1 over seeds (each run's own accuracy), Welch's t interval;
    None when a method has a single seed."""
    return seed_difference(per_seed_top1(runs_a, head), per_seed_top1(runs_b, head), confidence=confidence)


def differences(runs: dict[str, list[Run]], methods: dict[str, Method], comparisons: Iterable[tuple[str, str]], *,
                heads: Sequence[str] = ("verb", "noun"), confidence: float = 0.95,
                resamples: int = 4000) -> pd.DataFrame:
    """For each (A, B) present: A minus B in points of top-1, with the paired bootstrap interval."""
    rows = []
    for a, b in comparisons:
        if a not in runs or b not in runs:
            continue
        row = {"comparison": f"{methods[a].label} − {methods[b].label}"}
        for head in heads:
            d = difference(runs[a], runs[b], head, confidence=confidence, resamples=resamples)
            row[f"{head} difference (points)"] = f"{d.estimate:+.1f}"
            row[f"{head} 95% interval"] = d.bounds_text()
            over_seeds = seed_difference_of(runs[a], runs[b], head, confidence)
            row[f"{head} 95% interval over seeds"] = "one seed" if over_seeds is None else over_seeds.bounds_text()
        rows.append(row)
    return pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()


def pair_accuracy(runs: dict[str, list[Run]], methods: dict[str, Method], splits: Splits, *,
                  confidence: float = 0.95, resamples: int = 4000) -> pd.DataFrame:
    """Long table, one row per (reversal pair, method): the balanced accuracy (%) of choosing between
    the pair's two verbs (from their two logits, on the segments of either), mean over seeds, the
    interval of the seed-pooled choices (resampled within each verb), the pair's segments and the
    rate of its more frequent verb."""
    base = pair_baselines(splits).set_index("pair")
    logits = {key: [read_logits(run) for run in group] for key, group in runs.items()}
    rows = []
    for a, b, name in reversal_pairs(splits.verbs):
        if name not in base.index:
            continue
        for key, zs in logits.items():
            truths, picks, per_seed = [], [], []
            for z in zs:
                mask = np.isin(z["verb"], [a, b])
                pick = np.where(z["verb_logits"][mask, a] >= z["verb_logits"][mask, b], a, b)
                truths.append(z["verb"][mask])
                picks.append(pick)
                per_seed.append(balanced_accuracy(z["verb"][mask], pick, (a, b)))
            ci = balanced_accuracy_interval(np.concatenate(truths), np.concatenate(picks), (a, b),
                                            confidence=confidence, resamples=resamples).scaled(100)
            rows.append({"pair": name, "key": key, "method": methods[key].label,
                         "segments": int(base.loc[name, "segments"]), "majority": 100 * base.loc[name, "majority"],
                         "accuracy": 100 * float(np.mean(per_seed)), "low": ci.low, "high": ci.high})
    return pd.DataFrame(rows)


def pair_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The book's table from `pair_accuracy`: a row per pair, a column per method ("mean [low, high]")."""
    if table.empty:
        return table
    out = table.assign(text=[f"{r.accuracy:.1f} [{r.low:.1f}, {r.high:.1f}]" for r in table.itertuples()])
    wide = out.pivot(index="pair", columns="method", values="text")
    wide = wide[list(dict.fromkeys(table["method"]))].reindex(list(dict.fromkeys(table["pair"])))
    info = table.drop_duplicates("pair").set_index("pair")[["segments", "majority"]]
    info["majority"] = info["majority"].map(lambda v: f"{v:.1f}")
    return info.rename(columns={"majority": "majority verb (%)"}).join(wide)


def learning_curves(runs: dict[str, list[Run]], methods: dict[str, Method]) -> pd.DataFrame:
    """Long table of every run's epochs: method, seed, epoch and the epoch's metrics."""
    rows = []
    for key, group in runs.items():
        for run in group:
            for m in run.metrics:
                rows.append({"method": methods[key].label, "seed": run.params["seed"], **m})
    return pd.DataFrame(rows)


def frames_curve(runs: dict[str, list[Run]], methods: dict[str, Method], frames: Sequence[int], positions: int, *,
                 head: str = "verb", confidence: float = 0.95, resamples: int = 4000,
                 max_val: Optional[int] = None, pretrained_only: bool = False) -> pd.DataFrame:
    """Top-1 (%) against frames per segment for each method (with `pretrained_only`, each method
    that starts from image weights, as the paper's do): averaged over `positions` temporal
    positions and the seeds, with the 95 % interval over segments (the paper's Fig. 2)."""
    rows = []
    for key, group in runs.items():
        if pretrained_only and not methods[key].pretrained:
            continue
        tables = [evaluate_frames(run, frames, positions_per_clip=positions, per_segment=True, max_val=max_val)
                  .assign(seed=run.params["seed"]) for run in group]
        table = pd.concat(tables, ignore_index=True)
        for n, at_n in table.groupby("frames"):
            per_segment = at_n.groupby("narration_id", sort=False)[f"{head}_correct"].mean().to_numpy(np.float64)
            ci = mean_interval(per_segment, confidence=confidence, resamples=resamples).scaled(100)
            by_position = at_n.groupby("position")[f"{head}_correct"].mean().mul(100)
            rows.append({"method": methods[key].label, "frames": int(n), "accuracy": ci.estimate, "low": ci.low,
                         "high": ci.high, "position_min": by_position.min(), "position_max": by_position.max()})
    return pd.DataFrame(rows)


def seed_spread(runs: dict[str, list[Run]], methods: dict[str, Method], head: str = "verb") -> pd.DataFrame:
    """Per method: each seed's top-1 (%) and the range between seeds."""
    rows = []
    for key, group in runs.items():
        values = {f"seed {r.params['seed']}": v for r, v in zip(group, per_seed_top1(group, head))}
        rows.append({"method": methods[key].label, **{k: round(v, 1) for k, v in values.items()},
                     "range (points)": round(max(values.values()) - min(values.values()), 1)})
    return pd.DataFrame(rows).set_index("method")
