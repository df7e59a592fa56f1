"""What the book's pages need around the numbers: a notebook's run folder, glued values,
readable tables, and the sentences whose wording depends on a result.

Notebooks stay thin (CONTRIBUTING.md, convention 9): plumbing that every page would repeat
(writing a table to the run folder, glueing a dict of numbers, naming columns for readers)
lives here.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..runs import Run, open_run
from .intervals import Interval, agreed_sign
from .params import StudyParams
from .training import runs_root_of

__all__ = ["notebook_run", "save_table", "read_table", "glue", "pct", "points", "SUMMARY_LABELS",
           "readable_summary", "readable_baselines", "comparison_sentence", "MAIN_COMPARISONS",
           "comparison_numbers", "frames_numbers", "time_inference_all", "timing_table", "pretraining_curves",
           "pretraining_table", "pretraining_numbers", "reversal_table", "reversal_numbers", "ablation_numbers",
           "verdict_display", "pair_numbers", "machine_table", "same_computation", "spread_numbers",
           "protocol_numbers", "plateau_sentence", "difference_drift", "drift_sentence", "time_spent", "training_span",
           "most_at_once", "budget_numbers", "budget_sentence",
           "plateau_table", "longer_budget_numbers", "every_comparison"]


def notebook_run(name: str, params: StudyParams, **extra: Any) -> Run:
    """The run folder of a notebook that trains nothing itself (its tables and figures), started
    afresh with the parameters it ran with."""
    return open_run(runs_root_of(params.runs_root), name, {**params.as_dict(), **extra}, fresh=True)


def save_table(table: pd.DataFrame, run: Run, name: str, *, index: bool = True) -> pd.DataFrame:
    """Write `table` as `run.dir/name.csv` (atomically) and return it, for display."""
    with atomic_path(run.dir / f"{name}.csv") as tmp:
        table.to_csv(tmp, index=index)
    return table


def glue(values: Mapping[str, Any]) -> None:
    """`myst_nb.glue` every (name, text) pair without displaying it: numbers quoted in prose."""
    from myst_nb import glue as _glue
    for key, value in values.items():
        _glue(key, value, display=False)


def pct(value: float, digits: int = 1) -> str:
    """A fraction as a percentage: 0.2345 -> '23.5 %'."""
    return f"{100 * value:.{digits}f} %"


def points(interval: Interval, digits: int = 1) -> str:
    """A difference in points with its interval: '+3.2 points (95 % interval +1.0 to +5.4)'."""
    return (f"{interval.estimate:+.{digits}f} points (95 % interval {interval.low:+.{digits}f} to "
            f"{interval.high:+.{digits}f})")


SUMMARY_LABELS = {
    "segments": "segments", "videos": "videos", "participants": "participants",
    "min_frames": "shortest segment (frames)", "max_frames": "longest segment (frames)",
    "mean_frames": "mean segment (frames)", "min_seconds": "shortest segment (s)",
    "max_seconds": "longest segment (s)", "mean_seconds": "mean segment (s)", "total_seconds": "total (s)",
    "verb_classes": "verb classes present", "noun_classes": "noun classes present",
    "action_classes": "actions (verb, noun) present", "images_extracted": "images at 16 frames a segment",
}


def readable_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """`data.dataset_summary` with readable row names, counts as integers."""
    out = summary.rename(index=SUMMARY_LABELS)
    return out.map(lambda v: f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}")


def readable_baselines(table: pd.DataFrame) -> pd.DataFrame:
    """`baselines.baselines` as a table of percentages ("" where a baseline does not apply)."""
    out = table.set_index("baseline")[["verb", "noun", "action"]]
    out = out.map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}")
    out.columns = [f"{c} top-1 (%)" for c in out.columns]
    out.index.name = ""
    return out


def _over_seeds(seeds: Optional[Interval]) -> str:
    return "" if seeds is None else f"; over seeds {seeds.bounds_text()}"


def comparison_sentence(a: str, b: str, d: Interval, what: str = "verb top-1",
                        seeds: Optional[Interval] = None) -> str:
    """How the book words a difference: only what its intervals allow. `d` is over validation
    segments, `seeds` (when there are several seeds) over seeds; a difference is stated only
    when both agree on its sign."""
    over_seeds = _over_seeds(seeds)
    side = agreed_sign(d, seeds)
    if side > 0:
        return f"{a} is ahead of {b} on {what} by {points(d)}{over_seeds}"
    if side < 0:
        return f"{a} is behind {b} on {what} by {points(d)}{over_seeds}"
    if d.sign != 0:
        return (f"{a} and {b} cannot be told apart on {what}: {points(d)} over these segments, but the seeds "
                f"disagree{over_seeds}")
    return f"{a} and {b} cannot be told apart on {what}: {points(d)}, an interval that contains 0{over_seeds}"


# -- numbers and tables the pages quote ------------------------------------------------------

# The comparisons behind the paper's findings (method key A, method key B): A - B.
MAIN_COMPARISONS = (("3d_random", "frame_averaging"), ("3d_mean", "3d_random"), ("3d_mean", "frame_averaging"),
                    ("3d_random", "frame_averaging_random"), ("frame_averaging", "frame_averaging_random"))


def every_comparison(methods: Mapping) -> list[tuple[str, str]]:
    """`MAIN_COMPARISONS`, then each inflation against random initialisation (notebook 03's
    ablation, `methods.inflation_comparisons`) that is not among them."""
    from .methods import inflation_comparisons
    return list(MAIN_COMPARISONS) + [c for c in inflation_comparisons(methods) if c not in MAIN_COMPARISONS]


def read_table(params: StudyParams, notebook: str, name: str) -> pd.DataFrame:
    """A table another notebook wrote into its run folder (`save_table`)."""
    path = runs_root_of(params.runs_root) / notebook / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: run notebook {notebook} first")
    return pd.read_csv(path)


def comparison_numbers(runs: Mapping, methods: Mapping, a: str, b: str, prefix: str, params: StudyParams) -> dict:
    """Sentences comparing methods a and b on verbs and nouns, worded by their intervals."""
    from .results import difference, seed_difference_of
    out = {}
    for head in ("verb", "noun"):
        if a in runs and b in runs:
            d = difference(runs[a], runs[b], head, confidence=params.confidence, resamples=params.bootstrap_resamples)
            seeds = seed_difference_of(runs[a], runs[b], head, params.confidence)
            out[f"{prefix}_{head}"] = comparison_sentence(methods[a].label, methods[b].label, d, f"{head} top-1",
                                                          seeds)
        else:
            out[f"{prefix}_{head}"] = "not measured (one of the two methods is not in this profile)"
    return out


def frames_numbers(frames: pd.DataFrame, runs: Mapping, methods: Mapping, splits, params: StudyParams,
                   prefix: str) -> dict:
    """What the accuracy-against-frames paragraph quotes, for the first frame-averaging method."""
    from .baselines import baselines
    from .evaluation import evaluate_frames
    from .intervals import mean_interval, paired_difference
    key = next(k for k in runs if k.startswith("frame_averaging"))
    label = methods[key].label
    rows = frames[frames["method"] == label].sort_values("frames")
    out = {f"{prefix}_label": label, f"{prefix}_positions": str(params.eval_positions),
           f"{prefix}_train_frames": str(params.num_frames),
           f"{prefix}_frames_first": f"{rows['accuracy'].iloc[0]:.1f} %",
           f"{prefix}_frames_last": f"{rows['accuracy'].iloc[-1]:.1f} %",
           f"{prefix}_frames_max": str(int(rows["frames"].iloc[-1]))}
    per = {}
    for n in (8, 16):
        table = pd.concat([evaluate_frames(r, (n,), positions_per_clip=params.eval_positions, per_segment=True,
                                           max_val=params.max_val) for r in runs[key]], ignore_index=True)
        per[n] = table.groupby("narration_id", sort=False)["verb_correct"].mean().to_numpy(np.float64)
    kw = dict(confidence=params.confidence, resamples=params.bootstrap_resamples)
    out[f"{prefix}_gain_8_16"] = points(paired_difference(per[16], per[8], **kw).scaled(100))
    ceiling = float(baselines(splits).set_index("baseline").loc["order-blind ceiling", "verb"])
    from .results import per_segment_correctness
    gap = mean_interval(per_segment_correctness(runs[key], "verb") - ceiling, **kw).scaled(100)
    where = ("it reaches the ceiling: what it misses no order-blind model can get" if gap.high >= 0 else
             "it stays below the ceiling, so its plateau is not order-blindness alone: an order-blind model could "
             "still get more right (undertrained, or not enough capacity)")
    out[f"{prefix}_ceiling_sentence"] = (f"at the {params.num_frames} frames it trains on it is {points(gap)} from "
                                         f"the ceiling ({pct(ceiling)}); {where}")
    return out


def time_inference_all(params: StudyParams) -> pd.DataFrame:
    """`evaluation.time_inference` for every model of `time_models` (the paper's Fig. 3)."""
    from .evaluation import time_inference
    if not params.time_models:
        return pd.DataFrame()
    return pd.concat([time_inference(m, params.time_frames, crop_size=params.time_crop_size)
                      for m in params.time_models], ignore_index=True)


def timing_table(timing: pd.DataFrame) -> pd.DataFrame:
    """Median ms per clip and per frame, a row per number of frames, a column per model."""
    med = timing.groupby(["model", "frames"])[["ms_per_clip", "ms_per_frame"]].median().reset_index()
    wide = med.pivot(index="frames", columns="model", values=["ms_per_clip", "ms_per_frame"]).round(1)
    wide.columns = [f"{model}: ms per {'clip' if what == 'ms_per_clip' else 'frame'}" for what, model in wide.columns]
    return wide


def pretraining_curves(runs: Mapping) -> pd.DataFrame:
    """Long table of the pretraining runs' epochs (method = the 2D model)."""
    return pd.DataFrame([{"method": model, "seed": r.params["seed"], **m} for model, r in runs.items()
                         for m in r.metrics])


def pretraining_table(pretraining: Mapping) -> pd.DataFrame:
    """One row per 2D backbone: where its image weights come from and how good they are."""
    rows = []
    for model, r in pretraining.items():
        if r is None:
            rows.append({"2D model": model, "image weights": "a real checkpoint (the profile's pretrained)"})
        else:
            res = r.results
            rows.append({"2D model": model, "image weights": f"pretrained here ({r.name})",
                         "training images": f"{res['train_images']:,}", "held-out images": f"{res['val_images']:,}",
                         "epochs": len(r.metrics), "held-out top-1 (%)": f"{100 * res['val']['top1']:.1f}",
                         "minutes": f"{res['train_seconds'] / 60:.1f}"})
    return pd.DataFrame(rows).set_index("2D model")


# The held-out accuracy the stand-in pretraining aims for: what a small CNN reaches on plain Fashion-MNIST.
PRETRAIN_TARGET = 0.90


def pretraining_sentence(top1: float, last_change: float, target: float = PRETRAIN_TARGET) -> str:
    """Where the held-out top-1 (a fraction) stands against the target, and whether the run had
    levelled off (its last epoch moved it by less than a point) or was still climbing. With the
    learning rate decayed to zero a small last step shows the end of this schedule, not what a
    longer one would reach, and the sentence says no more."""
    if top1 >= target:
        return f"it reaches the {pct(target, 0)} a stand-in for ImageNet should reach"
    where = f"it stays {100 * (target - top1):.1f} points below the {pct(target, 0)} a stand-in for ImageNet should reach"
    if abs(last_change) < 1:
        return (f"{where}; the last epoch moved it by less than a point, so this schedule has run its course "
                "(a longer one might still gain)")
    return f"{where}, and it was still climbing when the schedule ended"


def pretraining_numbers(runs: Mapping, clip_size: Optional[int] = None) -> dict:
    """Notebook 02's numbers; with `clip_size` (the clips' crop), how the pictures' items
    compare with the clips' (`pretrain_item_scale`)."""
    if not runs:
        return {k: "n/a" for k in ("pretrain_epochs", "pretrain_images", "pretrain_top1", "pretrain_last_change",
                                   "pretrain_picture", "pretrain_item_scale", "pretrain_target_sentence")}
    r = next(iter(runs.values()))
    tops = [m["val_top1"] for m in r.metrics if "val_top1" in m]
    change = 100 * (tops[-1] - tops[-2]) if len(tops) > 1 else float("nan")
    size = r.params["image_size"]
    scale = r.params.get("image_scale") or size
    picture = (f"{size} x {size} pixels" if scale == size else
               f"{size} x {size} pixels, with items and textures as large as in a {scale}-pixel frame")
    if clip_size is None:
        items = "n/a"
    elif scale == clip_size:
        items = f"as large as in the {clip_size}-pixel clips"
    else:
        items = f"{scale / clip_size:.3g} times as large as in the {clip_size}-pixel clips"
    return {"pretrain_epochs": str(len(r.metrics)), "pretrain_images": f"{r.results['train_images']:,}",
            "pretrain_item_scale": items,
            "pretrain_top1": pct(r.results["val"]["top1"]), "pretrain_last_change": f"{change:+.1f} points",
            "pretrain_picture": picture, "pretrain_target_sentence": pretraining_sentence(r.results["val"]["top1"],
                                                                                          change)}


def reversal_table(at_init: pd.DataFrame) -> pd.DataFrame:
    """Relative change under time reversal at initialisation, mean and range over seeds."""
    g = at_init.groupby("method", sort=False)["reversal_change"]
    return pd.DataFrame({"relative change (mean over seeds)": g.mean().map(lambda v: f"{v:.2e}"),
                         "lowest seed": g.min().map(lambda v: f"{v:.2e}"),
                         "highest seed": g.max().map(lambda v: f"{v:.2e}")})


def reversal_numbers(at_init: pd.DataFrame, methods: Mapping) -> dict:
    means = at_init.groupby("method", sort=False)["reversal_change"].mean()
    label = {m.inflation: m.label for m in methods.values() if m.inflation}
    random = next((m.label for k, m in methods.items() if k == "3d_random"), None)
    asymmetric = [means[label[i]] for i in label if i != "mean" and label[i] in means]
    return {"init_change_mean": f"{means.get(label.get('mean'), float('nan')):.1e}",
            "init_change_random": f"{means.get(random, float('nan')):.2f}" if random else "n/a",
            "init_change_asymmetric": (f"{min(asymmetric):.2f} to {max(asymmetric):.2f}" if asymmetric else "n/a")}


def ablation_numbers(runs: Mapping, methods: Mapping, comparisons, params: StudyParams) -> dict:
    """Which inflations beat random initialisation on verbs and on nouns, as the intervals allow."""
    from .results import difference, seed_difference_of
    out = {}
    for head in ("verb", "noun"):
        ahead, behind, unclear = [], [], []
        for a, b in comparisons:
            if a not in runs or b not in runs:
                continue
            d = difference(runs[a], runs[b], head, confidence=params.confidence, resamples=params.bootstrap_resamples)
            seeds = seed_difference_of(runs[a], runs[b], head, params.confidence)
            name = methods[a].label.removeprefix("3D, ")
            side = agreed_sign(d, seeds)
            over_seeds = _over_seeds(seeds)
            (ahead if side > 0 else behind if side < 0 else unclear).append(f"{name} ({points(d)}{over_seeds})")
        parts = []
        if ahead:
            parts.append("ahead of random initialisation: " + "; ".join(ahead))
        if behind:
            parts.append("behind it: " + "; ".join(behind))
        if unclear:
            parts.append("not distinguishable from it: " + "; ".join(unclear))
        out[f"ablation_{head}s"] = ". ".join(parts) or "not measured"
    return out


def verdict_display(verdicts: pd.DataFrame):
    """The verdict table as the book shows it: a Styler, so that the reasons are shown whole
    (a DataFrame's HTML cuts text at pandas' `display.max_colwidth`), left-aligned."""
    table = verdicts[["finding", "paper", "ours (95% interval)", "over seeds (95% interval)", "verdict",
                      "why"]].set_index("finding")
    return table.style.set_properties(**{"text-align": "left", "vertical-align": "top"})


def pair_numbers(pairs: pd.DataFrame, methods: Mapping) -> dict:
    """Balanced pair accuracy pooled over pairs (mean over pairs) per method, as one sentence."""
    if pairs.empty:
        return {"pairs_sentence": "no reversal pairs in this data"}
    means = pairs.groupby("method", sort=False)["accuracy"].mean()
    return {"pairs_sentence": "; ".join(f"{m} {v:.1f} %" for m, v in means.items())}


def limited_isa(run: Run) -> str:
    """The instruction set a run limited oneDNN to (`machine_spread`), or "default"."""
    return run.params.get("environment", {}).get("ONEDNN_MAX_CPU_ISA", "default")


def machine_table(here: Run, elsewhere: Run, methods: Mapping) -> pd.DataFrame:
    rows = []
    for label, r in (("this machine (default instruction set)", here),
                     (f"oneDNN limited to {limited_isa(elsewhere)}", elsewhere)):
        val = r.results["val"]
        rows.append({"run": label, "verb top-1 (%)": f"{100 * val['verb_top1']:.1f}",
                     "noun top-1 (%)": f"{100 * val['noun_top1']:.1f}",
                     "action top-1 (%)": f"{100 * val['action_top1']:.1f}"})
    return pd.DataFrame(rows).set_index("run")


def same_computation(a: Run, b: Run) -> bool:
    """Whether two runs computed the same numbers: their per-epoch training losses are equal to
    the last bit (two instruction sets that round alike leave every sum unchanged)."""
    first, second = ([m["train_loss"] for m in r.metrics if "train_loss" in m] for r in (a, b))
    return bool(first) and first == second


def spread_numbers(runs: Mapping, methods: Mapping, here: Run, elsewhere: Run) -> dict:
    """The book's sentence on how much numbers move: the largest range of verb top-1 over seeds
    (any method), the change of one run on another instruction set, and which instruction sets."""
    ranges = [100 * (max(r.results["val"]["verb_top1"] for r in g) - min(r.results["val"]["verb_top1"] for r in g))
              for g in runs.values() if len(g) > 1]
    change = f"{100 * (elsewhere.results['val']['verb_top1'] - here.results['val']['verb_top1']):+.1f} points"
    if same_computation(here, elsewhere):
        change += (" (the two runs computed the same numbers to the last bit, so this measures nothing about "
                   "other machines)")
    return {"seed_range": f"{max(ranges):.1f} points" if ranges else "n/a", "machine_change": change,
            "machine_isa": limited_isa(elsewhere),
            "machine_capability": here.results.get("environment", {}).get("cpu_capability", "unknown")}


PLATEAU_POINTS = 1.0  # a method still gaining this much verb top-1 over its last epochs has not reached a plateau


def plateau_sentence(curves: pd.DataFrame, last: int = 2) -> str:
    """Whether the methods reached a plateau, in words: `plateau_changes` of validation verb top-1
    (`curves`: `learning_curves`) over each method's `last` validated epochs (mean over seeds)."""
    changes = plateau_changes(curves, last)
    gains = changes.loc[changes["validated_epochs"] > last, "verb_change"].to_dict()
    if not gains:
        return f"too few validated epochs to tell whether the methods reached a plateau (fewer than {last + 1})"
    climbing = {k: v for k, v in gains.items() if v >= PLATEAU_POINTS}
    if not climbing:
        return (f"every method moved by less than {PLATEAU_POINTS:g} point of verb top-1 over its last {last} epochs "
                "(mean over seeds): a plateau at this budget")
    top = max(climbing, key=climbing.get)
    return (f"{len(climbing)} of {len(gains)} methods were still gaining at least {PLATEAU_POINTS:g} point of verb "
            f"top-1 over their last {last} epochs (mean over seeds; most: {top}, {climbing[top]:+.1f} points), so "
            "these models are not trained to a plateau and the verdicts describe them at this budget")


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
                     f"moved over the last {len(epochs) - 1} epochs (points)": diff[epochs[-1]] - diff[epochs[0]]})
    return pd.DataFrame(rows).set_index("comparison").round(1) if rows else pd.DataFrame()


