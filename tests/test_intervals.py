"""The study's statistics on synthetic arrays: intervals over videos, each segment counted once."""
from __future__ import annotations

import math

import numpy as np
import pytest

from evitvid.study.intervals import (balanced_accuracy, balanced_accuracy_interval, cluster_balanced_accuracy,
                                     cluster_bootstrap_interval, mean_interval, paired_difference)
from evitvid.study.intervals import _weighted_difference


def width(interval) -> float:
    return interval.high - interval.low


# ------------------------------------------------------------------ resampling videos


def _videos(sizes):
    return np.repeat(np.arange(len(sizes)), sizes)


def test_identical_segments_of_a_video_bootstrap_as_the_video_alone():
    """When every segment of a video has the same value, resampling videos is resampling one value
    per video: the same draws give the same interval, scipy's bootstrap over those values nearly
    the same one, and the bootstrap that treats the segments as independent is too narrow."""
    rng = np.random.default_rng(0)
    per_video = rng.uniform(0.2, 0.9, size=12)
    expanded = np.repeat(per_video, 5)
    clustered = mean_interval(expanded, clusters=_videos([5] * 12))
    one_per_video = mean_interval(per_video, clusters=np.arange(12))
    np.testing.assert_allclose([clustered.low, clustered.high], [one_per_video.low, one_per_video.high], rtol=1e-12)
    assert clustered.estimate == pytest.approx(per_video.mean())
    scipy_videos = mean_interval(per_video)  # scipy.stats.bootstrap, BCa, other random draws
    # 4,000 resamples: the bounds' Monte Carlo sd is about 0.003 here (width 0.2)
    assert clustered.low == pytest.approx(scipy_videos.low, abs=0.012)
    assert clustered.high == pytest.approx(scipy_videos.high, abs=0.012)
    naive = mean_interval(expanded)
    assert width(clustered) > 1.8 * width(naive)  # sqrt(5) = 2.2 times, the segments' correlation


def test_cluster_bca_is_scipys_bca_when_each_segment_is_its_own_cluster():
    rng = np.random.default_rng(1)
    values = rng.exponential(size=150)  # skewed: BCa moves the bounds away from the percentile ones
    ours = mean_interval(values, clusters=np.arange(150))
    theirs = mean_interval(values)
    percentile = cluster_bootstrap_interval((values,), lambda w, x: (w @ x) / w.sum(-1), np.arange(150),
                                            method="percentile")
    # the bounds' Monte Carlo sd with 4,000 resamples is about 0.006 (width 0.32)
    assert ours.low == pytest.approx(theirs.low, abs=0.02) and ours.high == pytest.approx(theirs.high, abs=0.02)
    assert ours.high - percentile.high > 0.01  # BCa's correction is there, not the percentile interval


def test_a_paired_difference_draws_the_same_videos_for_both_methods():
    rng = np.random.default_rng(2)
    videos = _videos(rng.integers(5, 15, size=10))
    effect = rng.normal(0, 0.3, size=10)[videos]  # what a video does to both methods
    a = effect + 0.05 + rng.normal(0, 0.02, size=len(videos))
    b = effect + rng.normal(0, 0.02, size=len(videos))
    paired = paired_difference(a, b, clusters=videos)
    np.testing.assert_allclose([paired.low, paired.high], [(d := mean_interval(a - b, clusters=videos)).low, d.high],
                               rtol=1e-12)
    assert paired.sign == 1 and width(paired) < width(mean_interval(a, clusters=videos)) / 5


def test_cluster_intervals_without_anything_to_resample():
    videos = _videos([3, 4])
    assert mean_interval(np.ones(7), clusters=videos).low == 1.0  # nothing varies: no width
    one_video = mean_interval(np.array([0.0, 1.0, 1.0]), clusters=["P01_01"] * 3)
    assert one_video.estimate == pytest.approx(2 / 3) and math.isnan(one_video.low) and math.isnan(one_video.high)
    x = np.random.default_rng(3).random(7)
    assert mean_interval(x, clusters=videos, seed=4) == mean_interval(x, clusters=videos, seed=4)
    with pytest.raises(ValueError, match="6 labels for 7 segments"):
        mean_interval(x, clusters=videos[:6])


