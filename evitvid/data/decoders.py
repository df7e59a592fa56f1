"""Video decoders behind one small interface: decord first, PyAV where decord cannot open a file.

`open_decoder(path, backend="auto", num_threads=1) -> Decoder`; a `Decoder` has `len(decoder)`
(frames), `fps` (the stream's average frame rate) and `get_batch(indices) -> (T, H, W, 3)` uint8.
Frame i is the i-th frame in presentation order, as in decord (`VideoReader` sorts the stream's
packets by pts); indices may come in any order and repeat. `evitvid.data.video` reads the
EK100 layouts through this interface only.

* `DecordDecoder` wraps `decord.VideoReader`, decoding with decord's own FFmpeg (4.1): no AV1
  decoder and no GIF (its frame count needs a duration GIFs lack).
* `PyAVDecoder` decodes with PyAV's FFmpeg (AV1 through dav1d, GIF, ...). Opening demuxes the
  file once, without decoding, to list every frame's pts and the keyframes; a read seeks to the
  last keyframe at or before each wanted frame, decodes forward and picks frames by pts. Frames
  are converted to RGB as decord converts them (swscale, bilinear, the frame's colorspace, to
  the stream's size) and the display-matrix rotation is applied as decord applies it: on the
  shared test clips the two backends give identical pixels.
* `backend="auto"` (the default) opens with decord and falls back to PyAV when decord cannot
  open a file (logged once per process, remembered per file); a file neither can open raises
  one `VideoError` naming both reasons.

Errors are `VideoError`s naming the file (and the frames when known) with a one-line reason:
decord's C++ check messages and FFmpeg error codes are translated, never passed through.

Fork safety: a native decoder must never be used or destroyed in a forked child. A decord
reader owns a decoder thread that the child does not have; destroying the child's copy blocks
forever, in `pthread_cond_destroy` (the thread was waiting on its packet queue at the fork) or
in `std::thread::join` (the thread had ended, unjoined, and a thread the child started since
reuses its slot). The child's garbage collector does exactly that to a reader the parent left
alive in a reference cycle (an exception's traceback holding decord's frames, say), which is
how DataLoader workers, or the fork test after a caught decode error, could hang. Hence:
a native decoder is freed explicitly (`close()`, after a failed read, when its `Decoder` is
collected), never left to whatever else references it; every `Decoder` is tracked weakly, the
parent closes each idle one just before a fork (it reopens on demand), and the child sets
aside, alive and untouched for good, any native decoder still open (one busy in another
thread). PyAV decoders get the same treatment (FFmpeg's frame threads and swscale's slice
threads would have the same problem; both are kept at one thread by default).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import av
import decord
import numpy as np
from av.video.reformatter import VideoReformatter

__all__ = [
    "BACKENDS",
    "Decoder",
    "DecordDecoder",
    "PyAVDecoder",
    "VideoError",
    "VideoNotFoundError",
    "check_backend",
    "open_decoder",
]

log = logging.getLogger(__name__)

#: valid `backend` names
BACKENDS = ("auto", "decord", "pyav")


# ------------------------------------------------------------------ errors


def _short(indices: Sequence[int] | np.ndarray | None, limit: int = 12) -> str:
    if indices is None:
        return ""
    values = [int(i) for i in indices]
    text = ", ".join(map(str, values[:limit]))
    return f"[{text}{', ...' if len(values) > limit else ''}] ({len(values)} frames)"


def _rebuild_error(cls: type[VideoError], path: str, reason: str, indices: list[int] | None,
                   segment: str | None) -> VideoError:
    return cls(path, reason, indices=indices, segment=segment)


class VideoError(RuntimeError):
    """A video (or extracted frame) that cannot be read: names the file, frames and segment."""

    def __init__(self, path: str | Path, reason: str, *, indices: Sequence[int] | np.ndarray | None = None,
                 segment: str | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.indices = None if indices is None else [int(i) for i in indices]
        self.segment = segment
        super().__init__(self._message())

    def _message(self) -> str:
        message = self.path
        if self.segment is not None:
            message += f" (segment {self.segment})"
        if self.indices is not None:
            message += f", frames {_short(self.indices)}"
        return f"{message}: {self.reason}"

    def with_segment(self, segment: str | None) -> VideoError:
        """Name `segment` in the message (if given and none is named yet); returns self."""
        if segment is not None and self.segment is None:
            self.segment = segment
            self.args = (self._message(),)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword-only constructor defeats Exception's default pickling (DataLoader
        # workers, multiprocessing pools).
        return _rebuild_error, (type(self), self.path, self.reason, self.indices, self.segment)


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The video file, chunk or frame folder does not exist."""


