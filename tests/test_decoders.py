"""evitvid.data.decoders: decord and PyAV behind one interface, with decord's frame numbering."""
from __future__ import annotations

import gc
import logging
import multiprocessing
import pickle
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import frame_ids, make_frames, write_video

from evitvid.data import decoders
from evitvid.data.decoders import (
    BACKENDS,
    DecordDecoder,
    PyAVDecoder,
    VideoError,
    VideoNotFoundError,
    open_decoder,
)

INDEX_LISTS = {
    "all, sorted": list(range(75)),
    "reversed": list(range(74, -1, -1)),
    "unsorted, repeated": [74, 0, 11, 12, 13, 13, 36, 35, 10, 9, 74, 0],
    "one": [40],
    "random": np.random.default_rng(0).integers(0, 75, 40).tolist(),
}


def write_gray_video(path: Path, count: int, x264_params: str) -> Path:
    """Lossy H.264 with B-frames (x264 allows none at qp=0): frame i is uniform gray 3 * i."""
    frames = np.repeat(np.arange(count, dtype=np.uint8)[:, None, None, None] * 3, 48 * 64 * 3).reshape(count, 48, 64, 3)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"crf": "5", "preset": "medium", "x264-params": x264_params}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def gray_ids(frames: np.ndarray) -> np.ndarray:
    return np.round(frames.reshape(len(frames), -1).mean(axis=1) / 3).astype(int)


@pytest.fixture(scope="module")
def lossless(tmp_path_factory):
    """75 lossless frames (one keyframe: x264 at qp=0)."""
    return write_video(tmp_path_factory.mktemp("lossless") / "clip.mp4", make_frames(0, 75))


@pytest.fixture(scope="module")
def bframes(tmp_path_factory):
    """Closed GOPs of 12 frames with 2 B-frames: pts order differs from decode order, 7 keyframes."""
    return write_gray_video(tmp_path_factory.mktemp("bframes") / "closed.mp4", 75,
                            "keyint=12:min-keyint=12:scenecut=0:bframes=2:b-adapt=0")


@pytest.fixture(scope="module")
def open_gop(tmp_path_factory):
    """As `bframes`, with open GOPs: the B-frames shown just before a keyframe are decoded after it."""
    return write_gray_video(tmp_path_factory.mktemp("open_gop") / "open.mp4", 75,
                            "keyint=12:min-keyint=12:scenecut=0:bframes=2:b-adapt=0:open-gop=1")


@pytest.fixture
def fresh_fallback(monkeypatch):
    """Forget which files decord could not open and whether the fallback warning was given."""
    monkeypatch.setattr(decoders, "_DECORD_CANNOT", {})
    monkeypatch.setattr(decoders, "_fallback_warned", False)


# ------------------------------------------------------------ frame numbering


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("name", list(INDEX_LISTS))
def test_lossless_frames_are_exact(lossless, backend, name):
    indices = INDEX_LISTS[name]
    decoder = open_decoder(lossless, backend)
    assert len(decoder) == 75 and decoder.fps == pytest.approx(30.0)
    frames = decoder.get_batch(indices)
    assert frames.dtype == np.uint8 and frames.shape == (len(indices), 48, 64, 3)
    assert np.array_equal(frames, make_frames(0, 75)[indices])


@pytest.mark.parametrize("name", list(INDEX_LISTS))
def test_b_frames_and_keyframes_same_frames_from_both_backends(bframes, name):
    indices = INDEX_LISTS[name]
    pyav, dec = open_decoder(bframes, "pyav"), open_decoder(bframes, "decord")
    assert len(pyav) == len(dec) == 75
    assert pyav._index["keys"].tolist() == list(range(0, 75, 12))  # seeks happen
    frames = pyav.get_batch(indices)
    assert gray_ids(frames).tolist() == indices
    assert np.array_equal(frames, dec.get_batch(indices))


@pytest.mark.parametrize("name", list(INDEX_LISTS))
def test_open_gop_frames_by_presentation_order(open_gop, name):
    # decord returns wrong frames here for non-sequential reads (off by up to 6 on this clip:
    # it locates keyframes by decode-order packet count); PyAV's seek-and-pick-by-pts does not.
    indices = INDEX_LISTS[name]
    assert gray_ids(open_decoder(open_gop, "pyav").get_batch(indices)).tolist() == indices


def test_empty_batch_and_repr(lossless):
    for backend in ("decord", "pyav"):
        decoder = open_decoder(lossless, backend)
        assert decoder.get_batch([]).shape == (0, 48, 64, 3)
        assert "75 frames at 30 fps, open" in repr(decoder)


