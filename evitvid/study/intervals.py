"""Uncertainty of the study's numbers: bootstrap intervals over validation videos and seeds, and tests.

Validation segments are not independent draws: they come from a few videos of a few
participants (the embedded set's validation split: 50 videos of 18 participants; EK100's:
138 videos of 32 participants), and the segments of one video share its kitchen, its
participant, its light and its objects, so a model right on one of them tends to be right on
its neighbours.
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
- `hierarchical_difference`: A − B with seeds and videos together, for the verdicts: a
  two-stage bootstrap resampling videos (the same for both methods) and, within each method,
  its seeds (percentile interval, two-sided p-value, standard error); and beside it a t test
  with the standard error of the variance components below and Welch–Satterthwaite's degrees
  of freedom, which keeps its level where the bootstrap's handful of seeds does not (when the
  seeds' overall shifts dominate).
- `variance_components`, `minimum_detectable_difference`, `seeds_needed`: the standard error of
  A − B as a function of the numbers of seeds and videos (a crossed seeds × videos random-effects
  model, moment estimates), hence the smallest difference a design detects at a given power
  and the seeds needed to detect a given one.
- `holm`: Holm's step-down adjustment of a family of p-values (Holm 1979).
- `seed_difference`: Welch's t over per-seed accuracies (scipy.stats.ttest_ind), the seeds alone.

Every resampling is drawn from a seeded numpy Generator (the same call gives the same interval)
and vectorised over resamples, in float64.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import numpy as np
from scipy import optimize, stats
from scipy.special import ndtr, ndtri

__all__ = ["Interval", "bootstrap_interval", "mean_interval", "paired_difference", "seed_difference",
           "agreed_sign",
           "balanced_accuracy", "balanced_accuracy_interval",
           "cluster_bootstrap_interval", "cluster_balanced_accuracy",
           "VarianceComponents", "DifferenceTest", "variance_components", "hierarchical_difference",
           "minimum_detectable_difference", "seeds_needed", "holm"]


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


# ------------------------------------------------------------------ seeds and videos together

@dataclass(frozen=True)
class VarianceComponents:
    """What the spread of A − B is made of, estimated from per-seed × per-video accuracies.

    The model (a crossed random-effects model, seeds nested in methods, videos crossed with both):
    method A's seed s scores video v at

        A[s, v] = mu_A + alpha_v + a_s + e_A[s, v],

    B likewise with beta_v, b_t, e_B[t, v]; the estimate A − B weights each video by its share of
    the segments, w_v = n_v / N. `video` is the variance of a video's own difference
    alpha_v − beta_v (segment sampling within the video included), `seed_a` the variance of a
    seed's shift a_s over every video, `interaction_a` that of e_A (how a seed's accuracy moves
    with which videos it is scored on beyond its shift, segment-level prediction noise included);
    all three per video, in the data's squared units (fractions², points² after `scaled(100)`).
    Seeds, videos and the e's independent; videos, seeds and segments per video like those seen.

    Then, with S_A and S_B seeds and V videos whose weights give an effective number
    V_eff = 1 / sum(w_v²) (V when the videos hold equally many segments),

        Var(A − B) = (video + interaction_a / S_A + interaction_b / S_B) / V_eff
                     + seed_a / S_A + seed_b / S_B,

    and another number of videos V' scales V_eff by V' / V. NaN seed components when a method has
    a single seed (its seed noise cannot be seen).
    """
    video: float
    seed_a: float
    seed_b: float
    interaction_a: float
    interaction_b: float
    seeds_a: int
    seeds_b: int
    videos: int
    effective_videos: float

    def variance(self, seeds_a: Optional[int] = None, seeds_b: Optional[int] = None,
                 videos: Optional[float] = None) -> float:
        """Var(A − B) with these numbers of seeds and videos (those measured where None)."""
        sa = self.seeds_a if seeds_a is None else seeds_a
        sb = self.seeds_b if seeds_b is None else seeds_b
        v_eff = self.effective_videos * (1.0 if videos is None else videos / self.videos)
        return float((self.video + self.interaction_a / sa + self.interaction_b / sb) / v_eff
                     + self.seed_a / sa + self.seed_b / sb)

    def se(self, seeds_a: Optional[int] = None, seeds_b: Optional[int] = None,
           videos: Optional[float] = None) -> float:
        """The standard error of A − B (the square root of `variance`)."""
        return math.sqrt(self.variance(seeds_a, seeds_b, videos))

    def degrees_of_freedom(self, seeds_a: Optional[int] = None, seeds_b: Optional[int] = None,
                           videos: Optional[float] = None) -> float:
        """Welch–Satterthwaite's degrees of freedom of `variance` with these numbers of seeds and
        videos (those measured where None): its video part (the per-video differences) on V − 1,
        each method's seed part on S − 1. NaN when no part has both variance and a degree of
        freedom."""
        sa = self.seeds_a if seeds_a is None else seeds_a
        sb = self.seeds_b if seeds_b is None else seeds_b
        v = self.videos if videos is None else videos
        v_eff = self.effective_videos * v / self.videos
        parts = [((self.video + self.interaction_a / sa + self.interaction_b / sb) / v_eff, v - 1),
                 (self.seed_a / sa, sa - 1), (self.seed_b / sb, sb - 1)]
        total = sum(part for part, _ in parts)
        spread = sum(part * part / df for part, df in parts if part > 0 and df > 0)
        return float(total * total / spread) if spread > 0 else float("nan")

    @property
    def seeds_known(self) -> bool:
        """Whether both methods had several seeds, so that the seed components were measured."""
        return bool(np.isfinite(self.seed_a) and np.isfinite(self.seed_b))

    def scaled(self, factor: float) -> "VarianceComponents":
        """The same components for values multiplied by `factor` (100: fractions to points)."""
        f2 = factor * factor
        return replace(self, video=self.video * f2, seed_a=self.seed_a * f2, seed_b=self.seed_b * f2,
                       interaction_a=self.interaction_a * f2, interaction_b=self.interaction_b * f2)


def _paired_matrices(a: np.ndarray, b: np.ndarray, videos: Sequence):
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a {a.shape} and b {b.shape}: give (seeds, segments) matrices over the same segments")
    codes, k = _cluster_codes(videos, a.shape[1])
    if k == 0:
        raise ValueError("a and b hold no segment")
    sizes = np.bincount(codes, minlength=k).astype(np.float64)
    onehot = np.zeros((a.shape[1], k))
    onehot[np.arange(a.shape[1]), codes] = 1.0
    return a @ onehot, b @ onehot, sizes  # per-seed sums per video, each video's segments


def _seed_parts(per_video: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(seed shift variance, seed × video variance summed as sum(w_v² var_v)) of one method.

    Two moments: the between-seed variance of the seeds' weighted accuracies has expectation
    seed + E, the w²-weighted between-seed variance within videos seed·sum(w²) + E, where
    E = sum(w_v² interaction_v); solved for both, each kept at or above 0."""
    seeds = per_video.shape[0]
    if seeds < 2:
        return float("nan"), float("nan")
    sw2 = float(np.sum(w ** 2))
    s2 = float(np.var(per_video @ w, ddof=1))
    if sw2 >= 1.0:  # one video: a seed's shift and its interaction with the video are one thing
        return s2, 0.0
    q = float((w ** 2) @ np.var(per_video, axis=0, ddof=1))
    if q >= s2:  # no shift beyond what the videos' noise gives
        return 0.0, q
    if q <= s2 * sw2:  # all shift, no interaction
        return s2, 0.0
    seed = (s2 - q) / (1.0 - sw2)
    return seed, q - seed * sw2


