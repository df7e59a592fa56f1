"""evitvid.data.sampling: TSN and dense samplers as pure functions."""
from __future__ import annotations

import numpy as np
import pytest

from evitvid.data.sampling import dense_indices, get_sampler, tsn_indices

SAMPLERS = {"tsn": tsn_indices, "dense": dense_indices}


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("train", [False, True])
def test_property_sorted_inside_and_of_length_n(name, train):
    sampler = SAMPLERS[name]
    cases = np.random.default_rng(1234)
    rng = np.random.default_rng(7) if train else None
    for _ in range(3000):
        start = int(cases.integers(0, 100_000))
        stop = start + int(cases.choice([1, 2, 3, 7, 15, 16, 17, 31, 64, 500, 14_857]))
        n = int(cases.choice([1, 2, 8, 16, 32]))
        idx = sampler(start, stop, n, rng)
        assert idx.shape == (n,) and idx.dtype.kind == "i"
        assert np.all(np.diff(idx) >= 0), (start, stop, n, idx)
        assert idx.min() >= start and idx.max() < stop, (start, stop, n, idx)


def test_tsn_eval_midpoints():
    assert tsn_indices(0, 160, 16).tolist() == list(range(5, 160, 10))
    assert tsn_indices(10, 20, 4).tolist() == [11, 13, 16, 18]  # floor((2i + 1) * 10 / 8)
    assert tsn_indices(3, 4, 1).tolist() == [3]
    assert tsn_indices(0, 100, 16, None).tolist() == tsn_indices(0, 100, 16).tolist()


def test_tsn_train_one_frame_in_each_part_and_seeded():
    start, stop, n = 40, 140, 8
    draws = np.stack([tsn_indices(start, stop, n, np.random.default_rng(seed)) for seed in range(200)])
    width = (stop - start) / n
    for i in range(n):
        assert draws[:, i].min() >= start + np.floor(i * width)
        assert draws[:, i].max() < start + (i + 1) * width
        assert len(np.unique(draws[:, i])) > 5  # it does move within its part
    again = tsn_indices(start, stop, n, np.random.default_rng(3))
    assert np.array_equal(again, draws[3])


def test_short_segments_repeat_frames_inside():
    idx = tsn_indices(5, 8, 8)
    assert set(idx.tolist()) == {5, 6, 7} and len(idx) == 8
    dense = dense_indices(5, 8, 8, np.random.default_rng(0))
    assert set(dense.tolist()) == {5, 6, 7}
    assert dense.tolist() == dense_indices(5, 8, 8).tolist()


def test_dense_eval_centred_and_train_random():
    assert dense_indices(0, 100, 8, stride=2).tolist() == list(range(42, 57, 2))  # (100 - 15) // 2 = 42
    starts = {int(dense_indices(0, 100, 8, np.random.default_rng(s), stride=2)[0]) for s in range(100)}
    assert min(starts) >= 0 and max(starts) <= 85 and len(starts) > 30
    clip = dense_indices(10, 200, 4, np.random.default_rng(1), stride=5)
    assert np.all(np.diff(clip) == 5)


def test_dense_eval_places_its_clip_at_an_offset_of_the_room_left():
    """Several clips of a multi-clip evaluation: offset 0 starts at the segment's start, 1 ends at
    its end, 0.5 is the centred clip; training ignores the offset."""
    room = 100 - 15  # a span of (8 - 1) * 2 + 1 frames
    assert [int(dense_indices(0, 100, 8, stride=2, offset=o)[0]) for o in (0, 0.125, 0.5, 0.875, 1)] == [
        0, room // 8, room // 2, room * 7 // 8, room]
    assert dense_indices(0, 100, 8, stride=2, offset=0.5).tolist() == dense_indices(0, 100, 8, stride=2).tolist()
    rng = np.random.default_rng(3)
    assert dense_indices(0, 100, 8, np.random.default_rng(3), stride=2, offset=0).tolist() == dense_indices(
        0, 100, 8, rng, stride=2).tolist()
    with pytest.raises(ValueError, match=r"offset must be in \[0, 1\], got 1.5"):
        dense_indices(0, 100, 8, offset=1.5)


def test_dense_stride_shrinks_to_fit():
    idx = dense_indices(0, 10, 4, stride=8)  # span 25 > 10: stride (10 - 1) // 3 = 3
    assert idx.tolist() == [0, 3, 6, 9]


def test_get_sampler_and_invalid_input():
    assert get_sampler("tsn") is tsn_indices
    assert get_sampler("dense", stride=4)(0, 100, 4).tolist() == [43, 47, 51, 55]
    with pytest.raises(ValueError, match="tsn, dense"):
        get_sampler("uniform")
    with pytest.raises(TypeError, match="stride"):
        get_sampler("tsn", stride=2)
    with pytest.raises(ValueError):
        tsn_indices(10, 10, 4)
    with pytest.raises(ValueError):
        tsn_indices(0, 10, 0)
    with pytest.raises(ValueError):
        dense_indices(0, 10, 2, stride=0)


def test_tsn_evaluation_offset_picks_other_positions_in_each_part():
    assert tsn_indices(0, 80, 4).tolist() == [10, 30, 50, 70]  # midpoints, as before
    assert tsn_indices(0, 80, 4, offset=0.5).tolist() == [10, 30, 50, 70]
    assert tsn_indices(0, 80, 4, offset=0.0).tolist() == [0, 20, 40, 60]
    assert tsn_indices(0, 80, 4, offset=0.125).tolist() == [2, 22, 42, 62]
    assert tsn_indices(100, 101, 1, offset=0.875).tolist() == [100]
    with pytest.raises(ValueError, match="offset"):
        tsn_indices(0, 10, 2, offset=1.0)
