"""The study's tables from run folders written by the test: what each interval resamples
(videos, each segment once) and the tests between methods, with seeds and videos together."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from evitvid.runs import Run
from evitvid.study import results
from evitvid.study.data import Splits
from evitvid.study.intervals import (balanced_accuracy, hierarchical_difference, holm, mean_interval,
                                     paired_difference)
from evitvid.study.methods import Method

VERBS = ["take", "put", "open", "close", "wash"]
PARTNER = {0: 1, 1: 0, 2: 3, 3: 2, 4: 0}  # a wrong answer is the reversal partner (wash: take)
NOUNS = 3


def _ids(sizes) -> list[str]:
    return [f"P{v // 4 + 1:02d}_{v + 101}_{j}" for v, n in enumerate(sizes) for j in range(n)]


def write_run(root: Path, name: str, seed: int, ids: list[str], verb: np.ndarray, right: np.ndarray) -> Run:
    """A finished run whose verb answer is `verb` where `right`, its reversal partner elsewhere."""
    folder = root / name
    folder.mkdir(parents=True)
    n = len(ids)
    answer = np.where(right, verb, [PARTNER[v] for v in verb])
    verb_logits = np.zeros((n, len(VERBS)), np.float32)
    verb_logits[np.arange(n), verb] = 1.0
    verb_logits[np.arange(n), answer] = 2.0
    noun = np.arange(n) % NOUNS
    noun_logits = np.eye(NOUNS, dtype=np.float32)[noun]
    np.savez(folder / "logits.npz", narration_id=np.array(ids), verb_logits=verb_logits, noun_logits=noun_logits,
             verb=verb, noun=noun)
    (folder / "params.json").write_text(json.dumps({"seed": seed}))
    (folder / "results.json").write_text(json.dumps({"val": {"verb_top1": float(np.mean(right)), "noun_top1": 1.0,
                                                             "action_top1": float(np.mean(right))}}))
    return Run(folder)


def write_method(root: Path, key: str, ids: list[str], verb: np.ndarray, right: np.ndarray) -> list[Run]:
    """One run per row of `right` (seeds x segments)."""
    return [write_run(root, f"{key}_seed{s}", s, ids, verb, r) for s, r in enumerate(np.atleast_2d(right))]


@pytest.fixture
def study(tmp_path):
    """Two methods, three seeds, 12 videos of 8 to 14 segments; videos differ in difficulty, so
    their segments' correctness is correlated."""
    rng = np.random.default_rng(0)
    sizes = rng.integers(8, 15, size=12)
    ids = _ids(sizes)
    videos = np.repeat(np.arange(12), sizes)
    verb = rng.integers(0, len(VERBS), size=len(ids))
    ease = rng.uniform(0.2, 0.95, size=12)[videos]
    right_a = rng.random((3, len(ids))) < np.minimum(ease + 0.1, 1)
    right_b = rng.random((3, len(ids))) < ease
    runs = {"a": write_method(tmp_path, "a", ids, verb, right_a), "b": write_method(tmp_path, "b", ids, verb, right_b)}
    methods = {k: Method(k, f"method {k}", "m", False) for k in runs}
    return SimpleNamespace(runs=runs, methods=methods, ids=ids, videos=videos, verb=verb, right_a=right_a,
                           right_b=right_b, root=tmp_path)


def test_a_segments_video_is_its_narration_id_without_the_number():
    assert results.video_ids(["P01_101_7", "P01_101_12", "P22_03_0"]).tolist() == ["P01_101", "P01_101", "P22_03"]
    with pytest.raises(ValueError, match="'P01-101': expected <video id>_<segment number>"):
        results.video_ids(["P01_101_7", "P01-101"])
    # one video: nothing to resample between videos, the segments are resampled
    assert results.resampling_units(["P01_01_1", "P01_01_2"]).tolist() == ["P01_01_1", "P01_01_2"]
    assert results.resampling_units(["P01_01_1", "P01_02_1"]).tolist() == ["P01_01", "P01_02"]


def test_correctness_per_seed_and_segment_in_the_runs_order(study):
    matrix = results.correctness_matrix(study.runs["a"], "verb")
    np.testing.assert_array_equal(matrix, study.right_a.astype(float))
    np.testing.assert_allclose(results.per_segment_correctness(study.runs["a"], "verb"), study.right_a.mean(0))
    assert results.segment_videos(study.runs["a"]).tolist() == [i.rsplit("_", 1)[0] for i in study.ids]


