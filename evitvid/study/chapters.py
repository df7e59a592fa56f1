"""What each chapter quotes: its glued numbers and the sentences whose wording depends on a result.

One function per paragraph that needs them, returning {glue name: text} (`text.glue`
glues them). Notebooks stay thin (CONTRIBUTING.md, Thin notebooks).
"""
from __future__ import annotations

from typing import Mapping, Optional

import pandas as pd

from ..models.inflate import RANDOM_INFLATIONS
from .baselines import baselines, pair_kinds
from .curves import difference_drift, drift_sentence, plateau_sentence
from .intervals import agreed_sign, mean_interval
from .methods import INFLATION_LABELS, MAIN_COMPARISONS
from .params import StudyParams
from .results import (difference, difference_test, frames_gain, per_segment_correctness, resampling_units,
                      seed_difference_of, segment_ids)
from .text import comparison_sentence, pct, points
from .verdicts import VERDICTS

__all__ = ["MECHANISMS", "mechanism_numbers", "verdict_numbers", "kind_difference_numbers", "testbed_numbers",
           "comparison_numbers", "frames_numbers",
           "pretraining_sentence", "pretraining_numbers", "reversal_numbers", "ablation_numbers", "pair_numbers",
           "motion_numbers", "protocol_numbers", "architecture_numbers"]


def comparison_numbers(runs: Mapping, methods: Mapping, a: str, b: str, prefix: str, params: StudyParams) -> dict:
    """Sentences comparing methods a and b on verbs and nouns, worded by their intervals."""
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
    key = next(k for k in runs if k.startswith("frame_averaging"))
    label = methods[key].label
    rows = frames[frames["method"] == label].sort_values("frames")
    out = {f"{prefix}_label": label, f"{prefix}_positions": str(params.eval_positions),
           f"{prefix}_train_frames": str(params.num_frames),
           f"{prefix}_frames_first": f"{rows['accuracy'].iloc[0]:.1f} %",
           f"{prefix}_frames_last": f"{rows['accuracy'].iloc[-1]:.1f} %",
           f"{prefix}_frames_max": str(int(rows["frames"].iloc[-1]))}
    kw = dict(confidence=params.confidence, resamples=params.bootstrap_resamples)
    for low in (1, 8):
        for head, name in (("verb", "gain"), ("action", "action_gain")):
            out[f"{prefix}_{name}_{low}_16"] = points(frames_gain(runs[key], low, 16, positions=params.eval_positions,
                                                                  max_val=params.max_val, head=head, **kw))
    ceiling = float(baselines(splits).set_index("baseline").loc["order-blind ceiling", "verb"])
    correct = per_segment_correctness(runs[key], "verb")
    gap = mean_interval(correct - ceiling, clusters=resampling_units(segment_ids(runs[key])), **kw).scaled(100)
    where = ("it is not distinguishable from the ceiling, so what it misses may be what no order-blind model can get"
             if gap.high >= 0 else
             "it stays below the ceiling, so order-blindness alone does not explain what it misses: an order-blind "
             "model could still get more right (undertrained, or not enough capacity)")
    out[f"{prefix}_ceiling_sentence"] = (f"at the {params.num_frames} frames it trains on, it is {points(gap)} from "
                                         f"the ceiling ({pct(ceiling)}). {where[0].upper()}{where[1:]}")
    return out


def pretraining_sentence(last_change: float) -> str:
    """Whether the pretraining had levelled off (its last epoch moved the held-out top-1 by less
    than a point) or was still climbing. With the learning rate decayed to its end a small last
    step shows the end of this schedule, not what a longer one would reach, and the sentence
    says no more."""
    if abs(last_change) < 1:
        return ("the last epoch moved it by less than a point, which is the end of this schedule's decay, not "
                "evidence that a longer one would not gain")
    return "it was still climbing when the schedule ended"


