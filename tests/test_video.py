"""evitvid.data.video: decoding given frame indices in the chunked, whole and frame-folder layouts."""
from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch
from conftest import frame_ids, make_frames, write_video

from evitvid.data.annotations import Segment, read_segments, to_file_frames
from evitvid.data.video import (
    ChunkedVideos,
    FrameFolders,
    VideoError,
    VideoNotFoundError,
    WholeVideos,
    make_source,
    read_frames,
)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", make_frames(0, 40))


def test_read_frames_is_lossless_at_the_given_indices(clip_path):
    written = make_frames(0, 40)
    indices = [0, 1, 17, 39, 5, 5]  # any order, repeats allowed
    frames = read_frames(clip_path, indices)
    assert frames.dtype == torch.uint8 and frames.shape == (6, 48, 64, 3)
    assert np.array_equal(frames.numpy(), written[indices])


def test_read_frames_errors_name_the_file(clip_path, tmp_path):
    with pytest.raises(VideoError, match=r"clip\.mp4, frames \[3, 40\] \(2 frames\): frame index out of range"):
        read_frames(clip_path, [3, 40])
    with pytest.raises(VideoNotFoundError, match="missing.mp4") as info:
        read_frames(tmp_path / "missing.mp4", [0])
    assert isinstance(info.value, FileNotFoundError)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(VideoError, match=r"junk\.mp4: cannot open"):
        read_frames(junk, [0])


@pytest.fixture(scope="module")
def segments(tree):
    return read_segments(tree.train_csv)


def test_chunked_segment_inside_one_chunk(tree, segments):
    source = ChunkedVideos(tree.chunked, chunk_seconds=1)
    seg = segments["P01_01_0"]
    start, stop = source.frame_range(seg)
    assert (start, stop) == (3, 27)
    frames = source.read(seg, np.arange(start, stop))
    assert frame_ids(frames).tolist() == list(range(3, 27))
    assert np.array_equal(frames.numpy(), make_frames(3, 24))


def test_chunked_segment_across_a_boundary_reads_both_chunks_in_order(tree, segments):
    source = ChunkedVideos(tree.chunked, chunk_seconds=1)
    seg = segments["P01_01_1"]
    start, stop = source.frame_range(seg)
    assert start < 30 <= stop - 1  # spans chunks 0 and 1
    indices = np.array([start, 28, 29, 30, 31, stop - 1])
    frames = source.read(seg, indices)
    assert frame_ids(frames).tolist() == indices.tolist()
    assert np.array_equal(frames.numpy(), make_frames(0, 75)[indices])
    unsorted = np.array([31, 29, 30, 28])
    assert frame_ids(source.read(seg, unsorted)).tolist() == unsorted.tolist()


def test_chunked_last_shorter_chunk_and_clamp_at_the_end(tree, segments):
    source = ChunkedVideos(tree.chunked, chunk_seconds=1)
    assert source.num_chunks("P01_01") == 3 and source.num_frames("P01_01") == 75
    seg = segments["P01_01_2"]  # 1.5 s .. 2.5 s: frames 45..74, the last is the video's last
    assert source.frame_range(seg) == (45, 75)
    assert frame_ids(source.read(seg, [45, 59, 60, 74])).tolist() == [45, 59, 60, 74]
    seg = segments["P01_01_3"]  # stops one frame after the end: that index is clamped
    start, stop = source.frame_range(seg)
    assert stop == 76
    assert frame_ids(source.read(seg, [start, 74, 75])).tolist() == [start, 74, 74]
    # P02_03 has a 10-frame last chunk
    assert frame_ids(source.read(segments["P02_03_0"], [0, 29, 30, 39])).tolist() == [0, 29, 30, 39]


def test_chunked_far_past_the_end_is_an_error(tree):
    source = ChunkedVideos(tree.chunked, chunk_seconds=1, max_overrun=0.5)
    assert frame_ids(source.read("P01_01", [74 + 15])).tolist() == [74]  # 0.5 s over: clamped
    with pytest.raises(VideoError, match="past the end of the video"):
        source.read("P01_01", [74 + 16])


def test_chunked_errors_name_file_and_segment(tree, tmp_path):
    source = ChunkedVideos(tmp_path, chunk_seconds=1)
    seg = Segment("P09_01_4", "P09", "P09_01", None, 0.0, 1.0, 0, 60)
    with pytest.raises(VideoNotFoundError, match=r"P09/P09_01\.MP4 \(segment P09_01_4\): chunk folder not found"):
        source.read(seg, [0])
    # a gap in the chunks
    folder = tmp_path / "P01" / "P01_01.MP4"
    shutil.copytree(tree.chunked / "P01" / "P01_01.MP4", folder)
    (folder / "1.MP4").unlink()
    with pytest.raises(VideoError, match=r"missing \[1\]"):
        source.read("P01_01", [0])
    # a short chunk that is not the last: the chunking differs from the one assumed
    (folder / "1.MP4").write_bytes((tree.chunked / "P02" / "P02_03.MP4" / "1.MP4").read_bytes())  # 10 frames
    source = ChunkedVideos(tmp_path, chunk_seconds=1)
    with pytest.raises(VideoError, match=r"1\.MP4.*chunk has 10 frames, expected 30"):
        source.read("P01_01", [45])
    # a corrupt chunk
    (folder / "0.MP4").write_bytes(b"\x00" * 4096)
    with pytest.raises(VideoError, match=r"0\.MP4 \(segment P01_01_9\): cannot open"):
        source.read(Segment("P01_01_9", "P01", "P01_01", None, 0.0, 1.0, 0, 60), [0])