def variance_components(a: np.ndarray, b: np.ndarray, videos: Sequence) -> VarianceComponents:
    """The components of the variance of mean(a) − mean(b) (`VarianceComponents`), from per-seed ×
    per-segment values `a` (S_A, N) and `b` (S_B, N) over the same segments and each segment's
    video (moment estimates, each kept at or above 0).

    Video: the cluster variance of the seed-averaged per-video differences d_v,
    V / (V − 1) · sum(w_v² (d_v − d)²) (what resampling videos measures), less the seed × video
    part it holds (interaction / S for each method); seeds: `_seed_parts`. Under the model the
    variance at the measured numbers of seeds and videos is unbiased before truncation (exactly
    when the videos hold equally many segments, to first order otherwise).
    """
    sums_a, sums_b, sizes = _paired_matrices(a, b, videos)
    k = len(sizes)
    w = sizes / sizes.sum()
    sw2 = float(np.sum(w ** 2))
    per_a, per_b = sums_a / sizes, sums_b / sizes
    d = per_a.mean(axis=0) - per_b.mean(axis=0)
    spread = k / (k - 1) * float((w ** 2) @ (d - w @ d) ** 2) if k > 1 else 0.0
    seed_a, e_a = _seed_parts(per_a, w)
    seed_b, e_b = _seed_parts(per_b, w)
    s_a, s_b = per_a.shape[0], per_b.shape[0]
    video = max(0.0, spread - np.nan_to_num(e_a) / s_a - np.nan_to_num(e_b) / s_b)
    return VarianceComponents(video=float(video / sw2), seed_a=seed_a, seed_b=seed_b, interaction_a=e_a / sw2,
                              interaction_b=e_b / sw2, seeds_a=s_a, seeds_b=s_b, videos=k,
                              effective_videos=1.0 / sw2)


