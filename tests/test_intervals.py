"""The study's statistics on synthetic arrays: intervals over videos, seeds and videos together,
the variance components behind the smallest detectable difference, and Holm's adjustment."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from evitvid.study.intervals import (VarianceComponents, balanced_accuracy, balanced_accuracy_interval,
                                     cluster_balanced_accuracy, cluster_bootstrap_interval, hierarchical_difference,
                                     holm, mean_interval, minimum_detectable_difference, paired_difference,
                                     seeds_needed, variance_components)
from evitvid.study.intervals import _power_multiple, _t_test, _weighted_difference

Z80 = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)  # 2.8016: two-sided 5 %, 80 % power


def width(interval) -> float:
    return interval.high - interval.low


# ------------------------------------------------------------------ Holm


def test_holm_matches_a_hand_worked_family():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; made non-decreasing
    # in that order (0.04 -> 0.06) and put back in the input's order
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(holm([0.02]), [0.02])  # a family of one is not adjusted
    # an untested claim stays NaN and does not count in m
    out = holm([0.01, float("nan"), 0.04])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04])
    assert np.isnan(out[1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.2])


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


# ------------------------------------------------------------------ seeds and videos together


def _seeds_and_videos(rng, *, seeds=3, videos=16, per_video=30, shift=0.0, flip=0.1, video_sd=0.1, effect=0.0):
    """(a, b, videos): per-seed x per-segment values of two methods from the crossed model."""
    labels = _videos([per_video] * videos)
    shared = rng.normal(0, 0.2, size=videos)[labels] + rng.normal(0, 0.2, size=len(labels))
    own = rng.normal(0, video_sd, size=(2, videos))[:, labels]

    def method(k, mean):
        return np.stack([mean + shared + own[k] + rng.normal(0, shift) + rng.normal(0, flip, size=videos)[labels]
                         + rng.normal(0, 0.1, size=len(labels)) for _ in range(seeds)])
    return method(0, effect), method(1, 0.0), labels


def test_hierarchical_difference_with_agreeing_seeds_is_the_video_bootstrap():
    """Seeds that agree leave only the videos: the same draws give the percentile interval of the
    video bootstrap of the seed-averaged difference. Seeds that disagree widen it."""
    rng = np.random.default_rng(8)
    a1, b1, videos = _seeds_and_videos(rng, seeds=1)
    same = hierarchical_difference(np.repeat(a1, 3, 0), np.repeat(b1, 3, 0), videos)
    videos_only = cluster_bootstrap_interval((a1[0], b1[0]), _weighted_difference, videos, method="percentile")
    np.testing.assert_allclose([same.interval.low, same.interval.high], [videos_only.low, videos_only.high],
                               rtol=1e-12)
    shifts = np.array([[-0.1], [0.0], [0.1]])  # the same mean over seeds, each seed shifted
    apart = hierarchical_difference(np.repeat(a1, 3, 0) + shifts, np.repeat(b1, 3, 0) - shifts, videos)
    assert apart.estimate == pytest.approx(same.estimate)
    assert width(apart.interval) > 1.3 * width(same.interval) and apart.se > 1.3 * same.se
    assert apart.components.seed_a > 0 and same.components.seed_a == 0


def test_hierarchical_p_value_agrees_with_its_interval():
    rng = np.random.default_rng(9)
    for effect in (0.0, 0.02, 0.1):
        a, b, videos = _seeds_and_videos(rng, effect=effect)
        t = hierarchical_difference(a, b, videos)
        assert t.estimate == pytest.approx(np.mean(a.mean(1)) - np.mean(b.mean(1)))
        if t.interval.excludes_zero:
            assert t.p <= 0.05 + 2 / 4001  # the +1 of each count
        else:
            assert t.p >= 0.05 - 2 / 4001
        assert (t.t_p < 0.05) == t.t_interval.excludes_zero
    strong = hierarchical_difference(*_seeds_and_videos(rng, effect=0.3))
    assert strong.p == pytest.approx(2 / 4001) and strong.t_p < 1e-4
    points = strong.scaled(100)
    assert points.interval.low == pytest.approx(100 * strong.interval.low) and points.mdd == pytest.approx(
        100 * strong.mdd)
    assert points.components.variance() == pytest.approx(1e4 * strong.components.variance())


def test_the_t_test_over_seeds_and_videos_holds_its_level_when_seeds_dominate():
    """No difference, three seeds a method whose overall shifts dominate: the t test with the
    components' standard error and Satterthwaite's degrees of freedom rejects about 5 % of the
    time (the normal approximation with the same standard error, far more often)."""
    rng = np.random.default_rng(2)
    t_rejects = z_rejects = 0
    trials = 2000
    for _ in range(trials):
        a, b, videos = _seeds_and_videos(rng, shift=0.03, flip=0.01, video_sd=0.005, per_video=10)
        t = hierarchical_difference(a, b, videos, resamples=100)
        t_rejects += t.t_p < 0.05
        z_rejects += abs(t.estimate) / t.components.se() > stats.norm.ppf(0.975)
    # 2,000 trials: the rate's sd is 0.005 at 5 % (3,000 trials from each of four seeds: 5.1 to 6.4 %)
    assert t_rejects / trials <= 0.075 and z_rejects / trials > 0.085  # z: 12 % expected (t with 4 df)


# ------------------------------------------------------------------ variance components, detectable differences


def _true_components(*, seeds, videos, per_video, shift, flip, video_sd) -> VarianceComponents:
    """What `_seeds_and_videos` draws from, as components (the 0.1 of every value segment noise)."""
    interaction = flip ** 2 + 0.1 ** 2 / per_video
    return VarianceComponents(video=2 * video_sd ** 2, seed_a=shift ** 2, seed_b=shift ** 2,
                              interaction_a=interaction, interaction_b=interaction, seeds_a=seeds, seeds_b=seeds,
                              videos=videos, effective_videos=float(videos))


def test_variance_components_give_the_spread_of_the_difference_and_extrapolate():
    """From 3 seeds and 16 videos the components estimate the variance of A − B without bias (what
    the difference varies by over repeated draws of seeds and videos), and the variance another
    design would have (12 seeds, 32 videos) from the same data."""
    rng = np.random.default_rng(11)
    design = dict(seeds=3, videos=16, per_video=10, shift=0.02, flip=0.05, video_sd=0.03)
    truth = _true_components(**design)
    estimates, here, there = [], [], []
    for _ in range(3000):
        a, b, videos = _seeds_and_videos(rng, **design)
        c = variance_components(a, b, videos)
        estimates.append(a.mean() - b.mean())
        here.append(c.variance())
        there.append(c.variance(12, 12, 32))
    # 3,000 draws: the sample variance's relative sd is 2.6 %; the estimates' mean's, about 2 %
    assert np.var(estimates) == pytest.approx(truth.variance(), rel=0.1)
    assert np.mean(here) == pytest.approx(truth.variance(), rel=0.08)
    assert np.mean(there) == pytest.approx(truth.variance(12, 12, 32), rel=0.1)
    # the sum of a seed-only and a video-only variance would count the seed x video part twice
    naive = truth.variance() + truth.interaction_a / 16 / 3 + truth.interaction_b / 16 / 3
    assert np.mean(here) < naive * 0.95


def test_power_multiple_is_the_noncentral_t_s():
    """A t statistic (a normal estimate over a chi-square standard error on df degrees of freedom)
    whose mean is the multiple's standard errors passes ±t_{0.975, df} 80 % of the time; with
    many degrees of freedom the multiple is the z test's."""
    rng = np.random.default_rng(14)
    for df in (1.0, 1.5, 2.0, 5.0, 20.0):  # 1: two seeds a method, the seeds' part alone
        m = _power_multiple(df, 0.05, 0.8)
        t = (m + rng.normal(size=20_000)) / np.sqrt(rng.chisquare(df, size=20_000) / df)
        assert np.mean(np.abs(t) > stats.t.ppf(0.975, df)) == pytest.approx(0.8, abs=0.01)  # sd 0.003
    # near t_{0.975} + t_{0.8} (3.49 at 5 degrees of freedom), above z's 2.80
    assert _power_multiple(5.0, 0.05, 0.8) == pytest.approx(stats.t.ppf(0.975, 5) + stats.t.ppf(0.8, 5), abs=0.05)
    assert _power_multiple(float("nan"), 0.05, 0.8) == _power_multiple(1e7, 0.05, 0.8) == pytest.approx(Z80)
    with pytest.raises(ValueError, match="power=1"):
        _power_multiple(5.0, 0.05, 1)