def test_whole_videos_match_chunked(tree, segments):
    whole = WholeVideos(tree.whole)
    chunked = ChunkedVideos(tree.chunked, chunk_seconds=1)
    assert whole.file_fps("P01_01") == pytest.approx(30.0)
    for seg in segments.values():
        start, stop = whole.frame_range(seg)
        assert (start, stop) == chunked.frame_range(seg) == to_file_frames(seg, 30)
        indices = np.linspace(start, stop - 1, 5).astype(int)
        assert torch.equal(whole.read(seg, indices), chunked.read(seg, indices))
    assert whole.num_frames("P02_03") == 40
    with pytest.raises(VideoNotFoundError, match=r"P07/videos/P07_01\.MP4"):
        whole.read("P07_01", [0])


def test_frame_folders_round_trip(tree, segments, tmp_path):
    chunked = ChunkedVideos(tree.chunked, chunk_seconds=1)
    folders = FrameFolders(tmp_path)
    seg = segments["P01_01_1"]
    indices = [24, 30, 40]
    folders.write(seg, chunked.read(seg, indices), indices)
    assert folders.path(seg) == tmp_path / "P01" / "P01_01" / "P01_01_1"
    assert folders.is_complete(seg, 3) and not folders.is_complete(seg, 4)
    assert folders.frame_range(seg) == (0, 3)
    frames = folders.read("P01_01_1", [2, 0, 0])  # by narration_id, positions among the stored frames
    assert frames.shape == (3, 48, 64, 3)
    red = frames[:, 24, 32, 0].int()  # JPEG is lossy: near the written values
    assert torch.all((red - torch.tensor([40, 24, 24])).abs() <= 3)
    assert not list(folders.path(seg).glob("*.tmp"))
    with pytest.raises(VideoNotFoundError, match=r"00003\.jpg \(segment P01_01_1\)"):
        folders.read(seg, [3])
    with pytest.raises(VideoNotFoundError, match=r"P01_01_0.*not extracted"):
        folders.frame_range(segments["P01_01_0"])


def test_sources_pickle_without_readers(tree):
    source = ChunkedVideos(tree.chunked, chunk_seconds=1)
    source.read("P01_01", [0, 40])
    assert source._readers._open  # readers are cached in this process
    copy = pickle.loads(pickle.dumps(source))
    assert not copy._readers._open
    assert frame_ids(copy.read("P01_01", [40])).tolist() == [40]


def test_make_source_and_bad_config(tree):
    assert isinstance(make_source(tree.chunked, "chunked", chunk_seconds=1), ChunkedVideos)
    assert isinstance(make_source(tree.whole, "whole"), WholeVideos)
    with pytest.raises(ValueError, match="chunked, whole, frames"):
        make_source(tree.chunked, "folders")
    with pytest.raises(TypeError):
        make_source(tree.chunked, "chunked", chunk_len=1)
    with pytest.raises(ValueError, match="whole number of frames"):
        ChunkedVideos(tree.chunked, chunk_seconds=1, fps=29.97)


# ------------------------------------------------------------ the real clips


@pytest.mark.parametrize("name, count, shape", [
    ("kinetics_arm_wrestling.mp4", 280, (256, 340)),
    ("kinetics_flipping_pancake.mkv", 310, (240, 426)),
])
def test_real_clips(shared_dir, name, count, shape):
    path = shared_dir / "videos" / name
    frames = read_frames(path, [0, count // 2, count - 1])
    assert frames.shape == (3, *shape, 3) and frames.dtype == torch.uint8
    assert frames.float().std() > 10  # real content, not blank
    assert not torch.equal(frames[0], frames[2])
    with pytest.raises(VideoError, match=name):
        read_frames(path, [count])


def test_real_rotated_clip_comes_out_portrait(shared_dir):
    frames = read_frames(shared_dir / "videos" / "rotated_90.mov", [0, 1, 2])
    assert frames.shape[0] == 3 and frames.shape[1] > frames.shape[2]


def test_real_corrupt_clip_raises_naming_the_file(shared_dir, tmp_path):
    path = shared_dir / "videos" / "corrupted.mp4"
    assert read_frames(path, [0]).shape[0] == 1  # opens, frame 0 decodes
    with pytest.raises(VideoError, match=r"corrupted\.mp4, frames \[0, 40\].*decoding failed") as info:
        read_frames(path, [0, 40])
    assert info.value.indices == [0, 40] and info.value.path == str(path)
    # the same through a layout, which adds the segment
    whole = tmp_path / "P05" / "videos" / "P05_01.MP4"
    whole.parent.mkdir(parents=True)
    shutil.copy(path, whole)
    seg = Segment("P05_01_3", "P05", "P05_01", None, 1.0, 4.5, 60, 270)
    with pytest.raises(VideoError, match=r"P05_01\.MP4 \(segment P05_01_3\).*decoding failed"):
        WholeVideos(tmp_path).read(seg, [10, 30])


def _read_in_child(source, queue):
    queue.put(frame_ids(source.read("P01_01", [5, 35])).tolist())


def test_a_source_used_before_fork_works_in_the_child(tree):
    """decord readers do not survive fork (destroying one in the child hangs): none may be inherited."""
    import multiprocessing

    source = ChunkedVideos(tree.chunked, chunk_seconds=1)
    assert frame_ids(source.read("P01_01", [1, 31])).tolist() == [1, 31]  # readers open in this process
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_child, args=(source, queue))
    child.start()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
        pytest.fail("reading in a forked child hung")
    assert child.exitcode == 0 and queue.get(timeout=5) == [5, 35]
    assert frame_ids(source.read("P01_01", [2])).tolist() == [2]  # the parent reopens on demand