def test_accuracy_intervals_resample_videos(study):
    m = results.main_metrics(study.runs["a"], "verb", resamples=2000)
    per_segment = study.right_a.mean(0)
    videos = results.video_ids(study.ids)
    expected = mean_interval(per_segment, clusters=videos, resamples=2000).scaled(100)
    assert m["ci"] == expected and m["ci"].estimate == pytest.approx(100 * per_segment.mean())
    segments = mean_interval(per_segment, resamples=2000).scaled(100)
    assert (m["ci"].high - m["ci"].low) > 1.3 * (segments.high - segments.low)  # the videos' difficulty
    table = results.accuracy(study.runs, study.methods, heads=("verb",), resamples=2000)
    assert table.loc[table["key"] == "a", "low"].item() == pytest.approx(expected.low)


def test_difference_resamples_videos_and_needs_the_same_segments(study, tmp_path):
    d = results.difference(study.runs["a"], study.runs["b"], "verb", resamples=2000)
    videos = results.video_ids(study.ids)
    expected = paired_difference(study.right_a.mean(0), study.right_b.mean(0), clusters=videos,
                                 resamples=2000).scaled(100)
    assert d == expected
    other = write_method(tmp_path / "other", "c", study.ids[:-1], study.verb[:-1], study.right_b[:, :-1])
    with pytest.raises(ValueError, match="different validation segments"):
        results.difference(study.runs["a"], other)


def test_difference_test_combines_seeds_and_videos_in_points(study):
    t = results.difference_test(study.runs["a"], study.runs["b"], "verb", resamples=2000)
    per_seed = np.mean(results.per_seed_top1(study.runs["a"])) - np.mean(results.per_seed_top1(study.runs["b"]))
    assert t.estimate == pytest.approx(per_seed)
    expected = hierarchical_difference(study.right_a.astype(float), study.right_b.astype(float),
                                       results.video_ids(study.ids), resamples=2000)
    assert t.interval.low == pytest.approx(100 * expected.interval.low) and t.p == expected.p
    assert t.mdd == pytest.approx(100 * expected.mdd) and t.se == pytest.approx(100 * expected.se)
    # seeds and videos together are wider than the videos alone (seeds averaged)
    videos_only = results.difference(study.runs["a"], study.runs["b"], "verb", resamples=2000)
    assert t.interval.high - t.interval.low > videos_only.high - videos_only.low


def test_difference_tests_adjust_the_family_with_holm(study):
    table = results.difference_tests(study.runs, study.methods, [("a", "b"), ("b", "a"), ("a", "missing")],
                                     resamples=500, effect=4.0)
    assert table["comparison"].tolist() == ["method a − method b", "method b − method a"]
    np.testing.assert_allclose(table["p_holm"], holm(table["p"].to_numpy()))
    np.testing.assert_allclose(table["t_p_holm"], holm(table["t_p"].to_numpy()))
    assert table["difference"].iloc[0] == pytest.approx(-table["difference"].iloc[1])
    assert (table["p_holm"] >= table["p"]).all() and "seeds_needed" in table


def _pair_splits(verb: np.ndarray) -> Splits:
    return Splits(train=[], validation=[SimpleNamespace(verb_class=int(v)) for v in verb], verbs=VERBS,
                  nouns=[str(i) for i in range(NOUNS)])


def test_pair_accuracy_counts_each_segment_once(study, tmp_path):
    """Three seeds that choose alike must give the interval one of them gives: the old table
    pooled the seeds' choices, each segment three times, and narrowed it by about sqrt(3)."""
    splits = _pair_splits(study.verb)
    one = write_method(tmp_path / "one", "one", study.ids, study.verb, study.right_a[:1])
    three = write_method(tmp_path / "three", "three", study.ids, study.verb, np.repeat(study.right_a[:1], 3, 0))
    methods = {k: Method(k, k, "m", False) for k in ("one", "three")}
    table = results.pair_accuracy({"one": one, "three": three}, methods, splits, resamples=2000).set_index(
        ["pair", "key"])
    for pair in ("take / put", "open / close"):
        assert table.loc[(pair, "one"), ["accuracy", "low", "high"]].tolist() == pytest.approx(
            table.loc[(pair, "three"), ["accuracy", "low", "high"]].tolist(), rel=1e-12)


