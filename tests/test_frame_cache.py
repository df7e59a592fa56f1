"""The frame cache: every segment frame decoded once, read back as the decoder gives it (resized)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evitvid.data import read_segments
from evitvid.data.frame_cache import FrameCache, _resized
from evitvid.data.video import VideoError, make_source
from conftest import tiny_copy


@pytest.fixture(scope="module")
def tiny(synth_tiny, tmp_path_factory):
    root = tiny_copy(synth_tiny, tmp_path_factory)
    segments = list(read_segments(root / "annotations" / "EPIC_100_validation.csv").values())
    return make_source(root / "videos", "chunked"), segments


@pytest.mark.parametrize("size", [64, 40])
def test_reads_equal_the_decoded_frames(tmp_path, tiny, size):
    source, segments = tiny
    cache = FrameCache.build(source, segments, tmp_path / "cache", size, workers=1)
    rng = np.random.default_rng(0)
    for seg in segments:
        start, stop = source.frame_range(seg)
        assert cache.frame_range(seg) == (start, stop)
        idx = np.sort(rng.integers(start, stop, size=5))
        want = _resized(source.read(seg, idx).numpy(), size)
        assert torch.equal(cache.read(seg, idx), torch.from_numpy(want)), seg.narration_id
    assert cache.read(segments[0], [start for start in [cache.frame_range(segments[0])[0]]]).shape[1:3] == (size, size)


def test_workers_build_the_same_bytes_and_the_cache_is_found_again(tmp_path, tiny):
    """One process on one thread (as the study builds it beside the image pretraining) or two
    worker processes: the same bytes."""
    source, segments = tiny
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = FrameCache.build(source, segments, tmp_path / "one", 40, workers=1)
    finally:
        torch.set_num_threads(threads)
    two = FrameCache.open_or_build(source, segments, tmp_path / "root", 40, workers=2)
    assert (one.folder / "frames.u8").read_bytes() == (two.folder / "frames.u8").read_bytes()
    again = FrameCache.open_or_build(source, segments, tmp_path / "root", 40)
    assert again.folder == two.folder and (two.folder / "frames.u8").stat().st_mtime_ns == \
        (again.folder / "frames.u8").stat().st_mtime_ns  # found, not rebuilt
    other = FrameCache.open_or_build(source, segments[:3], tmp_path / "root", 40, workers=1)
    assert other.folder != two.folder  # another key, another cache


def test_out_of_range_and_unknown_segments_are_named(tmp_path, tiny):
    source, segments = tiny
    cache = FrameCache.build(source, segments[:2], tmp_path / "cache", 40, workers=1)
    start, stop = cache.frame_range(segments[0])
    with pytest.raises(VideoError, match="outside the cached segment"):
        cache.read(segments[0], [stop])
    with pytest.raises(VideoError, match="not in this frame cache"):
        cache.read(segments[5], [0])


def test_a_dataset_reads_the_cache_in_worker_processes(tmp_path, tiny):
    from torch.utils.data import DataLoader

    from evitvid.data import EK100Dataset, collate
    source, segments = tiny
    cache = FrameCache.build(source, segments, tmp_path / "cache", 40, workers=1)
    ds = EK100Dataset(segments, cache, num_frames=4, crop_size=32, train=True, seed=0)
    direct = [ds[i]["video"] for i in range(4)]
    batches = list(DataLoader(torch.utils.data.Subset(ds, range(4)), batch_size=2, num_workers=2, collate_fn=collate))
    assert torch.equal(torch.cat([b["video"] for b in batches]), torch.stack(direct))
