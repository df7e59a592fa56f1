"""The study's tables, computed from run folders: seeds, intervals, baselines, differences.

Every function takes {method key: [Run per seed]} (`methods.train_methods`) and returns a
DataFrame (or an interval). Accuracies are in % here (the library's metrics are fractions).
Column names are what the book shows.

Every interval resamples validation *videos*, not segments (`intervals`, the cluster
bootstrap): a segment's video is its narration id without the last `_N` (`video_ids`), and
the segments of a video are drawn together, because they share a kitchen and a participant
and are not independent. Seeds are averaged per segment first, so a segment counts once
whatever the number of seeds. When every validation segment comes from one video (the tests'
tiny set) there is nothing to resample between videos, and the segments are resampled
instead (`resampling_units`): those intervals are too narrow by the within-video correlation.

- `accuracy` (numbers) and `summary` (the book's table): per method, mean ± sd over seeds
  and the 95 % interval over videos (seeds averaged per segment), for verb, noun and action
  top-1; baselines below.
- `difference` and `differences`: method A minus method B on the same segments, seeds
  averaged, videos resampled (paired: the same videos for both); and over seeds
  (`seed_difference_of`, Welch's t: what other seeds could do to the difference).
- `difference_test` and `difference_tests`: A minus B with seeds and videos together
  (`intervals.hierarchical_difference`: a two-stage bootstrap, and a t test on the variance
  components): intervals, p-values (Holm-adjusted over a family in `difference_tests`), the
  smallest difference the design detects at 80 % power and the seeds it would take to detect
  a given one; for the verdicts between methods.
- `pair_accuracy` (numbers) and `pair_summary` (table): within each time-reversed verb
  pair, balanced accuracy (mean of the two verbs' recalls, 50 % for any constant answer)
  with its interval over videos, each segment once (its correctness averaged over seeds),
  beside the majority rate.
- `pair_choices` and `pair_choice_tests`: choosing between the two verbs of each reversal
  pair (a tie between their logits scores half), A minus B by kind of pair, seeds and videos
  together.
- `kind_accuracy` and `kind_difference_tests`: verb top-1, and A minus B in it, on the
  segments of each kind of verb (end-state pairs, motion pairs, unpaired verbs).
- `learning_curves`: validation metrics per epoch, per seed.
- `frames_curve`: accuracy against frames per segment, averaged over temporal positions and
  seeds, with intervals over videos (the paper's Fig. 2).
- `seed_spread`: the range between seeds of each method.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from ..runs import Run
from .baselines import KINDS, pair_baselines, pairs_of_kind, reversal_pairs, verb_kinds
from .data import Splits
from .frames import evaluate_frames
from .intervals import (DifferenceTest, Interval, cluster_balanced_accuracy, hierarchical_difference, holm,
                        mean_interval, paired_difference, seed_difference, seeds_needed)
from .methods import Method
from .predictions import read_logits, segment_results

__all__ = ["HEADS", "video_ids", "resampling_units", "segments_by_seed", "segment_ids", "segment_videos",
           "pair_choices", "pair_choice_test", "pair_choice_tests", "pair_choice_summary", "kind_accuracy",
           "kind_summary", "kind_difference_tests", "kind_difference_summary",
           "correctness_matrix", "per_segment_correctness", "main_metrics", "accuracy", "summary", "per_seed_top1",
           "difference", "seed_difference_of", "differences", "difference_test", "difference_tests", "pair_accuracy",
           "pair_summary", "learning_curves", "frames_curve", "seed_spread"]

HEADS = ("verb", "noun", "action")


def video_ids(narration_ids: Sequence[str]) -> np.ndarray:
    """Each segment's video: its narration id without the last `_N` (EK100's `P01_101_7` is
    segment 7 of video `P01_101`, of participant `P01`)."""
    videos = []
    for nid in narration_ids:
        video, sep, number = str(nid).rpartition("_")
        if not sep or not video or not number.isdigit():
            raise ValueError(f"narration_id {nid!r}: expected <video id>_<segment number>, as EK100's P01_101_7")
        videos.append(video)
    return np.array(videos, dtype=object)


def resampling_units(narration_ids: Sequence[str]) -> np.ndarray:
    """What the intervals resample, one label per segment: its video (`video_ids`), or, when the
    segments all come from one video, the segment itself (nothing to resample between videos)."""
    videos = video_ids(narration_ids)
    return videos if len(set(videos.tolist())) > 1 else np.asarray(narration_ids, dtype=object)


def segments_by_seed(runs: Sequence[Run]) -> pd.DataFrame:
    """Per-segment results of every seed, stacked (a `seed` column); segments in the same order."""
    frames = [segment_results(run).assign(seed=run.params["seed"]) for run in runs]
    ids = [f["narration_id"].tolist() for f in frames]
    if any(i != ids[0] for i in ids[1:]):
        raise ValueError("the seeds of a method were evaluated on different validation segments")
    return pd.concat(frames, ignore_index=True)


def segment_ids(runs: Sequence[Run]) -> np.ndarray:
    """The narration ids of the validation segments, in the order of `correctness_matrix`."""
    return segment_results(runs[0])["narration_id"].to_numpy(dtype=object)


def segment_videos(runs: Sequence[Run]) -> np.ndarray:
    """Each validation segment's video (`video_ids`), in the order of `correctness_matrix`."""
    return video_ids(segment_ids(runs))