class _CannotOpen(Exception):
    """Raised by a backend's `_open_native` with a plain reason; `open_decoder` words the VideoError."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mktag(a: int, b: str, c: str, d: str) -> int:
    return -(a | ord(b) << 8 | ord(c) << 16 | ord(d) << 24)


# FFmpeg error codes that decord's check messages carry, e.g. "(-1381258232 vs. 0)".
_AVERRORS = {
    _mktag(0xF8, "S", "T", "R"): "no video stream",
    _mktag(0xF8, "D", "E", "C"): "no decoder for its video codec",
    _mktag(0xF8, "D", "E", "M"): "unknown container format",
    _mktag(ord("I"), "N", "D", "A"): "invalid data",
    _mktag(ord("E"), "O", "F", " "): "unexpected end of file",
    -1: "operation not permitted",
    -2: "no such file",
    -5: "input/output error",
    -12: "out of memory",
}


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decord_reason(exc: BaseException, path: Path) -> str:
    """decord's exception text without timestamps, C++ file:line prefixes, check expressions or stack."""
    text = str(exc).split("Stack trace", 1)[0]
    codes = [int(c) for c in re.findall(r"\((-?\d+) vs\. -?\d+\)", text)]
    text = re.sub(r"\[\d\d:\d\d:\d\d\]\s*", "", text)  # [12:34:56]
    text = re.sub(r"\S+\.(?:cc|h|cpp):\d+:\s*", "", text)  # /github/workspace/src/video/video_reader.cc:151:
    text = re.sub(r"Check failed:.*?\(-?\d+ vs\. -?\d+\)\s*", "", text)  # Check failed: st_nb >= 0 (-13 vs. 0)
    text = text.replace(f"[{path}]", "").replace(str(path), "the file")
    text = re.sub(r"^\s*(ERROR|Thread worker:)\s+", "", _one_line(text)).strip(" .:")
    known = [_AVERRORS[c] for c in codes if c in _AVERRORS]
    if "cannot find video stream" in text:  # av_find_best_stream failed: no stream, or no decoder for it
        return known[0] if known else "no video stream decord can decode"
    if text.startswith("Error reading"):  # VideoReader got no handle; decord logged FFmpeg's reason
        return "not a video file decord can read"
    if "broken metadata" in text:  # decord needs a duration to count frames (GIFs have none)
        return "cannot count its frames (no duration in the file)"
    if known:
        return f"{known[0]} ({text})" if text else known[0]
    if isinstance(exc, AssertionError) and "frame count" in text:
        return "no frames"
    return text or type(exc).__name__


def _av_reason(exc: BaseException) -> str:
    """PyAV's exception as one plain line: the FFmpeg error string, not its errno or the call."""
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return _one_line(exc.strerror[:1].lower() + exc.strerror[1:])
    if isinstance(exc, OSError) and exc.strerror:
        return _one_line(exc.strerror)
    return _one_line(f"{type(exc).__name__}: {exc}")


# ------------------------------------------------------------------ the interface