def test_close_releases_and_a_later_read_reopens(lossless):
    for cls in (DecordDecoder, PyAVDecoder):
        with cls(lossless) as decoder:
            assert frame_ids(decoder.get_batch([3])).tolist() == [3]
        assert decoder._native is None and "closed" in repr(decoder)
        assert frame_ids(decoder.get_batch([7, 2])).tolist() == [7, 2]
        decoder.close()


# ------------------------------------------------------------ the shared real clips


@pytest.mark.parametrize("name, count, shape", [
    ("kinetics_arm_wrestling.mp4", 280, (256, 340)),
    ("kinetics_flipping_pancake.mkv", 310, (240, 426)),
    ("rotated_90.mov", 3, (568, 320)),  # stored 568x320 with a -90 degree display matrix: portrait
])
def test_shared_clips_same_frames_from_both_backends(shared_dir, name, count, shape):
    path = shared_dir / "videos" / name
    dec, pyav = open_decoder(path, "decord"), open_decoder(path, "pyav")
    assert len(dec) == len(pyav) == count and pyav.fps == dec.fps
    indices = sorted(set(np.linspace(0, count - 1, 16).round().astype(int).tolist())) + [count - 1, 0, count // 2]
    a, b = dec.get_batch(indices), pyav.get_batch(indices)
    assert a.shape == b.shape == (len(indices), *shape, 3)
    # Measured: identical, every frame of all three clips (max difference 0). Both convert with
    # swscale's unscaled YUV 4:2:0 -> RGB24 path, bilinear flags, the frame's colour matrix
    # (BT.601 when unspecified, BT.709 for rotated_90.mov), at the stream's size; rotation by
    # whole quarter turns is exact. A difference would come from another colour matrix or
    # range, other swscale flags (ACCURATE_RND alone moves pixels by up to 40), or scaling.
    assert np.array_equal(a, b)


def test_corrupt_clip_raises_naming_the_file_under_every_backend(shared_dir):
    path = shared_dir / "videos" / "corrupted.mp4"
    for backend in BACKENDS:
        decoder = open_decoder(path, backend)
        assert len(decoder) == 50 and decoder.get_batch([0]).shape == (1, 720, 1280, 3)
        with pytest.raises(VideoError, match=r"corrupted\.mp4, frames \[0, 40\].*decoding failed") as info:
            decoder.get_batch([0, 40])
        assert_plain(str(info.value))
        assert decoder._native is None  # not trusted after the error: reopened on demand
        assert decoder.get_batch([0]).shape[0] == 1


def assert_plain(message: str) -> None:
    """One line, no C++ file names or check expressions, no FFmpeg error numbers."""
    assert "\n" not in message and len(message) < 400
    for fragment in (".cc:", "Check failed", "Errno", "vs. 0", "Stack trace", "avcodec_"):
        assert fragment not in message, message


# ------------------------------------------------------------ files decord cannot open


def av1_encoder() -> str:
    for name in ("libsvtav1", "libaom-av1", "librav1e"):
        if name in av.codecs_available:
            return name
    pytest.skip("no AV1 encoder in this PyAV build")


@pytest.fixture(scope="module")
def av1_and_gif(tmp_path_factory):
    if not {"libdav1d", "libaom-av1"} & set(av.codecs_available):
        pytest.skip("no AV1 decoder in this PyAV build")
    folder = tmp_path_factory.mktemp("formats")
    frames = make_frames(0, 12, 64, 64)
    paths = []
    for name, codec, pix_fmt, options in [("clip.mp4", av1_encoder(), "yuv420p", {"preset": "10"}),
                                          ("clip.gif", "gif", "rgb8", {})]:
        with av.open(str(folder / name), "w") as container:
            stream = container.add_stream(codec, rate=10)
            stream.width, stream.height, stream.pix_fmt, stream.options = 64, 64, pix_fmt, options
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        paths.append(folder / name)
    return paths


def test_av1_and_gif_read_through_pyav_with_one_warning(av1_and_gif, fresh_fallback, caplog):
    av1, gif = av1_and_gif
    with caplog.at_level(logging.DEBUG, logger="evitvid.data.decoders"):
        for path in (av1, gif, av1):
            decoder = open_decoder(path)
            assert isinstance(decoder, PyAVDecoder) and len(decoder) == 12
            frames = decoder.get_batch([11, 0, 5, 5])
            assert frames.shape == (4, 64, 64, 3)
            assert np.array_equal(frames, open_decoder(path, "pyav").get_batch([11, 0, 5, 5]))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].getMessage() == (f"decord cannot open {av1} (no decoder for its video codec); "
                                        "decoding it and other such files with PyAV")
    assert sum("decord cannot open" in r.getMessage() for r in caplog.records) == 2  # the GIF at debug
    # AV1 is lossy, the GIF a 3-3-2 palette: the frames are near, in order
    red = open_decoder(av1, "pyav").get_batch(range(12))[:, 32, 32, 0].astype(int)
    assert np.abs(red - np.arange(12)).max() <= 3


