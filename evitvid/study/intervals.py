"""Uncertainty of the study's numbers: bootstrap intervals over validation segments.

Every accuracy the book reports comes with a 95 % interval from resampling the validation
segments (`scipy.stats.bootstrap`, BCa; percentile when every value is the same), and every
difference between two methods is a *paired* bootstrap over the same segments: both
methods' correctness on a segment moves together, which is what makes a difference
between two models on one validation set tighter than their separate intervals suggest.

Seeds enter as an average: a segment's score is its correctness averaged over the seeds of
a method, so the interval describes the seed-averaged method on this validation set, and
the spread between seeds is reported beside it (mean ± sd). That interval does not see how
far another set of seeds would move the method, so a difference between methods is also
given an interval over seeds (`seed_difference`: Welch's t over the per-seed accuracies,
scipy.stats.ttest_ind), which is what a re-run with new seeds would face.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from scipy import stats

__all__ = ["Interval", "bootstrap_interval", "mean_interval", "paired_difference", "seed_difference",
           "agreed_sign",
           "balanced_accuracy", "balanced_accuracy_interval"]


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
    """`statistic(*samples)` and its bootstrap interval (scipy.stats.bootstrap, BCa)."""
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


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def mean_interval(values: np.ndarray, **kw) -> Interval:
    """The mean of per-segment values (e.g. correctness averaged over seeds) and its interval."""
    return bootstrap_interval((values,), _mean, **kw)


def _difference(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_difference(a: np.ndarray, b: np.ndarray, **kw) -> Interval:
    """mean(a) - mean(b) over the same segments, with a paired bootstrap interval."""
    if len(a) != len(b):
        raise ValueError(f"paired samples need the same segments: {len(a)} against {len(b)}")
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
    resample keeps each class's count, so every class has a recall)."""
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    groups = [(prediction[truth == c] == c).astype(np.float64) for c in classes if np.any(truth == c)]
    if not groups:
        nan = float("nan")
        return Interval(nan, nan, nan, kw.get("confidence", 0.95))

    def statistic(*hits, axis=-1):
        return np.mean([np.mean(h, axis=axis) for h in hits], axis=0)
    return bootstrap_interval(groups, statistic, paired=False, **kw)
