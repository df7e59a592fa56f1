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

`direction_scores` applies one of them to segments' frames sampled as TSN samples a clip at
evaluation (the middle of each of `frames` equal parts). A probe that tells a pair's verbs
apart well above chance shows that the direction is in the pixels a model sees; if no model
learns the pair, the failure is the models' at this data size and budget, not the testbed's.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from ..data.sampling import tsn_indices

__all__ = ["pan_shift", "rotation", "direction_scores"]


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


def direction_scores(read: Callable[[object, np.ndarray], np.ndarray], segments: Sequence,
                     frame_range: Callable[[object], tuple[int, int]], measure: Callable[[np.ndarray], float], *,
                     frames: int = 4) -> np.ndarray:
    """`measure` (`pan_shift` or `rotation`) of each segment's frames at the middle of each of
    `frames` equal parts of its [start, stop) range (`tsn_indices`, as evaluation samples):
    `read(segment, indices)` returns them (T x H x W x 3), as `FrameCache.read` does."""
    return np.asarray([measure(np.asarray(read(segment, tsn_indices(*frame_range(segment), frames))))
                       for segment in segments], dtype=np.float64)
