"""Uncertainty of the study's numbers: bootstrap intervals over validation videos, and over seeds.

Validation segments are not independent draws: they come from a few videos of a few
participants (16 videos in the embedded set; 138 videos of 32 participants in EK100's
validation set), and the segments of one video share its kitchen, its participant, its light
and its objects, so a model right on one of them tends to be right on its neighbours.
Resampling segments as if each were drawn on its own gives intervals too narrow by that
within-video correlation. The study's intervals therefore resample *videos* (the cluster
bootstrap: Davison & Hinkley 1997, Bootstrap Methods, section 3.8; Field & Welsh 2007, JRSS-B
69): a resample draws as many videos as there are, with replacement, and takes every segment
of each drawn video with it.

- `mean_interval`, `paired_difference` (with `clusters=`, each segment's video) and
  `cluster_bootstrap_interval`: a mean, or a paired difference over the same segments, with
  videos resampled (both methods of a pair on the same resampled videos); BCa with the
  acceleration from a delete-one-video jackknife, the percentile interval where BCa is
  undefined. Without `clusters`, segments are resampled (scipy.stats.bootstrap, BCa).
- `cluster_balanced_accuracy`: the mean of per-class recalls with videos resampled, each
  segment counted once (seeds averaged per segment first).
- `seed_difference`: Welch's t over per-seed accuracies (scipy.stats.ttest_ind), the seeds alone.

Every resampling is drawn from a seeded numpy Generator (the same call gives the same interval)
and vectorised over resamples, in float64.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from scipy import stats
from scipy.special import ndtr, ndtri

__all__ = ["Interval", "bootstrap_interval", "mean_interval", "paired_difference", "seed_difference",
           "agreed_sign",
           "balanced_accuracy", "balanced_accuracy_interval",
           "cluster_bootstrap_interval", "cluster_balanced_accuracy"]


@dataclass(frozen=True)
class Interval:
    """An estimate and its confidence interval (same units: fractions, or points of %)."""
    estimate: float
    low: float
    high: float
    confidence: float = 0.95

    def scaled(self, factor: float) -> "Interval":
        return Interval(self.estimate * factor, self.low * factor, self.high * factor, self.confidence)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def sign(self) -> int:
        """+1 when the interval lies above 0, -1 below 0, 0 when it contains 0."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0

    def text(self, digits: int = 1, unit: str = "") -> str:
        return f"{self.estimate:.{digits}f}{unit} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def bounds_text(self, digits: int = 1) -> str:
        """The bounds alone, signed: '[-1.4, +15.7]' (a difference's interval)."""
        return f"[{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def bootstrap_interval(samples: Sequence[np.ndarray], statistic: Callable, *, paired: bool = True,
                       confidence: float = 0.95, resamples: int = 4000, seed: int = 0) -> Interval:
    """`statistic(*samples)` and its bootstrap interval over the samples' elements, each drawn on
    its own (scipy.stats.bootstrap, BCa): for values that are independent by construction. Segments
    of a few videos are not: `cluster_bootstrap_interval`."""
    data = tuple(np.asarray(s, dtype=np.float64) for s in samples)
    estimate = float(statistic(*data))
    if all(np.all(d == d.flat[0]) for d in data) or len(data[0]) < 2:
        return Interval(estimate, estimate, estimate, confidence)  # nothing varies: nothing to resample
    with warnings.catch_warnings():
        # BCa is undefined when the jackknife values do not vary (scipy warns and gives NaN); the
        # percentile interval below replaces it then.
        warnings.simplefilter("ignore", category=stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        res = stats.bootstrap(data, statistic, paired=paired, vectorized=True, confidence_level=confidence,
                              n_resamples=resamples, method="BCa", random_state=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):  # BCa undefined (e.g. one value differs): percentile
        res = stats.bootstrap(data, statistic, paired=paired, vectorized=True, confidence_level=confidence,
                              n_resamples=resamples, method="percentile", random_state=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(estimate, low, high, confidence)


# ------------------------------------------------------------------ resampling videos

# Segment weights held at once (16 MB of float64): EK100's 9,668 validation segments go ~200
# resamples at a time, the embedded set's ~500 all 4,000 in one or two.
_CHUNK = 1 << 21


def _cluster_codes(clusters: Sequence, n: int) -> tuple[np.ndarray, int]:
    """Each segment's cluster as an index 0..k-1, and k."""
    labels = np.asarray(clusters)
    if labels.shape != (n,):
        raise ValueError(f"clusters: {labels.size} labels for {n} segments; give each segment its video")
    if n == 0:
        return np.zeros(0, dtype=np.intp), 0
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1)
    return codes, int(codes.max()) + 1


def _draw_counts(rng: np.random.Generator, k: int, resamples: int) -> np.ndarray:
    """(resamples, k): how many times each of k units is drawn when k are drawn with replacement."""
    return rng.multinomial(k, np.full(k, 1.0 / k), size=resamples).astype(np.float64)


def _statistic_of_weights(statistic: Callable, weights: np.ndarray, codes: np.ndarray,
                          data: tuple[np.ndarray, ...]) -> np.ndarray:
    """`statistic(segment weights, *data)` for each row of cluster `weights`, a chunk at a time."""
    step = max(1, _CHUNK // max(len(codes), 1))
    out = [np.asarray(statistic(weights[i:i + step][:, codes], *data), dtype=np.float64).reshape(-1)
           for i in range(0, len(weights), step)]
    return np.concatenate(out)


def _bca_levels(theta: np.ndarray, estimate: float, jackknife: np.ndarray, alpha: float) -> Optional[np.ndarray]:
    """BCa's two quantile levels (Efron 1987; as scipy.stats.bootstrap computes them), the bias from
    the bootstrap values and the acceleration from the jackknife; None where either is undefined
    (no resample below the estimate, a jackknife value undefined or none varying). A resample
    equal to the estimate (to rounding: the same value summed in another order) counts half below
    it, so that ties, frequent with correctness of 0 or 1, do not bias the correction."""
    tolerance = 1e-12 * max(1.0, abs(estimate))
    below = np.sum(theta < estimate - tolerance) + 0.5 * np.sum(np.abs(theta - estimate) <= tolerance)
    z0 = ndtri(below / len(theta))
    if not np.isfinite(z0) or not np.all(np.isfinite(jackknife)):
        return None
    spread = jackknife.mean() - jackknife
    denominator = 6.0 * np.sum(spread ** 2) ** 1.5
    if denominator == 0:
        return None
    acceleration = np.sum(spread ** 3) / denominator
    z = ndtri(np.array([alpha / 2, 1 - alpha / 2]))
    levels = ndtr(z0 + (z0 + z) / (1 - acceleration * (z0 + z)))
    return levels if np.all(np.isfinite(levels)) else None


def cluster_bootstrap_interval(samples: Sequence[np.ndarray], statistic: Callable, clusters: Sequence, *,
                               confidence: float = 0.95, resamples: int = 4000, seed: int = 0,
                               method: str = "BCa") -> Interval:
    """A statistic of per-segment samples and its interval, resampling clusters (videos).

    `samples` have the segments on their last axis; `clusters` gives each segment's cluster.
    `statistic(weights, *samples)` takes segment weights of shape (k, segments) and returns k
    values: a resample weights each segment by how many times its cluster was drawn (all the
    clusters drawn with replacement), the estimate weights every segment 1. Resamples where the
    statistic is undefined (NaN: a class with no segment left, say) are left out: the interval is
    conditional on the statistic existing. `method` is "BCa" (acceleration from the
    delete-one-cluster jackknife; the percentile interval where BCa is undefined) or "percentile".

    When nothing varies, a zero-width interval; with a single cluster (and values that vary),
    NaN bounds: one video says nothing about how another would score.
    """
    if method not in ("BCa", "percentile"):
        raise ValueError(f"method={method!r}: use 'BCa' or 'percentile'")
    data = tuple(np.asarray(s, dtype=np.float64) for s in samples)
    n = data[0].shape[-1]
    if any(d.shape[-1] != n for d in data):
        raise ValueError(f"samples of {[d.shape[-1] for d in data]} segments: give each sample every segment")
    codes, k = _cluster_codes(clusters, n)
    nan = float("nan")
    if n == 0:
        return Interval(nan, nan, nan, confidence)
    estimate = float(_statistic_of_weights(statistic, np.ones((1, k)), codes, data)[0])
    if all(np.all(d == d.flat[0]) for d in data):
        return Interval(estimate, estimate, estimate, confidence)  # nothing varies: nothing to resample
    if k < 2:
        return Interval(estimate, nan, nan, confidence)
    rng = np.random.default_rng(seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = _statistic_of_weights(statistic, _draw_counts(rng, k, resamples), codes, data)
        theta = theta[np.isfinite(theta)]
        if theta.size == 0:
            return Interval(estimate, nan, nan, confidence)
        alpha = 1 - confidence
        levels = np.array([alpha / 2, 1 - alpha / 2])
        if method == "BCa":
            jackknife = _statistic_of_weights(statistic, 1.0 - np.eye(k), codes, data)
            levels = _bca_levels(theta, estimate, jackknife, alpha)
            if levels is None:
                levels = np.array([alpha / 2, 1 - alpha / 2])
    low, high = np.quantile(theta, levels)
    return Interval(estimate, float(low), float(high), confidence)


def _weighted_mean(w, x):
    return (w @ x) / w.sum(axis=-1)


def _weighted_difference(w, a, b):
    return (w @ (a - b)) / w.sum(axis=-1)


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def mean_interval(values: np.ndarray, *, clusters: Optional[Sequence] = None, **kw) -> Interval:
    """The mean of per-segment values (e.g. correctness averaged over seeds) and its interval:
    resampling `clusters` (each segment's video) when given, segments otherwise."""
    if clusters is not None:
        return cluster_bootstrap_interval((values,), _weighted_mean, clusters, **kw)
    return bootstrap_interval((values,), _mean, **kw)


def _difference(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_difference(a: np.ndarray, b: np.ndarray, *, clusters: Optional[Sequence] = None, **kw) -> Interval:
    """mean(a) - mean(b) over the same segments, with a paired bootstrap interval: both methods'
    values of a segment move together, resampling `clusters` (each segment's video) when given,
    segments otherwise."""
    if len(a) != len(b):
        raise ValueError(f"paired samples need the same segments: {len(a)} against {len(b)}")
    if clusters is not None:
        return cluster_bootstrap_interval((a, b), _weighted_difference, clusters, **kw)
    return bootstrap_interval((a, b), _difference, paired=True, **kw)


def seed_difference(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                    **_: object) -> Optional[Interval]:
    """mean(a) - mean(b) of per-seed scores, with Welch's t interval (unequal variances;
    scipy.stats.ttest_ind): how much the difference could move with other seeds. None with
    fewer than two seeds on either side (no spread to estimate); a zero-width interval when
    neither side varies."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return None
    estimate = float(a.mean() - b.mean())
    if np.all(a == a[0]) and np.all(b == b[0]):
        return Interval(estimate, estimate, estimate, confidence)
    with warnings.catch_warnings():
        # one side constant (every seed scored the same): scipy warns of cancellation in that
        # side's zero variance, which is exact here; Welch's interval then rests on the other side
        warnings.simplefilter("ignore", category=RuntimeWarning)
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence_level=confidence)
    return Interval(estimate, float(ci.low), float(ci.high), confidence)


def agreed_sign(segments: Interval, seeds: Optional[Interval]) -> int:
    """The sign of a difference that both intervals support (over segments and, when there are
    several seeds, over seeds): +1 or -1 when they agree, 0 otherwise."""
    if seeds is None:
        return segments.sign
    return segments.sign if segments.sign == seeds.sign else 0


def balanced_accuracy(truth: np.ndarray, prediction: np.ndarray, classes: Sequence[int]) -> float:
    """The mean over `classes` of each class's recall: 1/len(classes) for any constant answer."""
    recalls = [np.mean(prediction[truth == c] == c) for c in classes if np.any(truth == c)]
    return float(np.mean(recalls)) if recalls else float("nan")


def balanced_accuracy_interval(truth: np.ndarray, prediction: np.ndarray, classes: Sequence[int],
                               **kw) -> Interval:
    """Balanced accuracy and its interval, resampling segments within each class (stratified: a
    resample keeps each class's count, so every class has a recall). Segments each drawn on their
    own: `cluster_balanced_accuracy` resamples videos."""
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    groups = [(prediction[truth == c] == c).astype(np.float64) for c in classes if np.any(truth == c)]
    if not groups:
        nan = float("nan")
        return Interval(nan, nan, nan, kw.get("confidence", 0.95))

    def statistic(*hits, axis=-1):
        return np.mean([np.mean(h, axis=axis) for h in hits], axis=0)
    return bootstrap_interval(groups, statistic, paired=False, **kw)


def _balanced_accuracy_of_weights(w, hits, members):
    counts = w @ members.T  # (k, classes): each class's segments in the resample
    recalls = (w @ (members * hits).T) / counts  # NaN where a class has no segment: left out
    return recalls.mean(axis=-1)


def cluster_balanced_accuracy(hits: np.ndarray, truth: np.ndarray, classes: Sequence[int], clusters: Sequence,
                              **kw) -> Interval:
    """Balanced accuracy (the mean over `classes` of each class's recall) with its interval,
    resampling clusters (each segment's video).

    `hits` is each segment's correctness: a vector, or a (seeds, segments) matrix whose seeds are
    averaged per segment first, so a segment counts once however many seeds scored it (the
    estimate is then the mean over seeds of each seed's balanced accuracy). `truth` is each
    segment's class; classes with no segment are left out, as `balanced_accuracy` does. A
    resample in which a present class has no segment left has no balanced accuracy and is left
    out (the interval is conditional on every class being seen). Other keywords:
    `cluster_bootstrap_interval`.
    """
    hits = np.asarray(hits, dtype=np.float64)
    if hits.ndim == 2:
        hits = hits.mean(axis=0)
    truth = np.asarray(truth)
    if hits.shape != truth.shape:
        raise ValueError(f"hits of {hits.shape[-1]} segments against {truth.size} classes: one per segment")
    present = [c for c in classes if np.any(truth == c)]
    confidence = kw.get("confidence", 0.95)
    if not present:
        nan = float("nan")
        return Interval(nan, nan, nan, confidence)
    members = np.stack([truth == c for c in present]).astype(np.float64)
    if np.all(hits == hits[0]):  # every segment right (or wrong): every resample the same
        value = float(_balanced_accuracy_of_weights(np.ones((1, len(hits))), hits, members)[0])
        return Interval(value, value, value, confidence)
    return cluster_bootstrap_interval((hits, members), _balanced_accuracy_of_weights, clusters, **kw)
