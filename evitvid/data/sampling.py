"""Frame samplers: pure functions of (start, stop, num_frames, rng) -> sorted frame indices.

Two samplers, both returning `num_frames` sorted indices inside the half-open range
[start, stop) of a segment (in whatever frame numbering the caller uses, e.g. file frames):

* `tsn_indices` - Temporal Segment Networks (Wang et al., 2016, the paper's ref. [6]) as
  AVION samples EK100 (`get_frame_ids` in `avion/data/clip_dataset.py`): split the segment
  into `num_frames` equal parts and take one frame per part, a uniformly random one in
  training, the middle one in evaluation.
* `dense_indices` - one clip of `num_frames` consecutive frames `stride` apart (the
  SlowFast / pytorchvideo style), at a random position in training, centred in evaluation.

Evaluation (`rng=None`) is deterministic. Training takes a `numpy.random.Generator`, so
the caller decides the seeding (the dataset seeds per (seed, epoch, index)). Segments
shorter than the clip repeat frames; indices never leave the segment.
"""
from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import partial

import numpy as np

__all__ = ["tsn_indices", "dense_indices", "get_sampler", "SAMPLERS", "Sampler"]

Sampler = Callable[[int, int, int, "np.random.Generator | None"], np.ndarray]


def _check(start: int, stop: int, num_frames: int) -> int:
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if start < 0 or stop <= start:
        raise ValueError(f"need 0 <= start < stop, got start={start}, stop={stop}")
    return stop - start


def tsn_indices(start: int, stop: int, num_frames: int, rng: np.random.Generator | None = None, *,
                offset: float = 0.5) -> np.ndarray:
    """TSN sampling: one frame from each of `num_frames` equal parts of [start, stop).

    Part i covers [start + i*L/N, start + (i+1)*L/N) with L = stop - start. Evaluation
    (`rng=None`) takes the frame at fraction `offset` of each part (floored; 0.5, the
    midpoint, is TSN's and AVION's; other offsets evaluate at other temporal positions),
    training a uniform random position in each part. With L < N parts are shorter than a
    frame, so frames repeat.
    """
    length = _check(start, stop, num_frames)
    if not 0 <= offset < 1:
        raise ValueError(f"offset must be in [0, 1), got {offset}")
    parts = np.arange(num_frames, dtype=np.int64)
    if rng is None:
        # Integer arithmetic: floor((i + offset) * L / N) exactly, no float rounding.
        frac = Fraction(offset).limit_denominator(10 ** 6)
        offsets = ((parts * frac.denominator + frac.numerator) * length) // (num_frames * frac.denominator)
    else:
        positions = (parts + rng.random(num_frames)) * (length / num_frames)
        # (i + u) * L / N < L in exact arithmetic; the clip guards float round-up.
        offsets = np.minimum(np.floor(positions).astype(np.int64), length - 1)
    return start + offsets


def dense_indices(
    start: int, stop: int, num_frames: int, rng: np.random.Generator | None = None, *, stride: int = 2,
    offset: float = 0.5
) -> np.ndarray:
    """Dense sampling: `num_frames` frames `stride` apart, one clip inside [start, stop).

    The clip spans (N-1)*stride + 1 frames; training places it uniformly at random,
    evaluation (`rng=None`) at fraction `offset` of the room the segment leaves it (floored;
    0.5 centres it, as AVION's single-clip evaluation does; other offsets are other clips of
    a multi-clip evaluation). If the segment is shorter than the span, the stride shrinks to
    the largest that fits; if even stride 1 does not fit (L < N), the N indices spread evenly
    over the whole segment, repeating frames (the same indices in training and evaluation).
    """
    length = _check(start, stop, num_frames)
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    if not 0 <= offset <= 1:
        raise ValueError(f"offset must be in [0, 1], got {offset}")
    if length < num_frames:
        return start + (np.arange(num_frames, dtype=np.int64) * length) // num_frames
    if num_frames > 1:
        stride = min(stride, (length - 1) // (num_frames - 1))
    span = (num_frames - 1) * stride + 1
    slack = length - span
    if rng is None:  # floor(offset * slack) in integers, no float rounding
        frac = Fraction(offset).limit_denominator(10 ** 6)
        first = slack * frac.numerator // frac.denominator
    else:
        first = int(rng.integers(0, slack + 1))
    return start + first + np.arange(num_frames, dtype=np.int64) * stride


SAMPLERS: dict[str, Callable[..., np.ndarray]] = {"tsn": tsn_indices, "dense": dense_indices}


def get_sampler(name: str, **kwargs) -> Sampler:
    """The sampler called `name` ("tsn" or "dense") with keyword options bound (e.g. stride=4).

    Raises ValueError for an unknown name and TypeError for an option the sampler lacks.
    """
    try:
        fn = SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(SAMPLERS)}") from None
    if kwargs:
        import inspect

        accepted = set(inspect.signature(fn).parameters) - {"start", "stop", "num_frames", "rng"}
        unknown = set(kwargs) - accepted
        if unknown:
            raise TypeError(f"sampler {name!r} takes no option(s) {', '.join(sorted(unknown))}; "
                            f"it takes: {', '.join(sorted(accepted)) or 'none'}")
        return partial(fn, **kwargs)
    return fn