def pretraining_numbers(runs: Mapping, clip_size: Optional[int] = None) -> dict:
    """Notebook 02's numbers; with `clip_size` (the clips' crop), how the pictures' items
    compare with the clips' (`pretrain_item_scale`)."""
    if not runs:
        return {k: "n/a" for k in ("pretrain_epochs", "pretrain_images", "pretrain_held_out", "pretrain_top1",
                                   "pretrain_last_change", "pretrain_picture", "pretrain_item_scale",
                                   "pretrain_end_sentence")}
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
            "pretrain_held_out": f"{r.params['held_out']:,}", "pretrain_item_scale": items,
            "pretrain_top1": pct(r.results["val"]["top1"]), "pretrain_last_change": f"{change:+.1f} points",
            "pretrain_picture": picture, "pretrain_end_sentence": pretraining_sentence(change)}


def reversal_numbers(at_init: pd.DataFrame, methods: Mapping) -> dict:
    """Notebook 03's reversal change at initialisation: I3D's mean, random initialisation, the
    asymmetric inflations (a range) and the symmetric controls (their largest)."""
    means = at_init.groupby("method", sort=False)["reversal_change"].mean()
    inflated = {k: m for k, m in methods.items() if m.inflation and not m.paper_code}
    random = next((m.label for k, m in methods.items() if k == "3d_random"), None)
    asymmetric = [means[m.label] for m in inflated.values() if m.inflation in RANDOM_INFLATIONS and m.label in means]
    symmetric = [means[m.label] for k, m in inflated.items()
                 if k != "3d_mean" and m.inflation not in RANDOM_INFLATIONS and m.label in means]
    mean = inflated.get("3d_mean")
    return {"init_change_mean": f"{means.get(mean.label if mean else None, float('nan')):.1e}",
            "init_change_random": f"{means.get(random, float('nan')):.2f}" if random else "n/a",
            "init_change_asymmetric": (f"{min(asymmetric):.2f} to {max(asymmetric):.2f}" if asymmetric else "n/a"),
            "init_change_controls": (f"at most {max(symmetric):.1e}" if symmetric else "n/a")}


def ablation_numbers(runs: Mapping, methods: Mapping, comparisons, params: StudyParams) -> dict:
    """Which inflations beat random initialisation on verbs and on nouns, as the intervals allow
    (both over segments and over seeds: `intervals.agreed_sign`); the differences themselves are
    in the table the sentence follows (`results.differences`)."""
    out = {}
    for head in ("verb", "noun"):
        ahead, behind, unclear = [], [], []
        for a, b in comparisons:
            if a not in runs or b not in runs:
                continue
            d = difference(runs[a], runs[b], head, confidence=params.confidence, resamples=params.bootstrap_resamples)
            seeds = seed_difference_of(runs[a], runs[b], head, params.confidence)
            name = methods[a].label if methods[a].paper_code else INFLATION_LABELS.get(a.removeprefix("3d_"),
                                                                                        methods[a].label)
            side = agreed_sign(d, seeds)
            (ahead if side > 0 else behind if side < 0 else unclear).append(name)
        parts = []
        if ahead:
            parts.append("ahead of random initialisation: " + "; ".join(ahead))
        if behind:
            parts.append("behind it: " + "; ".join(behind))
        if unclear:
            parts.append("not distinguishable from it: " + "; ".join(unclear))
        parts = [p[0].upper() + p[1:] if i else p for i, p in enumerate(parts)]
        out[f"ablation_{head}s"] = ". ".join(parts) or "not measured"
    return out


# The inflation ablation's readings: (A, B, what A ahead of B would support), each a contrast
# between two inflations that differ in one respect.
MECHANISMS = (
    ("3d_mean_noise", "3d_mean", "breaking the time symmetry (the same mean, made asymmetric)"),
    ("3d_centre", "3d_centre_only", "breaking the time symmetry (the same centre, small asymmetric taps beside it)"),
    ("3d_centre_only", "3d_mean", "not averaging the frames' features together (both symmetric in time)"),
    ("3d_mean_replicate", "3d_mean", "not weakening the end frames with zero time padding (the same mean weights)"),
)


