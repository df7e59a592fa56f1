"""Whether a clip's frames show a direction of motion, read without learning.

The embedded testbed's two direction-of-motion pairs are told apart by where things move, not
by the state at the ends of a clip: move-left / move-right (the camera follows the item, so
the scene pans the other way) and rotate-clockwise / rotate-anticlockwise. Two hand-made
measurements read that direction from the frames a model is given:

- `pan_shift`: how far the picture's content moves to the right, in whole pixels, summed over
  consecutive frames (phase correlation of the grey images: the shift whose cross-power
  spectrum peaks);
- `rotation`: how fast the changing part of the picture turns, clockwise on screen (rows
  down), summed over consecutive frames: the rotation of a least-squares affine flow
  (brightness constancy) fitted to the fifth of the pixels that change most.

`direction_scores` applies one of them to the evaluation clips of a dataset (the frames a
model is given: TSN's middle of each part, resized and cropped). `motion_probe` is the book's
table: for each motion pair, which sign goes with which verb is read on the training split
(the probe's one choice), and the balanced accuracy of that rule on the validation segments
has its interval over videos. A probe that tells a pair's verbs apart well above chance shows
that the direction is in the pixels a model sees; if no model learns the pair, the failure is
the models' at this data size and budget, not the testbed's.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from scipy import ndimage

from .baselines import pairs_of_kind
from .data import DataPaths, Splits, clip_dataset
from .intervals import cluster_balanced_accuracy
from .results import resampling_units

__all__ = ["pan_shift", "rotation", "direction_scores", "MEASURES", "motion_probe"]


def _grey(frames: np.ndarray) -> np.ndarray:
    """T x H x W float64 from T x H x W (grey) or T x H x W x 3 (RGB) frames."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim == 4:
        frames = frames.mean(axis=-1)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise ValueError(f"frames: expected T x H x W or T x H x W x 3 with T >= 2, got shape {frames.shape}")
    return frames


def pan_shift(frames: np.ndarray) -> float:
    """Pixels the content moves to the right from the first frame to the last (sum over
    consecutive frames of the horizontal shift that phase correlation finds; whole pixels,
    each within half the width)."""
    grey = _grey(frames)
    width = grey.shape[2]
    total = 0
    for a, b in zip(grey[:-1], grey[1:]):
        spectrum = np.fft.fft2(b - b.mean()) * np.conj(np.fft.fft2(a - a.mean()))
        peak = np.fft.ifft2(spectrum / (np.abs(spectrum) + 1e-12)).real
        x = int(np.unravel_index(np.argmax(peak), peak.shape)[1])
        total += x if x < width / 2 else x - width
    return float(total)


def rotation(frames: np.ndarray, *, sigma: float = 1.5, changing: float = 0.2) -> float:
    """Rotation of the changing part of the picture, clockwise on screen, summed over
    consecutive frames (radians per step of the fitted affine flow: small-motion, so a measure
    of direction more than of angle). Each pair of frames is smoothed (`sigma` pixels); the
    flow is fitted to the `changing` share of the pixels whose brightness changes most, about
    their centroid."""
    grey = np.stack([ndimage.gaussian_filter(g, sigma) for g in _grey(frames)])
    rows, cols = np.mgrid[0:grey.shape[1], 0:grey.shape[2]].astype(np.float64)
    total = 0.0
    for a, b in zip(grey[:-1], grey[1:]):
        dy, dx = np.gradient((a + b) / 2)
        dt = b - a
        mask = np.abs(dt) >= np.quantile(np.abs(dt), 1 - changing)
        if mask.sum() < 6 or not np.any(dt[mask]):
            continue  # nothing changes: no turn
        x, y = cols - cols[mask].mean(), rows - rows[mask].mean()
        # dx * u + dy * v + dt = 0 with u = u0 + ux x + uy y, v = v0 + vx x + vy y
        design = np.stack([dx, dx * x, dx * y, dy, dy * x, dy * y], axis=-1)[mask]
        (_, _, uy, _, vx, _), *_ = np.linalg.lstsq(design, -dt[mask], rcond=None)
        total += (vx - uy) / 2  # with rows down, a positive curl turns clockwise on screen
    return float(total)


def direction_scores(dataset, measure: Callable[[np.ndarray], float]) -> np.ndarray:
    """`measure` (`pan_shift` or `rotation`) of each evaluation clip of `dataset` (an
    `EK100Dataset` with `train=False`: the frames at its sampler's indices, transformed as a
    model receives them, C x T x H x W, measured as T x H x W x C)."""
    return np.asarray([measure(np.asarray(dataset.frames(i, dataset.indices(i))).transpose(1, 2, 3, 0))
                       for i in range(len(dataset))], dtype=np.float64)


# The measurement that reads each motion pair's direction, by the pair as `REVERSAL_PAIRS` names it.
MEASURES: dict[tuple[str, str], Callable[[np.ndarray], float]] = {
    ("move-left", "move-right"): pan_shift,
    ("rotate-clockwise", "rotate-anticlockwise"): rotation,
}


def motion_probe(data: DataPaths, splits: Splits, *, num_frames: int, crop_size: int, frame_cache: bool = False,
                 confidence: float = 0.95, resamples: int = 4000) -> pd.DataFrame:
    """A row per motion pair (each has a measurement in `MEASURES`): the balanced accuracy (%) on the
    validation segments of the pair's verbs of telling them apart by the sign of the
    measurement on their evaluation clips (`num_frames` x `crop_size`, as the models are
    evaluated; a measurement of 0 counts as wrong), with its interval over videos. Which sign
    goes with which verb is read on the training split: the sign of the difference between the
    two verbs' mean measurements there.
    `frame_cache` reads the clips from the study's frame caches. A pair is left out when the
    validation split has none of its segments or the training split lacks one of its verbs;
    the table is empty without motion pairs (EK100's verbs have none)."""
    rows = []
    for a, b, name in pairs_of_kind(splits.verbs, "motion"):
        measure = MEASURES.get((splits.verbs[a], splits.verbs[b]))
        if measure is None:
            raise ValueError(f"motion_probe: the motion pair {name} has no measurement in MEASURES")
        chosen = {split: [s for s in segments if s.verb_class in (a, b)]
                  for split, segments in (("train", splits.train), ("val", splits.validation))}
        if not chosen["val"] or {s.verb_class for s in chosen["train"]} != {a, b}:
            continue  # nothing to score, or no sign to read
        scores = {}
        for split, segments in chosen.items():
            dataset = clip_dataset(data, split, num_frames=num_frames, crop_size=crop_size, train=False,
                                   segments=segments, frame_cache=frame_cache)
            scores[split] = (direction_scores(dataset, measure), np.array([s.verb_class for s in segments]),
                             [s.narration_id for s in segments])
        train, verbs, _ = scores["train"]
        sign = 1.0 if train[verbs == a].mean() >= train[verbs == b].mean() else -1.0  # a's side
        val, truth, ids = scores["val"]
        prediction = np.where(sign * val > 0, a, b)
        hits = (prediction == truth) & (val != 0)  # no motion measured: a tie, counted wrong
        ci = cluster_balanced_accuracy(hits.astype(np.float64), truth, (a, b),
                                       resampling_units(ids), confidence=confidence, resamples=resamples).scaled(100)
        rows.append({"pair": name, "measure": measure.__name__, "frames": num_frames,
                     "training segments": len(verbs), "segments": len(truth),
                     "positive means": splits.verbs[a] if sign > 0 else splits.verbs[b],
                     "accuracy": ci.estimate, "low": ci.low, "high": ci.high})
    return pd.DataFrame(rows)