class Decoder(ABC):
    """One open video file. Not thread-safe for concurrent reads (calls are serialised).

    `close()` releases the native decoder; a later `get_batch` reopens it. The frame count,
    frame rate and (for PyAV) the pts index survive a close, so a reopen costs little.
    """

    backend: ClassVar[str]  # the `backend` name
    label: ClassVar[str]  # the name in messages

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        self.path = Path(path)
        self.num_threads = int(num_threads)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._native: Any = None
        self._native = self._open_native()
        _LIVE.add(self)

    def __repr__(self) -> str:
        state = "open" if self._native is not None else "closed"
        return f"{type(self).__name__}({str(self.path)!r}, {len(self)} frames at {self.fps:g} fps, {state})"

    def __enter__(self) -> Decoder:
        return self

    def __del__(self) -> None:
        # Free the native decoder with its wrapper, in this process, even if something else
        # (a traceback) still holds it; in a forked child, set it aside instead.
        try:
            if self._pid == os.getpid():
                self._release()
            else:
                self._abandon()
        except Exception:  # a half-built decoder, or interpreter shutdown
            pass

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def __len__(self) -> int:
        """Number of frames (packets of the video stream), as decord counts them."""

    @property
    @abstractmethod
    def fps(self) -> float:
        """The stream's average frame rate."""

    @abstractmethod
    def _open_native(self) -> Any:
        """Open the file; raise `_CannotOpen(reason)` on failure."""

    @staticmethod
    @abstractmethod
    def _close_native(native: Any) -> None:
        """Free the native decoder now, whoever else still references the Python object."""

    @abstractmethod
    def _read(self, native: Any, indices: np.ndarray) -> np.ndarray:
        """Frames `indices` (valid, any order) as (T, H, W, 3) uint8; VideoError on failure."""

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames `indices` (0-based, any order, repeats allowed) as a (T, H, W, 3) uint8 array."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        count = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= count):
            raise VideoError(self.path, f"frame index out of range, the file has {count} frames", indices=idx)
        with self._lock:
            if self._pid != os.getpid():  # reached a child some other way than os.fork
                self._abandon()
            if self._native is None:
                try:
                    self._native = self._open_native()
                except _CannotOpen as exc:
                    raise VideoError(self.path, f"cannot reopen with {self.label}: {exc.reason}",
                                     indices=idx) from exc
            try:
                return self._read(self._native, idx)
            except BaseException:
                self._release()  # a decoder stopped mid-stream is not trusted again
                raise

    def close(self) -> None:
        """Release the native decoder now (not when the garbage collector gets to it)."""
        with self._lock:
            if self._pid == os.getpid():
                self._release()
            else:
                self._abandon()

    def _release(self) -> None:
        # Explicitly, not by dropping the reference: an exception's traceback (frames of decord's
        # get_batch, say) may keep the Python object alive, to be freed later, maybe in a child.
        native, self._native = self._native, None
        if native is not None:
            self._close_native(native)

    def _abandon(self) -> None:
        """In a forked child: keep the inherited native decoder alive and untouched, forever."""
        if self._native is not None:
            _INHERITED.append(self._native)
            self._native = None
        self._lock = threading.Lock()  # the parent's lock may have been held by a thread the child lacks
        self._pid = os.getpid()


_LIVE: weakref.WeakSet[Decoder] = weakref.WeakSet()
_INHERITED: list[Any] = []  # native decoders copied into a forked child: never used, never destroyed


def _close_before_fork() -> None:
    for decoder in list(_LIVE):
        if decoder._pid == os.getpid() and decoder._native is not None and decoder._lock.acquire(blocking=False):
            try:
                decoder._release()
            finally:
                decoder._lock.release()


def _abandon_after_fork() -> None:
    for decoder in list(_LIVE):
        decoder._abandon()


os.register_at_fork(before=_close_before_fork, after_in_child=_abandon_after_fork)


# ------------------------------------------------------------------ decord

# decord raises RuntimeError, decord.DECORDError (not a subclass of it), IndexError, and
# AssertionError for a file with no frames.
_DECORD_ERRORS = (RuntimeError, decord.DECORDError, IndexError, AssertionError)