def mechanism_numbers(runs: Mapping, methods: Mapping, params: StudyParams) -> dict:
    """Notebook 03's reading of the inflation controls (`MECHANISMS`): for each contrast present,
    A minus B on verbs and nouns with seeds and videos together (`results.difference_test`, its
    t interval), and which explanations the data support (`mechanism_sentence`)."""
    lines, supported, against = [], [], []
    for a, b, reading in MECHANISMS:
        if a not in runs or b not in runs:
            continue
        parts = []
        for head in ("verb", "noun"):
            t = difference_test(runs[a], runs[b], head, confidence=params.confidence,
                                resamples=params.bootstrap_resamples).t_interval
            parts.append(f"{head}s {points(t)}")
            if head == "verb":
                (supported if t.sign > 0 else against if t.sign < 0 else []).append(reading)
        lines.append(f"{methods[a].label} − {methods[b].label}: {', '.join(parts)}")
    if not lines:
        return {"mechanism_sentence": "the inflation controls were not trained with this profile"}
    # each contrast's own 95 % interval, not adjusted for the others: a reading, not a verdict
    verdict = (f"On verbs, each contrast read on its own ({len(lines)} intervals, none adjusted for the others), "
               + ("the data support " + "; ".join(supported) if supported else
                  "no contrast is distinguishable from 0 with seeds and videos together"))
    if against:
        verdict += "; they speak against " + "; ".join(against) + " (each in its contrast alone)"
    return {"mechanism_sentence": ". ".join(lines) + ". " + verdict}


def pair_numbers(pairs: pd.DataFrame, methods: Mapping) -> dict:
    """Balanced pair accuracy pooled over pairs (mean over pairs) per method, as one sentence."""
    if pairs.empty:
        return {"pairs_sentence": "no reversal pairs in this data"}
    means = pairs.groupby("method", sort=False)["accuracy"].mean()
    return {"pairs_sentence": "; ".join(f"{m} {v:.1f} %" for m, v in means.items())}


def motion_numbers(probe: pd.DataFrame, pairs: pd.DataFrame) -> dict:
    """What the hand-made direction probe (`motion.motion_probe`) says beside the models' balanced
    accuracy on the same pairs (`results.pair_accuracy`), as one sentence (`motion_probe_sentence`).
    For each motion pair: the probe and the best model with their intervals, and where that model
    stands: not above chance (its interval reaches 50 %), above chance and below the probe (its
    interval ends below the probe's), or within the probe's interval. Then the conclusion: whether
    the probe reads the direction above chance in every pair, and whether any model reads it about
    as well."""
    if probe.empty:
        return {"motion_probe_sentence": "there are no motion pairs in this data, so nothing to probe"}
    parts, visible, within = [], [], []
    for row in probe.itertuples():
        models = pairs[(pairs["pair"] == row.pair) & pairs["accuracy"].notna()]
        if models.empty:
            raise ValueError(f"pairs: no model's accuracy on {row.pair}, which the probe scored")
        best = models.loc[models["accuracy"].idxmax()]
        above = best["low"] > 50
        close = above and best["high"] >= row.low
        stands = ("within the probe's interval" if close else "above chance and below the probe" if above else
                  "not above chance")
        parts.append(f"{row.pair}: the probe {row.accuracy:.1f} % [{row.low:.1f}, {row.high:.1f}], the best "
                     f"model ({best['method']}) {best['accuracy']:.1f} % [{best['low']:.1f}, {best['high']:.1f}], "
                     f"{stands}")
        visible.append(row.low > 50)
        within.append(close)
    if not all(visible):
        verdict = ("the probe does not tell every motion pair apart above chance, so these clips may not show the "
                   "direction well enough for any model")
    elif not any(within):
        verdict = ("the direction is in the clips the models are given (the probe reads it above chance in every "
                   "motion pair), and no model reads it as well as the probe at this data size and budget")
    else:
        verdict = "the direction is in the clips, and some model reads it about as well as the probe"
    return {"motion_probe_sentence": "; ".join(parts) + ". So " + verdict}