@dataclass(frozen=True)
class DifferenceTest:
    """A − B with seeds and videos together (`hierarchical_difference`), two ways.

    The two-stage bootstrap (what resampling seeds and videos gives): `interval`, the estimate
    (mean over A's seeds minus mean over B's) and its percentile interval; `p`, the two-sided
    bootstrap p-value of A − B = 0; `se`, the bootstrap standard error.

    The variance components (what the crossed model gives): `components`; `t_interval` and
    `t_p`, Welch–Satterthwaite's t on the estimate with the components' standard error and
    `t_df` degrees of freedom (`VarianceComponents.degrees_of_freedom`); `mdd`, the smallest
    difference detectable with these seeds and videos at `power` and two-sided
    alpha = 1 − the interval's confidence (`minimum_detectable_difference`).

    The two agree when videos and the seed × video interaction dominate; when seeds' overall
    shifts dominate, the bootstrap's seed part (3 seeds: 10 distinct resamples, variance
    2/3 of the seeds') is too narrow and its p too small, which the t test, with its few
    degrees of freedom, is not (`hierarchical_difference`).
    """
    interval: Interval
    p: float
    se: float
    components: VarianceComponents
    mdd: float
    t_interval: Interval
    t_p: float
    t_df: float
    power: float = 0.8

    @property
    def estimate(self) -> float:
        return self.interval.estimate

    def scaled(self, factor: float) -> "DifferenceTest":
        """The same test for values multiplied by `factor` (100: fractions to points)."""
        return replace(self, interval=self.interval.scaled(factor), se=self.se * abs(factor),
                       components=self.components.scaled(factor), mdd=self.mdd * abs(factor),
                       t_interval=self.t_interval.scaled(factor))


def _t_test(estimate: float, components: VarianceComponents, confidence: float) -> tuple[Interval, float, float]:
    """(interval, two-sided p, degrees of freedom) of Welch–Satterthwaite's t with the components'
    standard error; NaN when a method has a single seed, zero-width when nothing varies."""
    nan = float("nan")
    variance, df = components.variance(), components.degrees_of_freedom()
    if not np.isfinite(variance):
        return Interval(estimate, nan, nan, confidence), nan, nan
    if variance == 0:
        return Interval(estimate, estimate, estimate, confidence), 1.0 if estimate == 0 else 0.0, nan
    se = math.sqrt(variance)
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(estimate) / se, df))
    return Interval(estimate, estimate - half, estimate + half, confidence), p, df