class DecordDecoder(Decoder):
    """`decord.VideoReader` with `num_threads` decoding threads; decord's bridge is left alone."""

    backend, label = "decord", "decord"

    def _open_native(self) -> decord.VideoReader:
        try:
            reader = decord.VideoReader(str(self.path), num_threads=self.num_threads)
        except _DECORD_ERRORS as exc:
            raise _CannotOpen(_decord_reason(exc, self.path)) from exc
        try:
            self._count, self._fps = len(reader), float(reader.get_avg_fps())
        except _DECORD_ERRORS as exc:
            self._close_native(reader)
            raise _CannotOpen(_decord_reason(exc, self.path)) from exc
        return reader

    @staticmethod
    def _close_native(native: decord.VideoReader) -> None:
        # What decord's own __del__ does (stop and join the decoder thread, free the reader),
        # then mark it done so that __del__ does nothing when the object is finally collected.
        if getattr(native, "_handle", None) is not None:
            native.__del__()
            native._handle = None

    def __len__(self) -> int:
        return self._count

    @property
    def fps(self) -> float:
        return self._fps

    def _read(self, native: decord.VideoReader, indices: np.ndarray) -> np.ndarray:
        try:
            return native.get_batch(indices.tolist()).asnumpy()
        except _DECORD_ERRORS as exc:
            raise VideoError(self.path, f"decoding failed with decord: {_decord_reason(exc, self.path)}",
                             indices=indices) from exc


# ------------------------------------------------------------------ PyAV

_AV_ERRORS = (av.FFmpegError, OSError, ValueError, RuntimeError)