def controls_numbers(recorded, controls: Mapping, methods: Mapping) -> dict:
    """Where notebook 03's inflation controls come from (`controls_source`): trained by the
    chapter, or read from the recorded controls study `recorded` (`recorded.inflation_controls`
    gave `controls`, labelled by `methods`)."""
    if recorded is None:
        return {"controls_source": "The inflations below were trained by this chapter, beside the runs above"}
    labels = [methods[k].label for k in controls]
    seeds = {len(group) for group in controls.values()}
    return {"controls_source": (
        f"The inflations below were not trained by this chapter but by a recorded study (`make study-controls`, "
        f"kept in {recorded.location}): {len(labels)} methods ({'; '.join(labels)}) with "
        f"{'/'.join(map(str, sorted(seeds)))} seeds and this chapter's protocol, {recorded.provenance}. Its own "
        "random-init and mean-inflated runs are the baselines below, so every comparison is between runs of one "
        "machine")}


def _undetected(row) -> str:
    """What a `results.pair_choice_tests` row whose interval holds zero could have detected."""
    seeds = ("no number of seeds would on these videos" if pd.isna(row.seeds_needed) else
             f"one as large as this would take {int(row.seeds_needed)} seeds per method")
    return f" (these seeds and videos detect {row.mdd:.1f} points at {row.power * 100:.0f} % power; {seeds})"


def motion_study_numbers(recorded, pairs: pd.DataFrame, tests: pd.DataFrame, splits) -> dict:
    """The motion study's paragraph (`make study-motion`, read from its record `recorded`):
    `motion_study_intro`, what was trained and on what, and `motion_study_sentence`: each motion
    pair's best model (`pairs`: `results.pair_accuracy` on the record's runs) and where it stands
    against chance, then the comparisons of `tests` (`results.pair_choice_tests` on those runs)
    on the motion pairs, with what the design detects where an interval holds zero. `splits` are
    the record's dataset's. Without a record both say so."""
    if recorded is None:
        return {"motion_study_intro": "nothing: no motion study is recorded for this profile (its motion_study is "
                                      "null)",
                "motion_study_sentence": "No motion study is recorded for this profile, so there is nothing to read "
                                         "here"}
    p = recorded.about["params"]
    labels = list(dict.fromkeys(pairs["method"]))
    motion = pairs[pairs["kind"] == "motion"]
    intro = (f"{len(labels)} methods ({'; '.join(labels)}) at {p['num_frames']} frames per clip, {p['epochs']} "
             f"epochs and {len(p['seeds'])} seeds, on the embedded dataset's `{p['dataset']}` "
             f"({motion.drop_duplicates('pair')['segments'].sum()} of its {len(splits.validation)} validation "
             f"segments in the motion pairs); recorded in {recorded.location}")
    parts = []
    for name, rows in motion[motion["accuracy"].notna()].groupby("pair", sort=False):
        best = rows.loc[rows["accuracy"].idxmax()]
        stands = "above chance" if best["low"] > 50 else "not above chance"
        parts.append(f"{name}: at best {best['accuracy']:.1f} % [{best['low']:.1f}, {best['high']:.1f}] "
                     f"({best['method']}), {stands}")
    differences = [f"{r.comparison}: {r.difference:+.1f} [{r.low:+.1f}, {r.high:+.1f}] points"
                   + ("" if r.low > 0 or r.high < 0 else _undetected(r))
                   for r in tests.itertuples() if r.kind == "motion"] if not tests.empty else []
    sentence = "; ".join(parts) + (". Choosing within the motion pairs, " + "; ".join(differences) if differences
                                   else "")
    return {"motion_study_intro": intro, "motion_study_sentence": sentence}


def protocol_numbers(params: StudyParams, runs: Mapping, methods: Mapping, curves: pd.DataFrame) -> dict:
    """The protocol paragraph's numbers: the profile's budget, the data the `runs` used, and
    whether their learning `curves` (`learning_curves`, read once by the notebook) plateaued."""
    any_run = next(iter(next(iter(runs.values()))))
    data = any_run.params["data"]
    used = (data.get("dataset") if not data.get("annotations_dir") else
            f"{data['annotations_dir']} and {data['videos_dir']}")
    rate = (f"{params.lr:g}" if not isinstance(params.lr, Mapping) else
            "per method: " + ", ".join(f"{methods[k].label} {v:g}" for k, v in params.lr.items() if k in methods))
    validation = "every epoch" if params.val_every == 1 else f"every {params.val_every} epochs and after the last"
    return {"epochs": str(params.epochs), "lr": rate, "train_frames": str(params.num_frames),
            "validation_schedule": validation, "pretraining_epochs": str(params.pretrain_epochs),
            "clip_shape": f"{params.num_frames} x {params.crop_size} x {params.crop_size}",
            "data_used": str(used), "plateau_sentence": plateau_sentence(curves),
            "drift_sentence": drift_sentence(difference_drift(curves, methods, MAIN_COMPARISONS))}