def drift_sentence(drift: pd.DataFrame) -> str:
    """The largest movement of `difference_drift`, in words."""
    if drift.empty:
        return "no difference between methods could be followed over the last epochs"
    moved = drift.iloc[:, -1]
    top = moved.abs().idxmax()
    return (f"over the same epochs the differences behind the verdicts moved by at most {abs(moved[top]):.1f} "
            f"points ({top}: {moved[top]:+.1f})")


def protocol_numbers(params: StudyParams, runs: Mapping, methods: Mapping, curves: pd.DataFrame) -> dict:
    """The protocol paragraph's numbers: the profile's budget, the data the `runs` used, and
    whether their learning `curves` (`learning_curves`, read once by the notebook) plateaued."""
    any_run = next(iter(next(iter(runs.values()))))
    data = any_run.params["data"]
    used = data.get("dataset") if not data.get("annotations_dir") else f"{data['annotations_dir']} and {data['videos_dir']}"
    return {"epochs": str(params.epochs), "lr": f"{params.lr:g}", "train_frames": str(params.num_frames),
            "clip_shape": f"{params.num_frames} x {params.crop_size} x {params.crop_size}",
            "data_used": str(used), "plateau_sentence": plateau_sentence(curves),
            "drift_sentence": drift_sentence(difference_drift(curves, methods, MAIN_COMPARISONS))}