def test_decord_alone_raises_a_plain_error(av1_and_gif):
    av1, gif = av1_and_gif
    with pytest.raises(VideoError,
                       match=r"clip\.mp4: cannot open with decord: no decoder for its video codec$") as info:
        open_decoder(av1, "decord")
    assert_plain(str(info.value))
    with pytest.raises(VideoError, match=r"clip\.gif: cannot open with decord: cannot count its frames") as info:
        open_decoder(gif, "decord")
    assert_plain(str(info.value))


def test_neither_backend_opens_junk(tmp_path, fresh_fallback):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(VideoError) as info:
        open_decoder(junk)
    assert str(info.value) == (f"{junk}: cannot open with decord (not a video file decord can read) "
                               "or PyAV (invalid data found when processing input)")
    with pytest.raises(VideoError, match=r"junk\.mp4: cannot open with PyAV: invalid data"):
        open_decoder(junk, "pyav")
    with pytest.raises(VideoNotFoundError, match="missing.mp4: file not found"):
        open_decoder(tmp_path / "missing.mp4", "pyav")


def test_unknown_backend_and_index_out_of_range(lossless):
    with pytest.raises(ValueError, match=r"unknown video backend 'ffmpeg'; valid: auto, decord, pyav"):
        open_decoder(lossless, "ffmpeg")
    for backend in ("decord", "pyav"):
        with pytest.raises(VideoError, match=r"frames \[3, 75\] \(2 frames\): frame index out of range, "
                                             r"the file has 75 frames"):
            open_decoder(lossless, backend).get_batch([3, 75])


def test_video_error_pickles():
    error = VideoNotFoundError("/v/P01_01.MP4", "file not found", indices=[1, 2], segment="P01_01_3")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is VideoNotFoundError and str(copy) == str(error) and copy.indices == [1, 2]


# ------------------------------------------------------------ fork safety


def _collect_and_read(path, backend, queue):
    frames = open_decoder(path, backend).get_batch([5, 1])  # a decord decoder starts a thread here
    gc.collect()  # frees, here in the child, garbage the parent left: no native decoder may die here
    queue.put(frame_ids(frames).tolist())


def _run_in_fork(target, *args) -> list[int]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung")
    assert child.exitcode == 0
    return queue.get(timeout=5)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_garbage_decoders_are_harmless_in_a_forked_child(lossless, backend):
    """Issue item 4: a reader the parent no longer uses but that is still alive (an exception's
    traceback in a reference cycle keeps it) got freed by the child's garbage collector, and
    decord's destructor blocked forever there, waiting for its decoder thread."""
    enabled = gc.isenabled()
    gc.disable()  # keep the garbage until the fork, as a collection that happens not to run would
    try:
        for keep_wrapper in (True, False):
            decoder = open_decoder(lossless, backend)
            decoder.get_batch([3])
            cycle: list = [decoder._native, decoder if keep_wrapper else None]
            cycle.append(cycle)
            if not keep_wrapper:
                decoder.close()  # closes the native even though the cycle still holds it
            del cycle, decoder
        assert _run_in_fork(_collect_and_read, lossless, backend) == [5, 1]
    finally:
        if enabled:
            gc.enable()


def _read_inherited(decoder, queue):
    assert decoder._native is None  # set aside after the fork
    gc.collect()
    queue.put(frame_ids(decoder.get_batch([5, 1])).tolist())  # reopened in the child


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_a_decoder_busy_at_fork_is_set_aside_in_the_child(lossless, backend):
    decoder = open_decoder(lossless, backend)
    decoder.get_batch([3])
    native = decoder._native
    with decoder._lock:  # as if another thread were reading: the parent cannot close it
        assert _run_in_fork(_read_inherited, decoder) == [5, 1]
    assert decoder._native is native  # the parent's is untouched
    assert frame_ids(decoder.get_batch([2])).tolist() == [2]


def test_idle_decoders_are_closed_before_a_fork_and_reopen(lossless):
    decoder = open_decoder(lossless, "pyav")
    decoder.get_batch([3])
    assert _run_in_fork(_collect_and_read, lossless, "pyav") == [5, 1]
    assert decoder._native is None
    assert frame_ids(decoder.get_batch([4])).tolist() == [4]
