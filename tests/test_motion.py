"""The hand-made direction probes (`evitvid.study.motion`) on frames of known motion, on the tiny
synthetic set, and the sentence the book makes of them."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from evitvid import study
from evitvid.study import chapters, motion


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


class _Clips:
    """What `direction_scores` reads of a dataset: its length, each sample's indices, its frames
    (C x T x H x W) at given indices; here a texture moving right, or left for "left" segments."""

    def __init__(self, segments):
        self.segments, self.asked = segments, []
        self.video = np.stack([np.roll(_texture(), 2 * t, axis=1) for t in range(40)])

    def __len__(self):
        return len(self.segments)

    def indices(self, index):
        return np.array([5, 15, 25, 35])

    def frames(self, index, indices):
        self.asked.append((index, list(indices)))
        frames = self.video[indices if self.segments[index] == "right" else indices[::-1]]
        return np.repeat(frames[None], 3, axis=0)  # C x T x H x W


def test_direction_scores_measure_each_clip_at_its_indices():
    clips = _Clips(["right", "left"])
    scores = motion.direction_scores(clips, motion.pan_shift)
    assert clips.asked == [(0, [5, 15, 25, 35]), (1, [5, 15, 25, 35])]
    assert scores.tolist() == [60.0, -60.0]


def test_the_probe_reads_its_sign_on_training_and_scores_the_validation_videos(synth_tiny):
    data = study.resolve_data(str(synth_tiny))
    splits = study.read_splits(data)
    table = motion.motion_probe(data, splits, num_frames=4, crop_size=64, resamples=200)
    # the tiny set's validation has move-left and move-right segments but no rotation: one row
    assert table["pair"].tolist() == ["move-left / move-right"]
    row = table.iloc[0]
    assert (row["measure"], row["frames"], row["training segments"], row["segments"]) == ("pan_shift", 4, 3, 4)
    assert row["positive means"] == "move-left"  # the camera follows the item: the scene pans right
    assert row["low"] <= row["accuracy"] <= row["high"] and row["accuracy"] > 50


def test_every_motion_pair_has_a_measurement():
    pairs = [pair for pair, kind in zip(study.REVERSAL_PAIRS, study.verb_kinds([a for a, _ in study.REVERSAL_PAIRS]))
             if kind == "motion"]
    assert len(pairs) == 2 and set(motion.MEASURES) == set(pairs)


def test_a_motion_pair_without_a_measurement_is_an_error(synth_tiny, monkeypatch):
    data = study.resolve_data(str(synth_tiny))
    monkeypatch.setattr(motion, "MEASURES", {})
    with pytest.raises(ValueError, match=r"the motion pair rotate-clockwise / rotate-anticlockwise has no measurement"):
        motion.motion_probe(data, study.read_splits(data), num_frames=4, crop_size=64, resamples=10)


def _probe(low):
    return pd.DataFrame([{"pair": "move-left / move-right", "accuracy": low + 10, "low": low, "high": low + 20}])


def _models(low, high):
    return pd.DataFrame([{"pair": "move-left / move-right", "method": m, "accuracy": a, "low": lo, "high": h}
                         for m, a, lo, h in (("TSM", 50.0, 40.0, 60.0), ("3D", 55.0, low, high))])


@pytest.mark.parametrize("probe_low, low, high, stands, says", [
    (70.0, 45.0, 65.0, "not above chance", "no model reads it as well as the probe"),
    (70.0, 52.0, 65.0, "above chance and below the probe", "no model reads it as well as the probe"),
    (70.0, 52.0, 75.0, "within the probe's interval", "some model reads it about as well as the probe"),
    (70.0, 45.0, 75.0, "not above chance", "no model reads it as well as the probe"),  # chance first
    (45.0, 52.0, 60.0, "within the probe's interval", "the probe does not tell every motion pair apart")])
def test_the_probe_sentence_places_the_best_model_against_chance_and_the_probe(probe_low, low, high, stands, says):
    sentence = chapters.motion_numbers(_probe(probe_low), _models(low, high))["motion_probe_sentence"]
    assert sentence.startswith(f"move-left / move-right: the probe {probe_low + 10:.1f} % [{probe_low:.1f}, "
                               f"{probe_low + 20:.1f}], the best model (3D) 55.0 % [{low:.1f}, {high:.1f}], "
                               f"{stands}. So ")
    assert says in sentence


def test_the_probe_sentence_refuses_a_pair_no_model_scored():
    with pytest.raises(ValueError, match="no model's accuracy on move-left / move-right"):
        chapters.motion_numbers(_probe(70.0), _models(52.0, 60.0).assign(pair="take / put"))
    assert "no motion pairs" in chapters.motion_numbers(pd.DataFrame(), pd.DataFrame())["motion_probe_sentence"]


def _tests(*rows):
    return pd.DataFrame([{"comparison": c, "kind": kind, "difference": d, "low": lo, "high": hi, "mdd": 12.0,
                          "power": 0.8, "seeds_needed": need} for c, kind, d, lo, hi, need in rows])


def test_the_motion_study_sentence_says_what_an_interval_holding_zero_could_detect():
    recorded = SimpleNamespace(about={"params": {"num_frames": 8, "epochs": 8, "seeds": [0, 1, 2],
                                                 "dataset": "synth:motion"}}, location="book/recorded/x")
    pairs = _models(52.0, 60.0).assign(kind="motion", segments=40)
    splits = SimpleNamespace(validation=[None] * 100)
    tests = _tests(("TSM − FA", "motion", 8.0, 5.0, 11.0, None), ("3D − TSM", "motion", 9.4, -3.3, 22.1, 7),
                   ("3D − FA", "motion", -1.0, -9.0, 7.0, None), ("3D − FA", "end state", 1.0, -2.0, 4.0, 3))
    numbers = chapters.motion_study_numbers(recorded, pairs, tests, splits)
    assert numbers["motion_study_intro"].startswith("2 methods (TSM; 3D) at 8 frames per clip, 8 epochs and 3 seeds")
    assert "(40 of its 100 validation segments in the motion pairs)" in numbers["motion_study_intro"]
    sentence = numbers["motion_study_sentence"]
    assert sentence.startswith("move-left / move-right: at best 55.0 % [52.0, 60.0] (3D), above chance. ")
    assert "TSM − FA: +8.0 [+5.0, +11.0] points; 3D" in sentence  # an interval off zero: nothing added
    assert ("3D − TSM: +9.4 [-3.3, +22.1] points (these seeds and videos detect 12.0 points at 80 % power; one as "
            "large as this would take 7 seeds per method)") in sentence
    assert sentence.endswith("3D − FA: -1.0 [-9.0, +7.0] points (these seeds and videos detect 12.0 points at 80 % "
                             "power; no number of seeds would on these videos)")  # the end-state row is not read