def testbed_numbers(splits) -> dict:
    """What the chapters say of the classes (`splits`: `data.Splits`): how many verbs and nouns,
    how many verb pairs are time-reversals, and how many of those an end state tells apart."""
    kinds = pair_kinds(splits.verbs)
    return {"verb_classes": str(len(splits.verbs)), "noun_classes": str(len(splits.nouns)),
            "reversed_pairs": str(len(kinds)), "end_state_pairs": str(kinds.count("end state"))}


KIND_READING = {"end state": "the end-state pairs' verbs", "motion": "the motion pairs' verbs",
                "unpaired": "the unpaired verbs"}


def kind_difference_numbers(table: pd.DataFrame) -> dict:
    """Where a kind of verb turns a difference around (`results.kind_difference_tests`), as one
    sentence (`kind_difference_sentence`): each comparison and kind whose interval lies wholly on
    the other side of 0 from the comparison's difference on all verbs."""
    key = "kind_difference_sentence"
    if table.empty:
        return {key: "no comparison was tested by kind of verb"}
    parts = []
    for comparison, rows in table.groupby("comparison", sort=False):
        whole = rows[rows["kind"] == "all verbs"]
        if whole.empty:
            continue
        overall = float(whole["difference"].iloc[0])
        kinds = rows[rows["kind"] != "all verbs"]
        against = kinds[kinds["high"] < 0] if overall > 0 else kinds[kinds["low"] > 0]
        parts += [f"{comparison} is {overall:+.1f} points on all verbs and {r.difference:+.1f} "
                  f"[{r.low:+.1f}, {r.high:+.1f}] on {KIND_READING[r.kind]}" for r in against.itertuples()]
    if not parts:
        return {key: "no kind of verb turns a difference around: wherever a kind's interval excludes 0, it lies on "
                     "the side of the difference on all verbs"}
    return {key: "a kind of verb turns a difference around (unadjusted intervals): " + "; ".join(parts)}


def verdict_numbers(verdicts: pd.DataFrame) -> dict:
    """The findings grouped by verdict (`verdicts.verdict_table`), one glued text per verdict
    (`verdicts_reproduced`, ...: the findings joined by semicolons, or "none"), for the book's
    opening page."""
    out = {}
    for verdict in VERDICTS:
        findings = [f[0].lower() + f[1:] for f in verdicts.loc[verdicts["verdict"] == verdict, "finding"]]
        out[f"verdicts_{verdict.replace(' ', '_')}"] = "; ".join(findings) if findings else "none"
    return out


def architecture_numbers(table: pd.DataFrame) -> dict:
    """Whether the verdicts change with the paper's code's 3D model (`verdicts.architecture_verdicts`),
    as one sentence (`architecture_sentence`)."""
    tested = table[(table["evitvid: verdict"] != "not tested") & (table["paper's code: verdict"] != "not tested")]
    if tested.empty:
        return {"architecture_sentence": "the paper's code's 3D model was not trained with this profile"}
    changed = tested[tested["evitvid: verdict"] != tested["paper's code: verdict"]]
    if changed.empty:
        return {"architecture_sentence": f"every one of these {len(tested)} verdicts is the same with either 3D "
                                         f"model"}
    ours, paper = changed["evitvid: verdict"], changed["paper's code: verdict"]
    parts = [f"{finding[0].lower() + finding[1:]}: {ours[finding]} with evitvid's, {paper[finding]} with the "
             f"paper's code's" for finding in changed.index]
    return {"architecture_sentence": f"{len(changed)} of {len(tested)} verdicts change: " + "; ".join(parts)}