def time_spent(runs: Mapping, methods: Mapping, pretraining: Mapping) -> pd.DataFrame:
    """Where the study's training time went: per method, minutes per run (mean over seeds) and in
    all, and how an epoch splits into training steps, waiting for data and validation (from the
    runs' per-epoch timings); the image pretraining beside them."""
    rows = []
    for key, group in runs.items():
        epochs = [m for r in group for m in r.metrics if "epoch_seconds" in m]
        steps = sum(m["step_seconds"] for m in epochs)
        data = sum(m["data_seconds"] for m in epochs)
        val = sum(m.get("val_seconds", 0.0) for m in epochs)
        total = sum(r.results["train_seconds"] for r in group)
        rows.append({"what": methods[key].label, "runs": len(group), "minutes per run": total / 60 / len(group),
                     "minutes in all": total / 60, "steps (%)": 100 * steps / max(total, 1e-9),
                     "waiting for data (%)": 100 * data / max(total, 1e-9),
                     "validation (%)": 100 * val / max(total, 1e-9)})
    for model, r in pretraining.items():
        if r is not None:
            minutes = r.results["train_seconds"] / 60
            rows.append({"what": f"image pretraining ({model})", "runs": 1, "minutes per run": minutes,
                         "minutes in all": minutes})
    table = pd.DataFrame(rows).set_index("what")
    return table.round(1)