def _correctness(runs: Sequence[Run], head: str) -> tuple[np.ndarray, np.ndarray]:
    """(narration ids, correctness of `head` per seed and segment), the run folders read once."""
    table = segments_by_seed(runs)
    ids = table["narration_id"].to_numpy(dtype=object)[:len(table) // len(runs)]
    return ids, table[f"{head}_correct"].to_numpy(dtype=np.float64).reshape(len(runs), -1)


def correctness_matrix(runs: Sequence[Run], head: str) -> np.ndarray:
    """Correctness of `head` per seed and segment: (seeds in the runs' order, segments), 0 or 1."""
    return _correctness(runs, head)[1]


def per_segment_correctness(runs: Sequence[Run], head: str) -> np.ndarray:
    """Correctness of `head` per segment, averaged over seeds (in [0, 1])."""
    return correctness_matrix(runs, head).mean(axis=0)


def _paired(runs_a: Sequence[Run], runs_b: Sequence[Run], head: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(narration ids, A's and B's correctness matrices) over the segments both methods were
    evaluated on, which a paired comparison needs to be the same."""
    ids, a = _correctness(runs_a, head)
    other, b = _correctness(runs_b, head)
    if len(ids) != len(other) or np.any(ids != other):
        raise ValueError(f"{runs_a[0].dir.name} and {runs_b[0].dir.name} were evaluated on different validation "
                         "segments: a paired difference needs the same ones")
    return ids, a, b


def per_seed_top1(runs: Sequence[Run], head: str = "verb") -> list[float]:
    """Each seed's own top-1 of `head` (%), in the runs' order."""
    return [100 * r.results["val"][f"{head}_top1"] for r in runs]


def main_metrics(runs: Sequence[Run], head: str = "verb", **interval) -> dict:
    """mean and sd over seeds, and the interval over videos (seeds averaged per segment), of one
    head's top-1 (in %)."""
    per_seed = per_seed_top1(runs, head)
    ids, correct = _correctness(runs, head)
    ci = mean_interval(correct.mean(axis=0), clusters=resampling_units(ids), **interval).scaled(100)
    return {"mean": float(np.mean(per_seed)), "sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
            "ci": ci, "seeds": len(per_seed), "per_seed": per_seed}


def accuracy(runs: dict[str, list[Run]], methods: dict[str, Method], *, heads: Sequence[str] = HEADS,
             confidence: float = 0.95, resamples: int = 4000) -> pd.DataFrame:
    """Long table, one row per (method, head): seeds, mean and sd over seeds, and the interval
    over videos (`accuracy`, `low`, `high`; seeds averaged per segment), all top-1 in %."""
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
    and the 95 % interval over videos of each head's top-1; the baselines below."""
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
    """A minus B in points of top-1 on the same segments (seeds averaged per segment), paired
    bootstrap over videos (both methods on the same resampled videos). The seeds' own spread is
    not in it: `difference_test` resamples seeds too."""
    ids, a, b = _paired(runs_a, runs_b, head)
    return paired_difference(a.mean(axis=0), b.mean(axis=0), clusters=resampling_units(ids), **interval).scaled(100)


def seed_difference_of(runs_a: Sequence[Run], runs_b: Sequence[Run], head: str = "verb",
                       confidence: float = 0.95, **_: object) -> Optional[Interval]:
    """A minus B in points of top-1 over seeds (each run's own accuracy), Welch's t interval;
    None when a method has a single seed."""
    return seed_difference(per_seed_top1(runs_a, head), per_seed_top1(runs_b, head), confidence=confidence)


def difference_test(runs_a: Sequence[Run], runs_b: Sequence[Run], head: str = "verb", *, confidence: float = 0.95,
                    resamples: int = 4000, seed: int = 0, power: float = 0.8, **_: object) -> DifferenceTest:
    """A minus B in points of top-1 with seeds and videos together
    (`intervals.hierarchical_difference`): the two-stage bootstrap's interval, p-value and
    standard error; the t test on the variance components (`t_interval`, `t_p`, `t_df`); the
    components; and the smallest difference these seeds and videos detect at `power` (two-sided
    alpha = 1 − `confidence`), all in points. `intervals.seeds_needed(effect, test.components)`
    gives the seeds per method a difference of `effect` points would take."""
    ids, a, b = _paired(runs_a, runs_b, head)
    return hierarchical_difference(a, b, resampling_units(ids), confidence=confidence, resamples=resamples,
                                   seed=seed, power=power).scaled(100)


def difference_tests(runs: dict[str, list[Run]], methods: dict[str, Method], comparisons: Iterable[tuple[str, str]],
                     *, head: str = "verb", confidence: float = 0.95, resamples: int = 4000, power: float = 0.8,
                     effect: Optional[float] = None) -> pd.DataFrame:
    """One row per (A, B) present, as a family: `comparison` ("A − B", the methods' labels), the
    keys `a` and `b`, `difference_test`'s numbers in points (`difference`, `low`, `high`, `se`,
    `p`: the two-stage bootstrap; `t_low`, `t_high`, `t_p`: the t test on the variance
    components), `p_holm` and `t_p_holm` (Holm's adjustment over the rows: `intervals.holm`),
    `mdd` (the smallest difference detectable at `power`) and, with `effect` (points),
    `seeds_needed` (per method, to detect it on these videos; None when no number would, or a
    method has one seed)."""
    rows = []
    for a, b in comparisons:
        if a not in runs or b not in runs:
            continue
        t = difference_test(runs[a], runs[b], head, confidence=confidence, resamples=resamples, power=power)
        row = {"comparison": f"{methods[a].label} − {methods[b].label}", "a": a, "b": b,
               "difference": t.estimate, "low": t.interval.low, "high": t.interval.high,
               "se": t.se, "p": t.p, "t_low": t.t_interval.low, "t_high": t.t_interval.high, "t_p": t.t_p,
               "mdd": t.mdd}
        if effect is not None:
            row["seeds_needed"] = seeds_needed(effect, t.components, alpha=1 - confidence, power=power)
        rows.append(row)
    table = pd.DataFrame(rows)
    if rows:
        table.insert(table.columns.get_loc("p") + 1, "p_holm", holm(table["p"].to_numpy()))
        table.insert(table.columns.get_loc("t_p") + 1, "t_p_holm", holm(table["t_p"].to_numpy()))
    return table


def differences(runs: dict[str, list[Run]], methods: dict[str, Method], comparisons: Iterable[tuple[str, str]], *,
                heads: Sequence[str] = ("verb", "noun"), confidence: float = 0.95,
                resamples: int = 4000) -> pd.DataFrame:
    """For each (A, B) present: A minus B in points of top-1, with the paired bootstrap interval
    over videos (seeds averaged) and Welch's interval over seeds."""
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


def _seed_logits(runs: Sequence[Run], method: str = "a method") -> list[dict[str, np.ndarray]]:
    """Each seed's validation logits (`read_logits`), which must cover the same segments in the
    same order; otherwise one line naming `method`."""
    zs = [read_logits(run) for run in runs]
    ids = zs[0]["narration_id"]
    if any(len(z["narration_id"]) != len(ids) or np.any(z["narration_id"] != ids) for z in zs[1:]):
        raise ValueError(f"the seeds of {method} were evaluated on different validation segments")
    return zs


def _segment_kinds(ids: Sequence[str], splits: Splits) -> np.ndarray:
    """The kind of verb (`baselines.KINDS`) of each validation segment in `ids`, from its true verb."""
    kinds = np.array(verb_kinds(splits.verbs), dtype=object)
    verb_of = {s.narration_id: s.verb_class for s in splits.validation}
    return kinds[[verb_of[i] for i in ids]]


def _choice_hits(verb_logits: np.ndarray, rows: np.ndarray, truth: np.ndarray, other: np.ndarray) -> np.ndarray:
    """The score of choosing between each segment's verb (`truth`) and its reversal (`other`) from
    their two logits, on `rows` of `verb_logits`: 1 when its own verb's logit is the higher, 0 when
    the lower, 0.5 for a tie (a fair coin's expected score, so a model that cannot tell the two
    scores 50 % on either measure of the pairs)."""
    own, alternative = verb_logits[rows, truth], verb_logits[rows, other]
    return (own > alternative) + 0.5 * (own == alternative)


def pair_accuracy(runs: dict[str, list[Run]], methods: dict[str, Method], splits: Splits, *,
                  confidence: float = 0.95, resamples: int = 4000) -> pd.DataFrame:
    """Long table, one row per (reversal pair, method): the balanced accuracy (%) of choosing between
    the pair's two verbs (from their two logits, on the segments of either), mean over seeds, its
    interval over videos (each segment once, its choices' correctness averaged over seeds:
    `intervals.cluster_balanced_accuracy`), the pair's segments and the rate of its more frequent
    verb. A pair whose segments all come from one video has no interval (NaN bounds)."""
    base = pair_baselines(splits).set_index("pair")
    scored = {}
    for key, group in runs.items():
        zs = _seed_logits(group, key)
        scored[key] = (zs, resampling_units(zs[0]["narration_id"].tolist()))
    rows = []
    for a, b, name in reversal_pairs(splits.verbs):
        if name not in base.index:
            continue
        for key, (zs, units) in scored.items():
            truth = zs[0]["verb"]
            mask = np.isin(truth, [a, b])
            at, other = np.flatnonzero(mask), np.where(truth[mask] == a, b, a)
            hits = np.stack([_choice_hits(z["verb_logits"], at, truth[mask], other) for z in zs])
            ci = cluster_balanced_accuracy(hits, truth[mask], (a, b), units[mask], confidence=confidence,
                                           resamples=resamples).scaled(100)
            rows.append({"pair": name, "kind": base.loc[name, "kind"], "key": key, "method": methods[key].label,
                         "segments": int(base.loc[name, "segments"]), "majority": 100 * base.loc[name, "majority"],
                         "accuracy": ci.estimate, "low": ci.low, "high": ci.high})
    return pd.DataFrame(rows)


def pair_choices(runs: Sequence[Run], splits: Splits, pairs: Optional[Sequence[str]] = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(narration ids, correctness per seed and segment) of choosing between a reversal pair's
    two verbs from their two logits, on the validation segments of a pair's verbs (`pairs`:
    the pairs' names, "a / b", default every pair): the seeds x segments matrix the
    order-dependent claims test (`_choice_hits`: 1, 0, or 0.5 for a tie), each segment once per seed."""
    zs = _seed_logits(runs)
    ids, truth = zs[0]["narration_id"], zs[0]["verb"]
    other = np.full(len(truth), -1)
    for a, b, name in reversal_pairs(splits.verbs):
        if pairs is None or name in pairs:
            other[truth == a], other[truth == b] = b, a
    mask = other >= 0
    rows = np.flatnonzero(mask)
    return ids[mask], np.stack([_choice_hits(z["verb_logits"], rows, truth[mask], other[mask]) for z in zs])


def pair_choice_test(runs_a: Sequence[Run], runs_b: Sequence[Run], splits: Splits,
                     pairs: Optional[Sequence[str]] = None, *, confidence: float = 0.95, resamples: int = 4000,
                     power: float = 0.8) -> Optional[DifferenceTest]:
    """A minus B in points of correct choices within the reversal pairs (`pair_choices`), seeds
    and videos together (`intervals.hierarchical_difference`); None without such segments. A
    tie between the two logits counts half (`_choice_hits`)."""
    ids, a = pair_choices(runs_a, splits, pairs)
    ids_b, b = pair_choices(runs_b, splits, pairs)
    if len(ids) != len(ids_b) or np.any(ids != ids_b):
        raise ValueError("the two methods were evaluated on different validation segments")
    if not len(ids):
        return None
    return hierarchical_difference(a, b, resampling_units(ids.tolist()), confidence=confidence,
                                   resamples=resamples, power=power).scaled(100)


def kind_accuracy(runs: dict[str, list[Run]], methods: dict[str, Method], splits: Splits, *,
                  confidence: float = 0.95, resamples: int = 4000) -> pd.DataFrame:
    """Verb top-1 (%) on the validation segments of each kind of verb (`baselines.KINDS`: end-state
    pairs, motion pairs, unpaired verbs), per method: a row per (kind, method) with the segments,
    the mean over seeds and its interval over videos."""
    rows = []
    for key, group in runs.items():
        ids, hits = _correctness(group, "verb")
        kinds = _segment_kinds(ids, splits)
        for kind in KINDS:
            mask = kinds == kind
            if not mask.any():
                continue
            ci = mean_interval(hits[:, mask].mean(axis=0), clusters=resampling_units(ids[mask].tolist()),
                               confidence=confidence, resamples=resamples).scaled(100)
            rows.append({"kind": kind, "key": key, "method": methods[key].label, "segments": int(mask.sum()),
                         "accuracy": ci.estimate, "low": ci.low, "high": ci.high})
    return pd.DataFrame(rows)


def kind_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The book's table from `kind_accuracy`: a row per kind with its segments, a column per
    method ("mean [low, high]")."""
    if table.empty:
        return table
    out = table.assign(text=[f"{r.accuracy:.1f} [{r.low:.1f}, {r.high:.1f}]" for r in table.itertuples()])
    wide = out.pivot(index="kind", columns="method", values="text")
    wide = wide[list(dict.fromkeys(table["method"]))].reindex(list(dict.fromkeys(table["kind"])))
    return table.drop_duplicates("kind").set_index("kind")[["segments"]].join(wide)


def kind_difference_tests(runs: dict[str, list[Run]], methods: dict[str, Method], splits: Splits,
                          comparisons: Iterable[tuple[str, str]], *, confidence: float = 0.95, resamples: int = 4000,
                          power: float = 0.8) -> pd.DataFrame:
    """A minus B in points of verb top-1 on the validation segments of each kind of verb
    (`baselines.KINDS`) and on all of them, seeds and videos together (`difference_test`'s t test
    on those segments alone): a row per comparison present and kind with segments, with
    `comparison` ("A − B", the labels), `a`, `b`, `kind`, `segments`, `difference`, `low`, `high`,
    `p` (unadjusted: not a family) and `mdd` (at `power`). A kind whose segments come from fewer
    than two resampling units has no test and no row."""
    rows = []
    for a, b in comparisons:
        if a not in runs or b not in runs:
            continue
        ids, hits_a, hits_b = _paired(runs[a], runs[b], "verb")
        kind = _segment_kinds(ids, splits)
        for name in (*KINDS, "all verbs"):
            mask = np.ones(len(ids), bool) if name == "all verbs" else kind == name
            units = resampling_units(ids[mask].tolist())
            if len(set(units)) < 2:
                continue
            t = hierarchical_difference(hits_a[:, mask], hits_b[:, mask], units, confidence=confidence,
                                        resamples=resamples, power=power).scaled(100)
            rows.append({"comparison": f"{methods[a].label} − {methods[b].label}", "a": a, "b": b, "kind": name,
                         "segments": int(mask.sum()), "difference": t.t_interval.estimate, "low": t.t_interval.low,
                         "high": t.t_interval.high, "p": t.t_p, "mdd": t.mdd})
    return pd.DataFrame(rows)


def kind_difference_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The book's table from `kind_difference_tests`: a row per comparison, a column per kind
    ("difference [low, high], mdd" in points; "no test" where a kind has too few videos)."""
    return _by_kind(table, [*KINDS, "all verbs"], "no test")


def pair_choice_tests(runs: dict[str, list[Run]], methods: dict[str, Method], splits: Splits,
                      comparisons: Iterable[tuple[str, str]], *, confidence: float = 0.95,
                      resamples: int = 4000, power: float = 0.8) -> pd.DataFrame:
    """A minus B in points of correct choices within the reversal pairs (`pair_choice_test`, seeds
    and videos together), on the end-state pairs, the motion pairs and all pairs: a row per
    comparison present and kind with segments, with `comparison` ("A − B", the labels), `a`, `b`,
    `kind`, the t test's `difference`, `low`, `high` and `p`, `mdd` (the smallest difference
    these seeds and videos detect at `power`, a column too) and `seeds_needed` (seeds per method that would
    detect a true difference as large as this one: `intervals.seeds_needed`, None when no number
    would on these videos)."""
    kinds = {kind: [name for *_, name in pairs_of_kind(splits.verbs, kind)] for kind in KINDS[:2]}
    rows = []
    for a, b in comparisons:
        if a not in runs or b not in runs:
            continue
        for kind, pairs in (*kinds.items(), ("all pairs", None)):
            t = pair_choice_test(runs[a], runs[b], splits, pairs, confidence=confidence, resamples=resamples,
                                 power=power)
            if t is None:
                continue
            rows.append({"comparison": f"{methods[a].label} − {methods[b].label}", "a": a, "b": b, "kind": kind,
                         "difference": t.t_interval.estimate, "low": t.t_interval.low, "high": t.t_interval.high,
                         "p": t.t_p, "mdd": t.mdd, "power": power,
                         "seeds_needed": seeds_needed(t.t_interval.estimate, t.components, alpha=1 - confidence,
                                                      power=power)})
    return pd.DataFrame(rows)


def pair_choice_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The book's table from `pair_choice_tests`: a row per comparison, a column per kind of pair
    ("difference [low, high], mdd" in points; "no segments" where the kind has none)."""
    return _by_kind(table, [*KINDS[:2], "all pairs"], "no segments")


def _by_kind(table: pd.DataFrame, kinds: Sequence[str], missing: str) -> pd.DataFrame:
    """A long table of tests by kind (`comparison`, `kind`, `difference`, `low`, `high`, `mdd`) as
    the book shows it: a row per comparison, a column per kind in `kinds`' order, `missing` where
    a comparison has no test of a kind."""
    if table.empty:
        return table
    out = table.assign(text=[f"{r.difference:+.1f} [{r.low:+.1f}, {r.high:+.1f}], mdd {r.mdd:.1f}"
                             for r in table.itertuples()])
    wide = out.pivot(index="comparison", columns="kind", values="text")
    wide = wide.reindex(index=list(dict.fromkeys(table["comparison"])), columns=list(kinds))
    return wide.astype(object).fillna(missing).rename(columns=lambda kind: f"{kind} (points)").rename_axis(columns=None)


def pair_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The book's table from `pair_accuracy`: a row per pair, a column per method ("mean [low, high]")."""
    if table.empty:
        return table
    out = table.assign(text=[f"{r.accuracy:.1f} [{r.low:.1f}, {r.high:.1f}]" for r in table.itertuples()])
    wide = out.pivot(index="pair", columns="method", values="text")
    wide = wide[list(dict.fromkeys(table["method"]))].reindex(list(dict.fromkeys(table["pair"])))
    info = table.drop_duplicates("pair").set_index("pair")[["kind", "segments", "majority"]]
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
    positions and the seeds, with the 95 % interval over videos (each segment once, averaged over
    positions and seeds; the paper's Fig. 2)."""
    rows = []
    for key, group in runs.items():
        if pretrained_only and not methods[key].pretrained:
            continue
        tables = [evaluate_frames(run, frames, positions_per_clip=positions, per_segment=True, max_val=max_val)
                  .assign(seed=run.params["seed"]) for run in group]
        table = pd.concat(tables, ignore_index=True)
        for n, at_n in table.groupby("frames"):
            per_segment = at_n.groupby("narration_id", sort=False)[f"{head}_correct"].mean()
            ci = mean_interval(per_segment.to_numpy(np.float64), clusters=resampling_units(per_segment.index.tolist()),
                               confidence=confidence, resamples=resamples).scaled(100)
            by_position = at_n.groupby("position")[f"{head}_correct"].mean().mul(100)
            rows.append({"method": methods[key].label, "frames": int(n), "accuracy": ci.estimate, "low": ci.low,
                         "high": ci.high, "position_min": by_position.min(), "position_max": by_position.max()})
    return pd.DataFrame(rows)


def frames_gain(runs: Sequence[Run], low: int, high: int, *, positions: int, max_val: Optional[int] = None,
                head: str = "verb", confidence: float = 0.95, resamples: int = 4000) -> Interval:
    """Top-1 of `head` ("verb", "noun" or "action") with `high` frames per segment minus with
    `low` (points), each segment's correctness averaged over the seeds and `positions` temporal
    positions, paired over the same segments with videos resampled: how much more frames give
    (the paper's Fig. 2, which plots action accuracy)."""
    table = pd.concat([evaluate_frames(run, (low, high), positions_per_clip=positions, per_segment=True,
                                       max_val=max_val) for run in runs], ignore_index=True)
    per = {n: g.groupby("narration_id", sort=False)[f"{head}_correct"].mean() for n, g in table.groupby("frames")}
    ids = per[high].index.tolist()
    return paired_difference(per[high].to_numpy(np.float64), per[low].loc[ids].to_numpy(np.float64),
                             clusters=resampling_units(ids), confidence=confidence,
                             resamples=resamples).scaled(100)


def seed_spread(runs: dict[str, list[Run]], methods: dict[str, Method], head: str = "verb") -> pd.DataFrame:
    """Per method: each seed's top-1 (%) and the range between seeds."""
    rows = []
    for key, group in runs.items():
        values = {f"seed {r.params['seed']}": v for r, v in zip(group, per_seed_top1(group, head))}
        rows.append({"method": methods[key].label, **{k: round(v, 1) for k, v in values.items()},
                     "range (points)": round(max(values.values()) - min(values.values()), 1)})
    return pd.DataFrame(rows).set_index("method")