class PyAVDecoder(Decoder):
    """PyAV (FFmpeg) with decord's frame numbering, colour conversion and rotation.

    Opening demuxes every packet once (no decoding): frame i is the packet with the i-th
    smallest pts, the keyframe packets are where a read may start. `_read` groups the wanted
    frames by the last keyframe at or before each, seeks to that keyframe, checks where the
    seek landed (stepping back a keyframe if it landed after it), decodes forward and keeps
    the frames whose pts are wanted, then seeks for the next group.
    """

    backend, label = "pyav", "PyAV"

    def __init__(self, path: str | Path, num_threads: int = 1) -> None:
        self._index: dict[str, Any] | None = None
        super().__init__(path, num_threads)

    def _open_native(self) -> tuple[Any, Any, VideoReformatter]:
        try:
            container = av.open(str(self.path), metadata_errors="ignore")
        except _AV_ERRORS as exc:
            raise _CannotOpen(_av_reason(exc)) from exc
        try:
            stream = container.streams.best("video")
            if stream is None:
                raise _CannotOpen("no video stream")
            if stream.codec_context is None:
                raise _CannotOpen("no decoder for its video codec")
            for other in container.streams:
                if other is not stream:
                    other.discard = av.stream.Discard.all  # skip audio and data packets while demuxing
            context = stream.codec_context
            context.thread_count = self.num_threads  # PyAV's default, 0, means one thread per core
            if self.num_threads > 1:
                context.thread_type = "AUTO"
            if self._index is None:
                self._index = self._build_index(container, stream)
        except _CannotOpen:
            container.close()
            raise
        except _AV_ERRORS as exc:
            container.close()
            raise _CannotOpen(_av_reason(exc)) from exc
        return container, stream, VideoReformatter()

    def _build_index(self, container: Any, stream: Any) -> dict[str, Any]:
        pts: list[int] = []
        dts: list[int] = []
        key_pts: list[int] = []
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None and packet.dts is None:
                continue  # the end-of-stream marker PyAV yields, not a frame
            t = packet.pts if packet.pts is not None else packet.dts
            if t is None:
                raise _CannotOpen("its packets carry no timestamps")
            pts.append(t)
            dts.append(packet.dts if packet.dts is not None else t)
            if packet.is_keyframe:
                key_pts.append(t)
        if not pts:
            raise _CannotOpen("no frames")
        order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
        sorted_pts = np.asarray(pts, dtype=np.int64)[order]
        sorted_dts = np.asarray(dts, dtype=np.int64)[order]
        # Seek to keyframe i by its pts (FFmpeg's demuxers seek by presentation time; by dts
        # MP4 lands a keyframe early), unless a frame presented after it is decoded before it:
        # then by that frame's dts, to land early enough to decode it.
        first_dts_after = np.minimum.accumulate(sorted_dts[::-1])[::-1]
        seek_to = np.where(first_dts_after < sorted_dts, first_dts_after, sorted_pts)
        keys = np.unique(np.searchsorted(sorted_pts, np.asarray(key_pts, dtype=np.int64)))
        if keys.size == 0 or keys[0] != 0:
            keys = np.concatenate([[0], keys])  # frames before the first keyframe: read from the start
        by_pts: dict[int, list[int]] = {}
        for i, t in enumerate(sorted_pts.tolist()):
            by_pts.setdefault(t, []).append(i)
        rate = stream.average_rate or stream.guessed_rate
        if rate:
            fps = float(rate)
        elif len(pts) > 1 and stream.time_base:
            fps = (len(pts) - 1) / float((sorted_pts[-1] - sorted_pts[0]) * stream.time_base)
        else:
            fps = 0.0
        return {"pts": sorted_pts, "seek_to": seek_to, "keys": keys, "by_pts": by_pts, "fps": fps,
                "size": (stream.codec_context.width, stream.codec_context.height)}

    def __len__(self) -> int:
        assert self._index is not None
        return len(self._index["pts"])

    @staticmethod
    def _close_native(native: tuple[Any, Any, VideoReformatter]) -> None:
        native[0].close()  # the container, its streams' decoders and the file

    @property
    def fps(self) -> float:
        assert self._index is not None
        return self._index["fps"]

    def _read(self, native: tuple[Any, Any, VideoReformatter], indices: np.ndarray) -> np.ndarray:
        if indices.size == 0:  # decord's (0, H, W, 3)
            shape = self._read(native, np.zeros(1, dtype=np.int64)).shape[1:]
            return np.empty((0, *shape), dtype=np.uint8)
        try:
            frames = self._decode(native, np.unique(indices).tolist())
        except _AV_ERRORS as exc:
            raise VideoError(self.path, f"decoding failed with PyAV: {_av_reason(exc)}", indices=indices) from exc
        first = frames[int(indices[0])]
        out = np.empty((indices.size, *first.shape), dtype=np.uint8)
        for j, i in enumerate(indices.tolist()):
            out[j] = frames[i]
        return out

    def _decode(self, native: tuple[Any, Any, VideoReformatter], wanted: list[int]) -> dict[int, np.ndarray]:
        """Frames `wanted` (sorted, unique), decoding from one keyframe per group of them."""
        container, stream, reformatter = native
        index = self._index
        assert index is not None
        keys: np.ndarray = index["keys"]
        by_pts: dict[int, list[int]] = index["by_pts"]
        frames: dict[int, np.ndarray] = {}
        pending = set(wanted)
        while pending:
            k = int(np.searchsorted(keys, min(pending), side="right")) - 1  # last keyframe at or before
            group_end = int(keys[k + 1]) if k + 1 < keys.size else len(self)  # frames keyframe k starts
            for packet in self._seek(container, stream, k):
                for frame in stream.codec_context.decode(packet):
                    for i in by_pts.get(frame.pts if frame.pts is not None else frame.dts, ()):
                        if i in pending:  # a frame decoded for a later group is kept too
                            frames[i] = self._to_rgb(frame, reformatter)
                            pending.discard(i)
                            break
                if not pending or min(pending) >= group_end:
                    break  # this group is done: seek for the next one rather than decode up to it
            else:  # the end of the file, and the decoder gave no frame for some wanted pts
                missing = sorted(pending)
                raise VideoError(self.path, f"decoding failed with PyAV: no frame decoded for index {missing[0]} "
                                 "(truncated or corrupt file)", indices=missing)
        return frames

    def _seek(self, container: Any, stream: Any, k: int) -> Iterator[Any]:
        """The stream's packets from keyframe number k (or an earlier one) on."""
        index = self._index
        assert index is not None
        key_pts = int(index["pts"][index["keys"][k]])
        while True:
            container.seek(int(index["seek_to"][index["keys"][k]]), backward=True, any_frame=False, stream=stream)
            packets = container.demux(stream)  # the seek flushed the decoder
            for packet in packets:  # a seek lands on a keyframe; skip anything before one all the same
                t = packet.pts if packet.pts is not None else packet.dts
                if packet.is_keyframe and t is not None:
                    if t <= key_pts or k == 0:
                        return _chain(packet, packets)
                    break  # landed after the keyframe wanted
            if k == 0:
                raise VideoError(self.path, "decoding failed with PyAV: seeking to the first keyframe failed")
            k -= 1

    def _to_rgb(self, frame: Any, reformatter: VideoReformatter) -> np.ndarray:
        # decord: FFmpeg's scale filter to the stream's size and rgb24 (swscale, bilinear, the
        # frame's colorspace and range), then transpose filters for the rotation tag.
        assert self._index is not None
        width, height = self._index["size"]
        rgb = reformatter.reformat(frame, width=width or frame.width, height=height or frame.height,
                                   format="rgb24", interpolation="BILINEAR", threads=1)
        array = rgb.to_ndarray()
        rotation = frame.rotation  # degrees counter-clockwise to display upright
        if rotation and rotation % 90 == 0:
            array = np.rot90(array, k=(rotation // 90) % 4)
        return array


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


# ------------------------------------------------------------------ opening


_BACKEND_CLASSES: dict[str, type[Decoder]] = {"decord": DecordDecoder, "pyav": PyAVDecoder}
_DECORD_CANNOT: dict[str, str] = {}  # path -> why decord cannot open it (this process, backend "auto")
_fallback_warned = False


def check_backend(backend: str) -> str:
    """`backend` if it is a valid name, else ValueError listing the valid ones."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; valid: {', '.join(BACKENDS)}")
    return backend


def open_decoder(path: str | Path, backend: str = "auto", num_threads: int = 1) -> Decoder:
    """Open `path` with `backend` ("auto", "decord" or "pyav"); see the module docstring.

    Raises `ValueError` for an unknown backend, `VideoNotFoundError` for a missing file and
    `VideoError` for a file that cannot be opened (under "auto": by either backend).
    """
    check_backend(backend)
    path = Path(path)
    if not path.is_file():
        raise VideoNotFoundError(path, "file not found")
    if backend != "auto":
        try:
            return _BACKEND_CLASSES[backend](path, num_threads)
        except _CannotOpen as exc:
            raise VideoError(path, f"cannot open with {_BACKEND_CLASSES[backend].label}: {exc.reason}") from exc
    decord_reason = _DECORD_CANNOT.get(str(path))
    if decord_reason is None:
        try:
            return DecordDecoder(path, num_threads)
        except _CannotOpen as exc:
            decord_reason = exc.reason
    try:
        decoder = PyAVDecoder(path, num_threads)
    except _CannotOpen as exc:
        raise VideoError(path, f"cannot open with decord ({decord_reason}) or PyAV ({exc.reason})") from exc
    if str(path) not in _DECORD_CANNOT:
        _DECORD_CANNOT[str(path)] = decord_reason
        _warn_fallback(path, decord_reason)
    return decoder


def _warn_fallback(path: Path, reason: str) -> None:
    global _fallback_warned
    if _fallback_warned:
        log.debug("decord cannot open %s (%s); decoding it with PyAV", path, reason)
        return
    _fallback_warned = True
    log.warning("decord cannot open %s (%s); decoding it and other such files with PyAV", path, reason)