STUDY_BUDGET_MINUTES = 45  # what make study is meant to take on 2 cores (issue 9)


def budget_sentence(train_minutes: float, trained: str, budget: float = STUDY_BUDGET_MINUTES) -> str:
    """How the training time compares with the whole study's budget. Training is only part of
    the study (set-up, data, evaluation and the book come on top, and only the README's
    measured run knows their time), so training under the budget is never read as the study
    fitting it."""
    if train_minutes > budget:
        return (f"more than the {budget:g} minutes the whole study was meant to take on 2 cores, for {trained}: "
                "fitting the budget needs a faster training step or fewer runs, and more epochs would cost more "
                "still (whether these reached a plateau is below)")
    return (f"{train_minutes:.0f} of the {budget:g} minutes the whole study was meant to take on 2 cores, for "
            f"{trained}; set-up, evaluation and the book come on top (the README gives a whole run's time; "
            "`make study` makes the embedded dataset beside the image pretraining, inside this span)")


def training_span(runs: Iterable[Run]) -> Optional[float]:
    """Minutes from the first of `runs` starting to the last one finishing (the `wall_clock` each
    records): the study's training time when runs train side by side, which the sum of their
    times overstates. None when a run has no such record (trained before it was kept)."""
    clocks = [r.results.get("wall_clock") for r in runs]
    if not clocks or any(c is None for c in clocks):
        return None
    return (max(c["finished"] for c in clocks) - min(c["started"] for c in clocks)) / 60