def test_minimum_detectable_difference_by_hand_and_by_simulation():
    c = VarianceComponents(video=0.02, seed_a=4e-4, seed_b=2e-4, interaction_a=0.01, interaction_b=0.03, seeds_a=3,
                           seeds_b=3, videos=16, effective_videos=14.0)
    by_hand = (0.02 + 0.01 / 3 + 0.03 / 3) / 14 + 4e-4 / 3 + 2e-4 / 3
    parts = [((0.02 + 0.01 / 3 + 0.03 / 3) / 14, 15), (4e-4 / 3, 2), (2e-4 / 3, 2)]
    df = by_hand ** 2 / sum(v * v / d for v, d in parts)
    assert c.variance() == pytest.approx(by_hand) and c.degrees_of_freedom() == pytest.approx(df)
    assert minimum_detectable_difference(c) == pytest.approx(_power_multiple(df, 0.05, 0.8) * math.sqrt(by_hand))
    more = (0.02 + 0.01 / 10 + 0.03 / 10) / 28 + 4e-4 / 10 + 2e-4 / 10  # 10 seeds, 32 videos (V_eff 28)
    parts = [((0.02 + 0.01 / 10 + 0.03 / 10) / 28, 31), (4e-4 / 10, 9), (2e-4 / 10, 9)]
    df = more ** 2 / sum(v * v / d for v, d in parts)
    assert c.degrees_of_freedom(10, 10, 32) == pytest.approx(df)
    assert minimum_detectable_difference(c, seeds=10, videos=32) == pytest.approx(
        _power_multiple(df, 0.05, 0.8) * math.sqrt(more))
    assert minimum_detectable_difference(c, alpha=0.01, power=0.9) > minimum_detectable_difference(c)
    # the t test that DifferenceTest runs, on data of the crossed model: at no true difference it
    # rejects at its level; at the MDD more often than at the z test's (2.8 standard errors), but
    # less than the nominal 80 %: its degrees of freedom come from estimated components, lower
    # than the true ones on average (what minimum_detectable_difference says of itself)
    rng = np.random.default_rng(13)
    design = dict(seeds=3, videos=16, per_video=10, shift=0.02, flip=0.05, video_sd=0.03)
    truth = _true_components(**design)

    def rejected(effect: float) -> float:
        draws = [_seeds_and_videos(rng, effect=effect, **design) for _ in range(2000)]
        return float(np.mean([_t_test(a.mean() - b.mean(), variance_components(a, b, v), 0.95)[1] < 0.05
                              for a, b, v in draws]))  # 2,000 draws: sd 0.005 at 5 %, 0.01 at 70 %
    at_mdd, at_z = rejected(minimum_detectable_difference(truth)), rejected(Z80 * truth.se())
    assert rejected(0.0) == pytest.approx(0.05, abs=0.015)
    assert at_z + 0.03 < at_mdd < 0.8