def hierarchical_difference(a: np.ndarray, b: np.ndarray, videos: Sequence, *, confidence: float = 0.95,
                            resamples: int = 4000, seed: int = 0, power: float = 0.8) -> DifferenceTest:
    """A − B from per-seed × per-segment correctness `a` (S_A, N) and `b` (S_B, N) over the same
    segments (same order), `videos` each segment's video: seeds and videos resampled together.

    Each resample draws V videos with replacement, the same ones for both methods (the
    comparison stays paired), and, separately for each method, as many of its seeds as it has,
    with replacement; the statistic is the mean over the drawn seeds of each seed's accuracy on
    the drawn videos, A's less B's (the two-stage or "pigeonhole" bootstrap of a crossed design).
    The interval is the percentile interval; p is twice the smaller share of resamples on either
    side of 0 (ties count on both; +1 on each count, so p > 0): p < 1 − confidence exactly when
    the percentile interval leaves 0 out, up to the +1.

    What it assumes and how it errs: videos and seeds exchangeable and independent. Resampling
    both crossed factors counts the seed × video interaction twice (once with the videos, once
    with the seeds; Owen 2007, Ann. Appl. Stat. 1), which widens the interval; resampling S
    seeds shrinks the seed part's variance by (S − 1) / S (2/3 with 3 seeds), and with 3 seeds
    it takes only 10 distinct values, so its tails are short. Simulated (16 videos, 3 seeds a
    method, 300 data sets with no difference), p < 0.05 came 3 % of the time when videos and the
    interaction dominated and 17 % when the seeds' overall shifts did, where the t test of
    `DifferenceTest` came 3 % and 7 %. One seed per method: the seed part is not seen at all
    (the t test is NaN); one video: the video part is not.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    sums_a, sums_b, sizes = _paired_matrices(a, b, videos)
    components = variance_components(a, b, videos)
    estimate = float(a.mean() - b.mean())
    k, s_a, s_b = len(sizes), a.shape[0], b.shape[0]
    rng = np.random.default_rng(seed)
    drawn = _draw_counts(rng, k, resamples)  # (R, V), the same videos for both methods
    segments = drawn @ sizes
    acc_a = (drawn @ sums_a.T) / segments[:, None]  # (R, S_A): each seed's accuracy on the drawn videos
    acc_b = (drawn @ sums_b.T) / segments[:, None]
    diff = (np.sum(acc_a * _draw_counts(rng, s_a, resamples), axis=1) / s_a
            - np.sum(acc_b * _draw_counts(rng, s_b, resamples), axis=1) / s_b)
    alpha = 1 - confidence
    low, high = np.quantile(diff, [alpha / 2, 1 - alpha / 2])
    below, above = int(np.sum(diff <= 0)), int(np.sum(diff >= 0))
    p = min(1.0, 2.0 * (min(below, above) + 1) / (resamples + 1))
    interval = Interval(estimate, float(low), float(high), confidence)
    mdd = minimum_detectable_difference(components, alpha=alpha, power=power)
    t_interval, t_p, t_df = _t_test(estimate, components, confidence)
    return DifferenceTest(interval, p, float(np.std(diff, ddof=1)), components, mdd, t_interval, t_p, t_df, power)


def _power_multiple(df: float, alpha: float, power: float) -> float:
    """The true difference, in standard errors, that a two-sided t test at level `alpha` on `df`
    degrees of freedom detects with probability `power`: the noncentrality at which the
    noncentral t falls beyond ±t_{1−alpha/2, df} that often (both tails). Without degrees of
    freedom (NaN: nothing varies where they are counted) or with very many, the z test's
    z_{1−alpha/2} + z_{power}."""
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha={alpha}, power={power}: both must lie strictly between 0 and 1")
    if not np.isfinite(df) or df > 1e6:
        return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    crit = float(stats.t.ppf(1 - alpha / 2, df))

    def short(ncp: float) -> float:  # the far tail as the upper tail of -ncp: its cdf is NaN where tiny
        return float(stats.nct.sf(crit, df, ncp) + stats.nct.sf(crit, df, -ncp)) - power
    if short(0.0) >= 0:  # power at or below alpha: no difference is needed
        return 0.0
    high = crit + float(stats.t.ppf(power, df)) + 1.0
    while short(high) < 0:
        high *= 2
    return float(optimize.brentq(short, 0.0, high, xtol=1e-10))


def minimum_detectable_difference(components: VarianceComponents, *, seeds: Optional[int] = None,
                                  videos: Optional[float] = None, alpha: float = 0.05,
                                  power: float = 0.8) -> float:
    """The smallest true |A − B| that the t test of `DifferenceTest` (two-sided, level `alpha`)
    detects with probability `power`, with `seeds` per method (each method's measured number
    when None) and `videos` (the measured number when None): the standard error
    (`VarianceComponents.variance`) times the noncentrality at which a t on that design's
    Welch–Satterthwaite degrees of freedom (`VarianceComponents.degrees_of_freedom`) has that
    power (`_power_multiple`; about t_{1−alpha/2} + t_{power}, 3.5 at 5 degrees of freedom,
    against the z test's 2.8).

    Assumes what `VarianceComponents` does, that the test statistic is that noncentral t (the
    Welch–Satterthwaite approximation), and that the components measured here are the true
    ones: with 3 seeds the seed components rest on 2 degrees of freedom each, so the answer is a
    rough guide, and an optimistic one. Simulated (3 seeds, 16 videos, the crossed model), the t
    test found a true difference of this size about 71 % of the time rather than 80 % (the z
    test's 2.8 standard errors: 66 %), as its degrees of freedom come from estimated components,
    fewer than the true ones on average; at no difference it rejected 5 % of the time
    (tests/test_intervals.py). In the components' units (points after `scaled(100)`); NaN when
    a method had a single seed (`components.seeds_known`).
    """
    variance = components.variance(seeds, seeds, videos)
    if not np.isfinite(variance):
        return float("nan")
    df = components.degrees_of_freedom(seeds, seeds, videos)
    return _power_multiple(df, alpha, power) * math.sqrt(variance)


def seeds_needed(effect: float, components: VarianceComponents, *, videos: Optional[float] = None,
                 alpha: float = 0.05, power: float = 0.8, most: int = 10_000) -> Optional[int]:
    """The fewest seeds per method (at least 2, so that seeds can be compared) with which a true
    difference of `effect` (the components' units) is detected at `power`: the smallest S with
    `minimum_detectable_difference(components, seeds=S, videos=videos) <= |effect|`, found by
    doubling S and then halving the bracket (the detectable difference falls as seeds are
    added: the standard error shrinks and the degrees of freedom grow).

    None when no number of seeds is enough on these videos (even without seed noise the video
    part, on V − 1 degrees of freedom, exceeds |effect|; or `most` seeds are not enough), or when
    a method had a single seed (its seed noise unknown: `components.seeds_known`). Assumptions:
    `minimum_detectable_difference`.
    """
    if not components.seeds_known:
        return None
    v = components.videos if videos is None else videos
    floor = components.video / (components.effective_videos * v / components.videos)
    if _power_multiple(v - 1 if floor > 0 else float("nan"), alpha, power) * math.sqrt(floor) >= abs(effect):
        return None

    def enough(s: int) -> bool:
        return minimum_detectable_difference(components, seeds=s, videos=videos, alpha=alpha,
                                             power=power) <= abs(effect)
    low, high = 1, 2  # enough(low) is false by convention (one seed shows no seed noise)
    while not enough(high):
        if high >= most:
            return None
        low, high = high, min(2 * high, most)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input's order: the i-th smallest of m
    is multiplied by m − i + 1, made non-decreasing in that order, and capped at 1. A hypothesis
    is rejected at family-wise level alpha when its adjusted p is at most alpha. NaNs (untested
    claims) stay NaN and are not counted in m."""
    p = np.asarray(pvalues, dtype=np.float64)
    known = np.isfinite(p)
    if np.any((p[known] < 0) | (p[known] > 1)):
        raise ValueError(f"p-values {p.tolist()}: each must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    q = p[known]
    m = q.size
    order = np.argsort(q, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
    values = np.empty(m)
    values[order] = adjusted
    out[known] = values
    return out