def test_pair_accuracy_is_the_seeds_mean_with_an_interval_over_videos(study):
    splits = _pair_splits(study.verb)
    table = results.pair_accuracy(study.runs, study.methods, splits, resamples=2000)
    row = table[(table["pair"] == "take / put") & (table["key"] == "a")].iloc[0]
    mask = np.isin(study.verb, [0, 1])
    picks = [np.where(r[mask], study.verb[mask], [PARTNER[v] for v in study.verb[mask]]) for r in study.right_a]
    assert row["accuracy"] == pytest.approx(100 * np.mean([balanced_accuracy(study.verb[mask], p, (0, 1))
                                                           for p in picks]))
    assert row["low"] <= row["accuracy"] <= row["high"]
    assert row["segments"] == mask.sum()
    # the same choices with each segment its own video: a narrower interval
    single = write_method(study.root / "single", "s", [f"P01_{i + 101}_0" for i in range(len(study.ids))],
                          study.verb, study.right_a)
    alone = results.pair_accuracy({"s": single}, {"s": Method("s", "s", "m", False)}, splits, resamples=2000)
    alone = alone[alone["pair"] == "take / put"].iloc[0]
    assert alone["accuracy"] == pytest.approx(row["accuracy"])
    assert alone["high"] - alone["low"] < row["high"] - row["low"]


def test_a_tie_between_a_pairs_two_logits_scores_half_on_both_measures(study, tmp_path):
    """A model that cannot tell take from put (their two logits equal) scores 50 % on the pair
    however the tie falls: balanced accuracy within the pair and the verdicts' correct choices."""
    splits = _pair_splits(study.verb)
    tied = write_method(tmp_path / "tied", "tied", study.ids, study.verb, study.right_a[:1])[0]
    logits = dict(np.load(tied.dir / "logits.npz"))
    logits["verb_logits"][:, :2] = 5.0  # take and put tie on every segment, above the other verbs
    np.savez(tied.dir / "logits.npz", **logits)
    table = results.pair_accuracy({"tied": [tied]}, {"tied": Method("tied", "tied", "m", False)}, splits,
                                  resamples=200).set_index("pair")
    assert table.loc["take / put", ["accuracy", "low", "high"]].tolist() == [50.0, 50.0, 50.0]
    ids, hits = results.pair_choices([tied], splits, ["take / put"])
    assert len(ids) == np.isin(study.verb, [0, 1]).sum() and set(hits.ravel()) == {0.5}
    scores = results._choice_hits(np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0]]), np.arange(3), np.zeros(3, int),
                                  np.ones(3, int))
    assert scores.tolist() == [0.0, 1.0, 0.5]


def test_the_kind_sentence_names_a_kind_that_turns_a_difference_around():
    from evitvid.study.chapters import kind_difference_numbers

    def row(kind, difference, low, high):
        return {"comparison": "A − B", "kind": kind, "difference": difference, "low": low, "high": high}
    table = pd.DataFrame([row("end state", 30.0, 20.0, 40.0), row("motion", -12.0, -20.5, -3.3),
                          row("unpaired", -1.0, -9.0, 7.0), row("all verbs", 15.5, 7.0, 24.0)])
    said = kind_difference_numbers(table)["kind_difference_sentence"]
    assert said == ("a kind of verb turns a difference around (unadjusted intervals): A − B is +15.5 points on all "
                    "verbs and -12.0 [-20.5, -3.3] on the motion pairs' verbs")
    table.loc[1, "high"] = 0.5  # the motion pairs' interval reaches 0: nothing turned around
    assert kind_difference_numbers(table)["kind_difference_sentence"].startswith("no kind of verb turns")
    assert kind_difference_numbers(pd.DataFrame())["kind_difference_sentence"].startswith("no comparison")


def test_frames_curve_resamples_videos(study, monkeypatch):
    rng = np.random.default_rng(1)

    def fake_evaluate_frames(run, frames, *, positions_per_clip, per_segment, max_val):
        assert per_segment
        rows = [pd.DataFrame({"narration_id": study.ids, "frames": n, "position": p,
                              "verb_correct": rng.random(len(study.ids)) < 0.3 + 0.05 * n})
                for n in frames for p in range(positions_per_clip)]
        return pd.concat(rows, ignore_index=True)
    monkeypatch.setattr(results, "evaluate_frames", fake_evaluate_frames)
    rng_state = rng.bit_generator.state
    curve = results.frames_curve(study.runs, study.methods, (1, 4), 2, resamples=1000)
    rng.bit_generator.state = rng_state  # the same correctness again, to compute what it should be
    tables = [fake_evaluate_frames(r, (1, 4), positions_per_clip=2, per_segment=True, max_val=None)
              for r in study.runs["a"]]
    at_1 = pd.concat(tables).query("frames == 1").groupby("narration_id", sort=False)["verb_correct"].mean()
    expected = mean_interval(at_1.to_numpy(float), clusters=results.video_ids(at_1.index), resamples=1000).scaled(100)
    got = curve[(curve["method"] == "method a") & (curve["frames"] == 1)].iloc[0]
    assert (got["accuracy"], got["low"], got["high"]) == pytest.approx((expected.estimate, expected.low,
                                                                         expected.high))