def most_at_once(runs: Iterable[Run]) -> int:
    """The largest number of `runs` that were training at the same moment (their `wall_clock`s)."""
    # (time, +1 start / -1 end), an end before a start at the same time: a run ending as another starts is not at once
    events = sorted((c[k], +1 if k == "started" else -1) for c in (r.results.get("wall_clock") for r in runs) if c
                    for k in ("started", "finished"))
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def budget_numbers(runs: Mapping, methods: Mapping, pretraining: Mapping, extra: Sequence[Run] = ()) -> dict:
    """What the budget paragraph quotes: the training's wall-clock span over every run (`runs`,
    the `pretraining` runs and `extra` ones such as the spread between machines), the sum of the
    runs' own times, how many trained at once, and the share spent waiting for data."""
    table = time_spent(runs, methods, pretraining)
    every = [r for g in runs.values() for r in g] + [r for r in pretraining.values() if r is not None] + list(extra)
    env = every[0].results.get("environment", {})
    seeds = {r.params["seed"] for g in runs.values() for r in g}
    data = table["waiting for data (%)"].dropna()
    run_minutes = sum(r.results["train_seconds"] for r in every) / 60
    span = training_span(every)
    minutes = span if span is not None else run_minutes
    epochs = sorted({r.params["epochs"] for g in runs.values() for r in g})
    trained = f"every method with {len(seeds)} seeds for {'/'.join(map(str, epochs))} epochs"
    threads = sorted({r.results.get("environment", {}).get("threads") for r in every} - {None})
    return {"train_minutes": f"{minutes:.0f}", "run_minutes": f"{run_minutes:.0f}",
            "side_by_side": (f"{len(every)} runs, at most {most_at_once(every)} at a time, on "
                             f"{'/'.join(map(str, threads))} thread(s) each") if span is not None
            else f"{len(every)} runs",
            "machine": f"{env.get('cpu', '?')}, {env.get('cores', '?')} cores",
            "data_share": f"{data.mean():.1f} % of the video runs' time" if len(data) else "n/a",
            "budget_sentence": budget_sentence(minutes, trained)}


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
        row = {"method": method, "epochs": int(end), "validated_epochs": len(epochs)}
        for head in ("verb", "noun"):
            by_seed = group.pivot_table(index="seed", columns="epoch", values=f"val_{head}_top1")
            row[f"{head}_end"] = 100 * by_seed[end].mean()
            row[f"{head}_change"] = 100 * (by_seed[end] - by_seed[start]).mean()
        rows.append(row)
    columns = ["method", "epochs", "validated_epochs", "verb_end", "verb_change", "noun_end", "noun_change"]
    return pd.DataFrame(rows, columns=columns).set_index("method")