def test_a_weighted_statistic_sees_each_resample_in_chunks_as_in_one(monkeypatch):
    """Large validation sets are resampled a chunk of resamples at a time: the same interval."""
    from evitvid.study import intervals
    rng = np.random.default_rng(5)
    videos = _videos(rng.integers(3, 9, size=20))
    a, b = rng.random(len(videos)), rng.random(len(videos))
    whole = cluster_bootstrap_interval((a, b), _weighted_difference, videos)
    monkeypatch.setattr(intervals, "_CHUNK", 7 * len(videos))
    chunked = cluster_bootstrap_interval((a, b), _weighted_difference, videos)
    # the same sums, computed in other blocks by BLAS: equal to the last bits of float64
    np.testing.assert_allclose([chunked.low, chunked.high], [whole.low, whole.high], rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ balanced accuracy, each segment once


def test_balanced_accuracy_counts_each_segment_once_whatever_the_seeds():
    """The old pair interval pooled three seeds' choices: each segment three times, an interval
    sqrt(3) too narrow. A segment counts once here: three copies of every segment in its own
    video, or three seeds that agree, leave the interval as it was."""
    rng = np.random.default_rng(6)
    n = 60
    truth = np.where(np.arange(n) % 3 == 0, 4, 7)
    hits = (rng.random(n) < 0.7).astype(float)
    clusters = np.arange(n)
    once = cluster_balanced_accuracy(hits, truth, (4, 7), clusters)
    thrice = cluster_balanced_accuracy(np.repeat(hits, 3), np.repeat(truth, 3), (4, 7), np.repeat(clusters, 3))
    np.testing.assert_allclose([thrice.estimate, thrice.low, thrice.high], [once.estimate, once.low, once.high],
                               rtol=1e-12)
    seeds = cluster_balanced_accuracy(np.stack([hits] * 3), truth, (4, 7), clusters)
    assert seeds == once
    # what the old pooling did: the same segments three times, a narrower interval
    prediction = np.where(hits == 1, truth, np.where(truth == 4, 7, 4))
    pooled = balanced_accuracy_interval(np.tile(truth, 3), np.tile(prediction, 3), (4, 7))
    assert width(pooled) < 0.7 * width(once)


def test_balanced_accuracy_of_several_seeds_is_their_mean_and_resamples_videos():
    rng = np.random.default_rng(7)
    videos = _videos([12] * 10)
    truth = rng.choice([1, 2], size=len(videos), p=[0.3, 0.7])
    skill = rng.uniform(0.3, 1.0, size=10)[videos]  # a video is easy or hard for every seed
    picks = [np.where(rng.random(len(videos)) < skill, truth, 3 - truth) for _ in range(3)]
    hits = np.stack([p == truth for p in picks]).astype(float)
    ci = cluster_balanced_accuracy(hits, truth, (1, 2), videos)
    assert ci.estimate == pytest.approx(np.mean([balanced_accuracy(truth, p, (1, 2)) for p in picks]), abs=1e-12)
    naive = cluster_balanced_accuracy(hits, truth, (1, 2), np.arange(len(videos)))
    assert width(ci) > 1.3 * width(naive)  # the videos' difficulty, seen
    constant = cluster_balanced_accuracy(truth == 1, truth, (1, 2), videos)  # always answering 1
    assert constant.estimate == pytest.approx(0.5) and constant.low == constant.high == 0.5
    one_class = cluster_balanced_accuracy(hits[:, truth == 2], truth[truth == 2], (1, 2), videos[truth == 2])
    assert one_class.estimate == pytest.approx(hits[:, truth == 2].mean())  # the absent class left out
