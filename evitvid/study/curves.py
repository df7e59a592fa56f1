"""What the learning curves say: whether methods reached a plateau, how the differences between
them moved over the last epochs, and how each difference stands at two budgets.

Every function takes `results.learning_curves`' long table (a row per run and epoch), from
the runs of this study or from a study recorded at a longer budget (`evitvid.study.recorded`).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .intervals import Interval, seed_difference
from .methods import every_comparison

__all__ = ["PLATEAU_POINTS", "plateau_changes", "plateau_table", "plateau_sentence", "difference_drift",
           "drift_sentence", "final_top1", "budget_comparison", "longer_budget_numbers"]


PLATEAU_POINTS = 1.0  # a method still gaining this much verb top-1 over its last epochs has not reached a plateau


def plateau_changes(curves: pd.DataFrame, last: int = 2) -> pd.DataFrame:
    """Per method (`learning_curves`' long table): its validated epochs, and validation verb and
    noun top-1 at the last one and how much they moved over the `last` validated epochs before
    it, in points, mean over seeds, unrounded (`plateau_table` shows them; `plateau_sentence`
    reads them)."""
    rows = []
    validated = curves[curves["val_verb_top1"].notna()] if "val_verb_top1" in curves else None  # no validation yet
    for method, group in validated.groupby("method", sort=False) if validated is not None else ():
        epochs = sorted(group["epoch"].unique())
        end, start = epochs[-1], epochs[max(0, len(epochs) - 1 - last)]
        row = {"method": method, "epochs": int(end), "from_epoch": int(start), "validated_epochs": len(epochs)}
        for head in ("verb", "noun"):
            by_seed = group.pivot_table(index="seed", columns="epoch", values=f"val_{head}_top1")
            row[f"{head}_end"] = 100 * by_seed[end].mean()
            row[f"{head}_change"] = 100 * (by_seed[end] - by_seed[start]).mean()
        rows.append(row)
    columns = ["method", "epochs", "from_epoch", "validated_epochs", "verb_end", "verb_change", "noun_end",
               "noun_change"]
    return pd.DataFrame(rows, columns=columns).set_index("method")


def plateau_table(curves: pd.DataFrame, last: int = 2) -> pd.DataFrame:
    """Per method: validation verb and noun top-1 at the last epoch and how much they moved over the
    `last` epochs before it (mean over seeds, points). Near 0 at the end of a cosine schedule is
    the schedule's decay, not a plateau; a method still gaining there has not reached one."""
    changes = plateau_changes(curves, last)
    table = pd.DataFrame({"epochs": changes["epochs"]}, index=changes.index)
    span = _span(changes, last)
    for head in ("verb", "noun"):
        table[f"{head} top-1 at the end (%)"] = changes[f"{head}_end"].round(1)
        table[f"{head}: change {span} (points)"] = changes[f"{head}_change"].round(1)
    return table


def _span(changes: pd.DataFrame, last: int) -> str:
    """The epochs `plateau_changes` measured a change over, in words: "since epoch N" when every
    method's is the same (validation may skip epochs: `val_every`)."""
    starts = set(changes["from_epoch"])
    return f"since epoch {starts.pop()}" if len(starts) == 1 else f"over the last {last} validated epochs"


def plateau_sentence(curves: pd.DataFrame, last: int = 2) -> str:
    """What the last epochs say, in words: `plateau_changes` of validation verb top-1 (`curves`:
    `learning_curves`) over each method's `last` validated epochs (mean over seeds). A method still
    gaining has not reached a plateau; one that is not proves nothing at the end of a decaying
    schedule, and the sentence says so (a longer budget tells: `budget_comparison`)."""
    changes = plateau_changes(curves, last)
    changes = changes[changes["validated_epochs"] > last]
    gains = changes["verb_change"].to_dict()
    if not gains:
        return f"too few validated epochs to tell whether the methods reached a plateau (fewer than {last + 1})"
    climbing = {k: v for k, v in gains.items() if v >= PLATEAU_POINTS}
    if not climbing:
        return (f"every method moved by less than {PLATEAU_POINTS:g} point of verb top-1 {_span(changes, last)} "
                "(mean over seeds), which at the end of a cosine schedule is the rate decaying, not evidence of a "
                "plateau: what more epochs change is read from a longer budget")
    top = max(climbing, key=climbing.get)
    return (f"{len(climbing)} of {len(gains)} methods were still gaining at least {PLATEAU_POINTS:g} point of verb "
            f"top-1 {_span(changes, last)} (mean over seeds; most: {top}, {climbing[top]:+.1f} points): "
            "not a plateau even as the rate decayed, so the verdicts describe these models at this budget")


def difference_drift(curves: pd.DataFrame, methods: Mapping, comparisons, last: int = 2,
                     head: str = "verb") -> pd.DataFrame:
    """How each difference between two methods moved over the last `last` validated epochs: per
    comparison (a, b), validation top-1 of a minus b at each of those epochs (per seed, the seeds
    paired, then the mean over seeds, in points) and the change from the first of them to the
    last. A method still learning faster than another shows as a difference still moving; near 0,
    the comparison no longer depends on how long the two trained."""
    column = f"val_{head}_top1"
    validated = curves[curves[column].notna()] if column in curves else curves.iloc[0:0]
    rows = []
    for a, b in comparisons:
        if a not in methods or b not in methods:
            continue
        la, lb = methods[a].label, methods[b].label
        per = {label: validated[validated["method"] == label].pivot_table(index="seed", columns="epoch",
                                                                           values=column)
               for label in (la, lb)}
        epochs = sorted(set(per[la].columns) & set(per[lb].columns))[-(last + 1):]
        seeds = sorted(set(per[la].index) & set(per[lb].index))
        if len(epochs) < 2 or not seeds:
            continue
        diff = 100 * (per[la].loc[seeds, epochs] - per[lb].loc[seeds, epochs]).mean()
        rows.append({"comparison": f"{la} − {lb}", **{f"epoch {int(e)}": diff[e] for e in epochs},
                     f"moved since epoch {int(epochs[0])} (points)": diff[epochs[-1]] - diff[epochs[0]]})
    return pd.DataFrame(rows).set_index("comparison").round(1) if rows else pd.DataFrame()


def drift_sentence(drift: pd.DataFrame) -> str:
    """The largest movement of `difference_drift`, in words."""
    if drift.empty:
        return "no difference between methods could be followed over the last epochs"
    moved = drift.iloc[:, -1]
    top = moved.abs().idxmax()
    return (f"over the same epochs the differences behind the verdicts moved by at most {abs(moved[top]):.1f} "
            f"points ({top}: {moved[top]:+.1f})")


def final_top1(curves: pd.DataFrame, head: str = "verb") -> dict[str, list[float]]:
    """{method label: each seed's validation top-1 (%) at its last validated epoch}, seeds in order."""
    column = f"val_{head}_top1"
    validated = curves[curves[column].notna()]
    out = {}
    for method, group in validated.groupby("method", sort=False):
        last = group.sort_values("epoch").groupby("seed").tail(1).sort_values("seed")
        out[method] = (100 * last[column]).tolist()
    return out


def _side_of_zero(d: Optional[Interval]) -> str:
    if d is None:
        return "one seed"
    return {1: "above 0", -1: "below 0", 0: "includes 0"}[d.sign]


def budget_comparison(budgets: Sequence[tuple[str, pd.DataFrame]], methods: Mapping, comparisons, *,
                      head: str = "verb", confidence: float = 0.95) -> pd.DataFrame:
    """Each difference between two methods at several budgets: `budgets` is [(name, learning
    curves)], e.g. [("8 epochs", ...), ("16 epochs", ...)]; `comparisons` are (key a, key b) pairs of
    `methods`. Per comparison and budget: a minus b at the last epoch, mean over seeds (points of
    top-1), Welch's interval over seeds, and whether it lies above 0, below 0 or includes it. A
    comparison is left out when a budget lacks either method."""
    rows = []
    for a, b in comparisons:
        if a not in methods or b not in methods:
            continue
        la, lb = methods[a].label, methods[b].label
        row = {"comparison": f"{la} − {lb}"}
        for name, curves in budgets:
            top1 = final_top1(curves, head)
            if la not in top1 or lb not in top1:
                break
            d = seed_difference(top1[la], top1[lb], confidence=confidence)
            row[f"{name} (points)"] = round(float(np.mean(top1[la]) - np.mean(top1[lb])), 1)
            row[f"{name}: 95% over seeds"] = "one seed" if d is None else d.bounds_text()
            row[f"{name}: interval"] = _side_of_zero(d)
        else:
            rows.append(row)
    return pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()


def _shift_sentence(comparison: pd.DataFrame, short: str, long: str) -> str:
    """Whether each difference's interval over seeds (`recorded.budget_comparison`) sits on the
    same side of 0 at the budgets named `short` and `long`."""
    where = {c: (row[f"{short}: interval"], row[f"{long}: interval"]) for c, row in comparison.iterrows()}
    moved = {c: pair for c, pair in where.items() if pair[0] != pair[1]}
    if not moved:
        return (f"Over seeds, each of these differences lies on the same side of 0 at {long} as at {short}, or "
                f"includes 0 at both: more epochs did not change what the seeds allow")
    changes = "; ".join(f"{c}: {a} at {short}, {b} at {long}" for c, (a, b) in moved.items())
    return (f"Over seeds, {len(moved)} of {len(where)} differences stand elsewhere against 0 with more epochs "
            f"({changes}). The verdicts on them at {short} describe that budget only")


def longer_budget_numbers(recorded, curves: pd.DataFrame, methods: Mapping, epochs: int,
                          comparisons: Optional[Sequence[tuple[str, str]]] = None) -> dict:
    """The longer-budget section's sentences: where the record comes from (`recorded`: a
    `recorded.RecordedStudy`, or None when the profile names none), whether its methods reached a
    plateau, and whether the differences at `epochs` (this study's `curves`; `comparisons`, by
    default `every_comparison`) hold at its budget."""
    if recorded is None:
        return {"long_intro": "No study at a longer budget is recorded for this profile (its longer_budget is "
                              "null), so what more epochs would change is not measured here.",
                "long_findings": "Not measured for this profile."}
    labels = list(recorded.curves["method"].unique())
    intro = (f"The runs above stop at {epochs} epochs, what fits the study's budget. make study-long trained the "
             f"same protocol at {recorded.epochs} epochs for {len(labels)} methods ({'; '.join(labels)}) with "
             f"{recorded.curves['seed'].nunique()} seeds, {recorded.provenance}. Its learning curves are kept in "
             f"the repository ({recorded.location}). The record keeps each run's accuracy per epoch, not its "
             "predictions per segment, so the differences below have intervals over seeds only.")
    comparisons = every_comparison(methods) if comparisons is None else comparisons
    short, long = f"{epochs} epochs", f"{recorded.epochs} epochs"
    comparison = budget_comparison([(short, curves), (long, recorded.curves)], methods, comparisons)
    drift = drift_sentence(difference_drift(recorded.curves, methods, comparisons))
    findings = (f"At {recorded.epochs} epochs {plateau_sentence(recorded.curves)}. {drift[0].upper()}{drift[1:]}."
                + (f" {_shift_sentence(comparison, short, long)}." if not comparison.empty else ""))
    return {"long_intro": intro, "long_findings": findings}