def plateau_table(curves: pd.DataFrame, last: int = 2) -> pd.DataFrame:
    """Per method: validation verb and noun top-1 at the last epoch and how much they moved over the
    `last` epochs before it (mean over seeds, points): near 0, the method has reached a plateau."""
    changes = plateau_changes(curves, last)
    table = pd.DataFrame({"epochs": changes["epochs"]}, index=changes.index)
    for head in ("verb", "noun"):
        table[f"{head} top-1 at the end (%)"] = changes[f"{head}_end"].round(1)
        table[f"{head}: change over the last {last} epochs (points)"] = changes[f"{head}_change"].round(1)
    return table


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
            f"({changes}): the verdicts on them at {short} describe that budget only")


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
    from .recorded import budget_comparison
    about, env = recorded.about, recorded.about["environment"]
    minutes = about.get("training_minutes")
    commit = about.get("commit") or "an unknown commit"
    commit = commit[:7] + ("+changes" if commit.endswith("+changes") else "")
    labels = list(recorded.curves["method"].unique())
    intro = (f"The runs above stop at {epochs} epochs, what fits the study's budget. The same protocol at "
             f"{recorded.epochs} epochs, for {len(labels)} methods ({'; '.join(labels)}) with "
             f"{recorded.curves['seed'].nunique()} seeds, was trained by make study-long on {env.get('cpu', '?')} "
             f"({env.get('cores', '?')} cores"
             + (f", {minutes:.0f} minutes of training" if minutes is not None else "")
             + f") and recorded at commit {commit} on {str(about.get('recorded', '?'))[:10]}"
             + f"; its learning curves are recorded in the repository ({recorded.location}). The record keeps each "
               "run's accuracy per epoch, not its predictions per segment, so the differences below have intervals "
               "over seeds only.")
    comparisons = every_comparison(methods) if comparisons is None else comparisons
    short, long = f"{epochs} epochs", f"{recorded.epochs} epochs"
    comparison = budget_comparison([(short, curves), (long, recorded.curves)], methods, comparisons)
    findings = (f"At {recorded.epochs} epochs {plateau_sentence(recorded.curves)}; "
                f"{drift_sentence(difference_drift(recorded.curves, methods, comparisons))}."
                + (f" {_shift_sentence(comparison, short, long)}." if not comparison.empty else ""))
    return {"long_intro": intro, "long_findings": findings}
