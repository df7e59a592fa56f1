"""The hand-made direction probes (`evitvid.study.motion`) on frames of known motion."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from evitvid.study import motion


def _texture(size: int = 48, seed: int = 0) -> np.ndarray:
    return ndimage.gaussian_filter(np.random.default_rng(seed).random((size, size)), 2.0) * 255


def _bar(theta: float, size: int = 48) -> np.ndarray:
    """A bar with a knob at one end through the middle, pointing at `theta` radians clockwise
    on screen from the right (rows down)."""
    rows, cols = np.mgrid[0:size, 0:size] - (size - 1) / 2
    along = cols * np.cos(theta) + rows * np.sin(theta)
    across = -cols * np.sin(theta) + rows * np.cos(theta)
    bar = (np.abs(along) < 16) & (np.abs(across) < 3)
    knob = (np.hypot(along - 14, across) < 6)
    return 40 + 200 * ndimage.gaussian_filter((bar | knob).astype(float), 1.0)


@pytest.mark.parametrize("step", [3, -2])
def test_pan_shift_adds_the_whole_pixel_shifts_between_frames(step):
    frames = np.stack([np.roll(_texture(), step * t, axis=1) for t in range(4)])
    assert motion.pan_shift(frames) == 3 * step
    rgb = np.repeat(frames[..., None], 3, axis=-1)  # RGB reads as its grey
    assert motion.pan_shift(rgb) == 3 * step


@pytest.mark.parametrize("turn", [+1, -1])
def test_rotation_has_the_sign_of_the_turn_on_screen(turn):
    frames = np.stack([_bar(turn * np.radians(8) * t) for t in range(4)])
    assert np.sign(motion.rotation(frames)) == turn
    assert motion.rotation(frames[:1].repeat(3, axis=0)) == 0  # nothing changes: no turn


def test_a_probe_refuses_a_single_frame_naming_the_shape():
    with pytest.raises(ValueError, match=r"T >= 2, got shape \(1, 8, 8\)"):
        motion.pan_shift(np.zeros((1, 8, 8)))


def test_direction_scores_read_the_middle_of_each_part_of_a_segment():
    asked = []
    video = np.stack([np.roll(_texture(), 2 * t, axis=1) for t in range(40)])

    def read(segment, indices):
        asked.append((segment, indices.tolist()))
        return video[indices] * (1 if segment == "right" else 0) + video[indices[::-1]] * (segment == "left")

    scores = motion.direction_scores(read, ["right", "left"], lambda s: (0, 40), motion.pan_shift, frames=4)
    assert asked[0] == ("right", [5, 15, 25, 35])
    assert scores.tolist() == [60.0, -60.0]