def test_seeds_needed_is_the_fewest_that_bring_the_mdd_under_the_effect():
    c = VarianceComponents(video=0.001, seed_a=2e-4, seed_b=3e-4, interaction_a=0.006, interaction_b=0.006,
                           seeds_a=3, seeds_b=3, videos=16, effective_videos=15.0)
    effects = (0.06, 0.05, 0.045, 0.04)
    needs = [seeds_needed(effect, c) for effect in effects]
    for effect, s in zip(effects, needs):
        assert minimum_detectable_difference(c, seeds=s) <= effect < minimum_detectable_difference(c, seeds=s - 1)
        # at least the z test's count (its multiple is the smallest), which the closed form gives
        closed = Z80 ** 2 * (0.012 / 15 + 5e-4) / (effect ** 2 - Z80 ** 2 * 0.001 / 15)
        assert s >= math.ceil(closed)
    assert needs == sorted(needs) and needs[0] < needs[-1]
    # the videos' part alone, on 15 degrees of freedom, is _power_multiple(15) * sqrt(0.001 / 15) = 0.025 >
    # 0.02: no number of seeds is enough on these videos; on four times as many it is
    assert seeds_needed(0.02, c) is None and seeds_needed(0.02, c, videos=64) is not None
    assert seeds_needed(0.5, c) == 2  # at least two, to see the seeds at all
    one_seed = variance_components(np.ones((1, 6)), np.zeros((1, 6)), _videos([3, 3]))
    assert not one_seed.seeds_known and seeds_needed(0.1, one_seed) is None
    assert math.isnan(minimum_detectable_difference(one_seed))
