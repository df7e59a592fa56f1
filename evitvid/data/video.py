"""Decoding frames of EK100 videos in three on-disk layouts: frame indices in, uint8 frames out.

* `ChunkedVideos` - AVION's resized copy (`avion/data/clip_dataset.py`, `video_loader`):
  `ROOT/P01/P01_01.MP4/{0,15,30,...}.MP4`, each file `chunk_seconds` long at `fps`.
  Frame i of the video is frame `i - c * chunk_seconds * fps` of chunk c; a segment that
  crosses a boundary (22 % of EK100 validation) is read from each chunk it spans and
  concatenated in order. The last chunk of a video is shorter: indices past the end of the
  video are clamped to its last frame when they overrun it by at most `max_overrun` seconds
  (EK100 validation stop times overrun their video by up to 0.013 s, and rounding adds a
  frame); a larger overrun is an error. A non-last chunk shorter than
  `chunk_seconds * fps` is an error, not clamped: it means the chunking is not the one
  assumed here.
* `WholeVideos` - the official layout `ROOT/P01/videos/P01_01.MP4`, one file per video, at
  its own frame rate (read from the file unless given). Indices past the end are clamped
  as for chunks.
* `FrameFolders` - JPEG frames per segment as `python -m evitvid extract` writes them:
  `ROOT/P01/P01_01/P01_01_7/00000.jpg ... {N-1:05d}.jpg` plus `frames.json` (the done
  marker, written last), recording the video frames the JPEGs came from. Its index space
  is the stored frames of one segment: `frame_range(segment) == (0, N)`.

All three share `frame_range(segment) -> (start, stop)` (the half-open range of indices
`read` accepts for a segment; video layouts map the timestamps to file frames, see
`annotations.to_file_frames`) and `read(segment_or_id, indices) -> (T, H, W, 3) uint8`.
Errors raise `VideoError` naming the file, the indices and, when known, the segment.

Decoding goes through `evitvid.data.decoders` (`open_decoder`): `backend="auto"` (decord,
falling back to PyAV for files decord cannot open, such as AV1 or GIF), `"decord"` or
`"pyav"`; the frame numbering is decord's in every case. Decoders are opened lazily, in the
process that reads (DataLoader workers), with `num_threads=1` (the workers are the
parallelism), kept in a small LRU per source (`_Readers`), and never pickled. The cache is
emptied before every fork; `decoders` itself makes sure no native decoder is used or
destroyed in a forked child.
"""
from __future__ import annotations

import io
import json
import os
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from evitvid.atomic import write_bytes_atomic
from evitvid.data.annotations import Segment, to_file_frames
from evitvid.data.decoders import BACKENDS, Decoder, VideoError, VideoNotFoundError, check_backend, open_decoder

__all__ = [
    "BACKENDS",
    "VideoError",
    "VideoNotFoundError",
    "read_frames",
    "VideoSource",
    "ChunkedVideos",
    "WholeVideos",
    "FrameFolders",
    "LAYOUTS",
    "make_source",
]


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}"


def _open(path: Path, backend: str, num_threads: int, segment: str | None) -> Decoder:
    try:
        return open_decoder(path, backend, num_threads)
    except VideoError as exc:
        exc.with_segment(segment)
        raise


def _get_batch(decoder: Decoder, indices: np.ndarray, segment: str | None) -> np.ndarray:
    try:
        return decoder.get_batch(indices)
    except VideoError as exc:
        exc.with_segment(segment)
        raise


def read_frames(path: str | Path, indices: Sequence[int] | np.ndarray, *, num_threads: int = 1,
                backend: str = "auto") -> torch.Tensor:
    """Frames `indices` (0-based, any order, repeats allowed) of one video file, (T, H, W, 3) uint8.

    `backend`: "auto" (decord, PyAV for files decord cannot open), "decord" or "pyav".
    Raises `VideoNotFoundError` for a missing file and `VideoError` (naming the file and the
    indices) for an unreadable file, an index out of range or a frame that fails to decode.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    with _open(Path(path), backend, num_threads, None) as decoder:  # closed now, even if an error keeps it
        return torch.from_numpy(decoder.get_batch(idx))


class _Readers:
    """A small LRU of open decoders, private to one process.

    Every cache is emptied in the parent just before any fork (`os.register_at_fork`), so a
    DataLoader worker opens its own decoders; `decoders` then closes the parent's idle ones
    and sets aside, in the child, any native decoder still open (one busy in another thread).
    A cache found in a child is forgotten. Decoders leaving the cache are closed at once,
    not whenever the garbage collector frees them.
    """

    def __init__(self, max_open: int, num_threads: int, backend: str = "auto") -> None:
        self.max_open, self.num_threads, self.backend = max_open, num_threads, backend
        self._open: OrderedDict[Path, Decoder] = OrderedDict()
        self._pid = os.getpid()
        _LIVE_CACHES.add(self)

    def get(self, path: Path, segment: str | None) -> Decoder:
        if self._pid != os.getpid():  # inherited through fork: `decoders` has set the natives aside
            self._open = OrderedDict()
            self._pid = os.getpid()
        decoder = self._open.get(path)
        if decoder is not None:
            self._open.move_to_end(path)
            return decoder
        decoder = _open(path, self.backend, self.num_threads, segment)
        if self.max_open > 0:
            self._open[path] = decoder
            while len(self._open) > self.max_open:
                self._open.popitem(last=False)[1].close()
        return decoder

    def drop(self, path: Path) -> None:
        # After a decode error a decoder's internal state is not trusted.
        decoder = self._open.pop(path, None)
        if decoder is not None:
            decoder.close()

    def clear(self) -> None:
        for decoder in self.forget():
            decoder.close()

    def forget(self) -> list[Decoder]:
        """Empty the cache without closing anything (which could wait for a read in another thread)."""
        decoders, self._open = list(self._open.values()), OrderedDict()
        return decoders


_LIVE_CACHES: weakref.WeakSet[_Readers] = weakref.WeakSet()


def _empty_before_fork() -> None:
    for cache in list(_LIVE_CACHES):
        if cache._pid == os.getpid():
            cache.forget()


os.register_at_fork(before=_empty_before_fork)


def _participant(video_id: str) -> str:
    return video_id.split("_", 1)[0]


class VideoSource(ABC):
    """Common interface of the layouts; see the module docstring."""

    #: frame rate of the indices `read` takes, None when it depends on the file
    fps: float | None = None

    def __init__(self, root: str | Path, *, max_open: int = 2, num_threads: int = 1,
                 max_overrun: float = 1.0, backend: str = "auto") -> None:
        self.root = Path(root)
        self.max_open, self.num_threads = int(max_open), int(num_threads)
        self.max_overrun = float(max_overrun)
        self.backend = check_backend(backend)
        self._readers = _Readers(self.max_open, self.num_threads, self.backend)

    def __getstate__(self) -> dict[str, Any]:
        # Readers never cross a process boundary; each worker opens its own.
        state = self.__dict__.copy()
        state["_readers"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("backend", "auto")  # pickled before the backend option existed
        self.__dict__.update(state)
        self._readers = _Readers(self.max_open, self.num_threads, self.backend)

    def close(self) -> None:
        """Close the open decoders (they are reopened on demand)."""
        self._readers.clear()

    @abstractmethod
    def frame_range(self, segment: Segment) -> tuple[int, int]:
        """Half-open range of the indices `read` accepts for `segment`."""

    @abstractmethod
    def read(self, item: Segment | str, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Frames `indices` as a (T, H, W, 3) uint8 tensor."""

    @abstractmethod
    def path(self, item: Segment | str) -> Path:
        """The file (or folder) holding `item`."""

    def needed_paths(self, segment: Segment) -> list[Path]:
        """The files (or folders) that must exist for `segment` to be read: what a run checks,
        one stat each, before it trains (`evitvid.study.missing_videos`)."""
        return [self.path(segment)]

    def read_segment(self, segment: Segment) -> torch.Tensor:
        """Every frame of the segment (for benchmarks and checks; a long segment is large)."""
        start, stop = self.frame_range(segment)
        return self.read(segment, np.arange(start, stop))

    @staticmethod
    def _ids(item: Segment | str) -> tuple[str, str, str | None]:
        """(video_id, participant_id, narration_id or None)."""
        if isinstance(item, Segment):
            return item.video_id, item.participant_id, item.narration_id
        return item, _participant(item), None

    @staticmethod
    def _indices(indices: Sequence[int] | np.ndarray, path: Path, segment: str | None) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise VideoError(path, "no frame indices given", segment=segment)
        if idx.min() < 0:
            raise VideoError(path, "negative frame index", indices=idx, segment=segment)
        return idx

    def _clamp_to_end(self, idx: np.ndarray, count: int, fps: float, path: Path, segment: str | None) -> np.ndarray:
        """Clamp indices past the last frame to it, if they overrun by at most `max_overrun` seconds.

        Annotations end up to a few hundredths of a second after the video and rounding adds a
        frame, so a small overrun is expected; a large one means a wrong video or annotation,
        and is an error rather than a clip of repeated last frames.
        """
        if idx.max() < count:
            return idx
        limit = count - 1 + max(1, int(round(self.max_overrun * fps)))
        if idx.max() > limit:
            raise VideoError(path, f"frame index past the end of the video ({count} frames at {fps:g} fps), "
                             f"by more than max_overrun={self.max_overrun:g} s", indices=idx, segment=segment)
        return np.minimum(idx, count - 1)

    def _decode(self, path: Path, local: np.ndarray, segment: str | None) -> np.ndarray:
        decoder = self._readers.get(path, segment)
        try:
            return _get_batch(decoder, local, segment)
        except VideoError:
            self._readers.drop(path)
            raise

    def _backend_repr(self) -> str:
        return "" if self.backend == "auto" else f", backend={self.backend!r}"


class WholeVideos(VideoSource):
    """One file per video: `ROOT/<participant>/<subdir>/<video_id>.<ext>` (official EK100 layout).

    `fps` is the frame rate used to map timestamps to frames; None reads it from each file.
    """

    def __init__(self, root: str | Path, *, fps: float | None = None, ext: str = "MP4", subdir: str = "videos",
                 max_open: int = 2, num_threads: int = 1, max_overrun: float = 1.0, backend: str = "auto") -> None:
        super().__init__(root, max_open=max_open, num_threads=num_threads, max_overrun=max_overrun, backend=backend)
        self.fps, self.ext, self.subdir = fps, ext, subdir

    def __repr__(self) -> str:
        return (f"WholeVideos({str(self.root)!r}, fps={self.fps}, ext={self.ext!r}, subdir={self.subdir!r}"
                f"{self._backend_repr()})")

    def path(self, item: Segment | str) -> Path:
        video_id, participant, _ = self._ids(item)
        return self.root / participant / self.subdir / f"{video_id}.{self.ext}"

    def file_fps(self, item: Segment | str) -> float:
        if self.fps is not None:
            return float(self.fps)
        path = self.path(item)
        return float(self._readers.get(path, self._ids(item)[2]).fps)

    def num_frames(self, item: Segment | str) -> int:
        return len(self._readers.get(self.path(item), self._ids(item)[2]))

    def frame_range(self, segment: Segment) -> tuple[int, int]:
        return to_file_frames(segment, self.file_fps(segment))

    def read(self, item: Segment | str, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        path = self.path(item)
        segment = self._ids(item)[2]
        idx = self._indices(indices, path, segment)
        count = len(self._readers.get(path, segment))
        idx = self._clamp_to_end(idx, count, self.file_fps(item), path, segment)
        return torch.from_numpy(self._decode(path, idx, segment))


class ChunkedVideos(VideoSource):
    """AVION's chunked layout: `ROOT/<participant>/<video_id>.<ext>/<k * chunk_seconds>.<ext>`."""

    def __init__(self, root: str | Path, *, chunk_seconds: int = 15, fps: float = 30.0, ext: str = "MP4",
                 max_open: int = 2, num_threads: int = 1, max_overrun: float = 1.0, backend: str = "auto") -> None:
        super().__init__(root, max_open=max_open, num_threads=num_threads, max_overrun=max_overrun, backend=backend)
        per_chunk = chunk_seconds * fps
        if chunk_seconds <= 0 or fps <= 0 or abs(per_chunk - round(per_chunk)) > 1e-6:
            raise ValueError("chunk_seconds * fps must be a positive whole number of frames, "
                             f"got {chunk_seconds} * {fps}")
        self.chunk_seconds, self.fps, self.ext = int(chunk_seconds), float(fps), ext
        self.frames_per_chunk = int(round(per_chunk))
        self._chunk_counts: dict[str, int] = {}  # video_id -> number of chunk files

    def __repr__(self) -> str:
        return (f"ChunkedVideos({str(self.root)!r}, chunk_seconds={self.chunk_seconds}, fps={self.fps}, "
                f"ext={self.ext!r}{self._backend_repr()})")

    def path(self, item: Segment | str) -> Path:
        """The video's folder of chunks."""
        video_id, participant, _ = self._ids(item)
        return self.root / participant / f"{video_id}.{self.ext}"

    def chunk_path(self, item: Segment | str, chunk: int) -> Path:
        return self.path(item) / f"{chunk * self.chunk_seconds}.{self.ext}"

    def needed_paths(self, segment: Segment) -> list[Path]:
        """The chunk files the segment's frames lie in. The end may overrun the video by
        `max_overrun` seconds (`read` clamps it), so the chunk of that overrun is not required."""
        start, stop = self.frame_range(segment)
        last = max(start, stop - 1 - int(self.max_overrun * self.fps))
        return [self.chunk_path(segment, k) for k in range(start // self.frames_per_chunk,
                                                           last // self.frames_per_chunk + 1)]

    def num_chunks(self, item: Segment | str) -> int:
        """Number of chunk files; they must be 0, chunk_seconds, 2*chunk_seconds, ... without gaps."""
        video_id, _, segment = self._ids(item)
        if video_id not in self._chunk_counts:
            folder = self.path(item)
            if not folder.is_dir():
                raise VideoNotFoundError(folder, "chunk folder not found", segment=segment)
            suffix = f".{self.ext}"
            starts = sorted(int(name[: -len(suffix)]) for name in os.listdir(folder)
                            if name.endswith(suffix) and name[: -len(suffix)].isdigit())
            if not starts:
                raise VideoNotFoundError(folder, f"no chunk files (*{suffix}) in the folder", segment=segment)
            missing = sorted(set(range(0, starts[-1] + 1, self.chunk_seconds)) - set(starts))
            stray = [s for s in starts if s % self.chunk_seconds]
            if missing or stray:
                raise VideoError(folder, f"chunks must start at 0 and step by {self.chunk_seconds} s; "
                                 f"missing {missing[:5]}, unexpected {stray[:5]}", segment=segment)
            self._chunk_counts[video_id] = len(starts)
        return self._chunk_counts[video_id]

    def num_frames(self, item: Segment | str) -> int:
        last = self.num_chunks(item) - 1
        path = self.chunk_path(item, last)
        return last * self.frames_per_chunk + len(self._readers.get(path, self._ids(item)[2]))

    def frame_range(self, segment: Segment) -> tuple[int, int]:
        return to_file_frames(segment, self.fps)

    def read(self, item: Segment | str, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        segment = self._ids(item)[2]
        idx = self._indices(indices, self.path(item), segment)
        last = self.num_chunks(item) - 1
        if idx.max() >= last * self.frames_per_chunk:  # reaches the last chunk: mind the end
            idx = self._clamp_to_end(idx, self.num_frames(item), self.fps, self.path(item), segment)
        chunk_of = idx // self.frames_per_chunk
        out: np.ndarray | None = None
        for chunk in np.unique(chunk_of):
            where = np.flatnonzero(chunk_of == chunk)
            local = idx[where] - chunk * self.frames_per_chunk
            path = self.chunk_path(item, int(chunk))
            count = len(self._readers.get(path, segment))
            if local.max() >= count:  # only a non-last chunk can get here, after the clamp above
                raise VideoError(path, f"chunk has {count} frames, expected {self.frames_per_chunk} "
                                 f"({self.chunk_seconds} s at {self.fps:g} fps)", indices=local, segment=segment)
            frames = self._decode(path, local, segment)
            if out is None:
                out = np.empty((idx.size, *frames.shape[1:]), dtype=frames.dtype)
            elif frames.shape[1:] != out.shape[1:]:
                raise VideoError(path, f"frame size {frames.shape[1:3]} differs from the previous chunk's "
                                 f"{out.shape[1:3]}", indices=local, segment=segment)
            out[where] = frames
        assert out is not None
        return torch.from_numpy(out)


MANIFEST = "frames.json"


class FrameFolders(VideoSource):
    """Extracted JPEG frames: `ROOT/<participant>/<video_id>/<narration_id>/{k:05d}.jpg` + `frames.json`.

    `read` takes positions among the stored frames of one segment (0 .. N-1); a string item is
    a narration_id. `write` is the atomic writer `extract` uses.
    """

    def __init__(self, root: str | Path, *, ext: str = "jpg") -> None:
        super().__init__(root, max_open=0)
        self.ext = ext
        self._frame_counts: dict[str, int] = {}  # narration_id -> stored frames, from its manifest

    def __repr__(self) -> str:
        return f"FrameFolders({str(self.root)!r}, ext={self.ext!r})"

    @staticmethod
    def _narration(item: Segment | str) -> tuple[str, str, str]:
        if isinstance(item, Segment):
            return item.narration_id, item.video_id, item.participant_id
        video_id = item.rsplit("_", 1)[0]
        return item, video_id, _participant(video_id)

    def path(self, item: Segment | str) -> Path:
        narration_id, video_id, participant = self._narration(item)
        return self.root / participant / video_id / narration_id

    def needed_paths(self, segment: Segment) -> list[Path]:
        """The segment's manifest: it is written last, once every frame is (`write`)."""
        return [self.path(segment) / MANIFEST]

    def frame_file(self, item: Segment | str, position: int) -> Path:
        return self.path(item) / f"{position:05d}.{self.ext}"

    def manifest(self, item: Segment | str) -> dict[str, Any]:
        """The segment's `frames.json`; VideoNotFoundError when the segment was not (fully) extracted."""
        folder = self.path(item)
        path = folder / MANIFEST
        try:
            with path.open(encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            raise VideoNotFoundError(path, "segment not extracted (no frames.json)",
                                     segment=self._narration(item)[0]) from None
        except (OSError, ValueError) as exc:
            raise VideoError(path, f"unreadable manifest: {exc}", segment=self._narration(item)[0]) from exc

    def is_complete(self, item: Segment | str, num_frames: int | None = None) -> bool:
        """True when the manifest and every JPEG it lists exist (and, if given, there are `num_frames`)."""
        try:
            manifest = self.manifest(item)
        except VideoError:
            return False
        count = len(manifest.get("video_frames", []))
        if num_frames is not None and count != num_frames:
            return False
        return all(self.frame_file(item, k).is_file() for k in range(count))

    def frame_range(self, segment: Segment) -> tuple[int, int]:
        if segment.narration_id not in self._frame_counts:  # read once, not for every clip of every epoch
            self._frame_counts[segment.narration_id] = len(self.manifest(segment)["video_frames"])
        return 0, self._frame_counts[segment.narration_id]

    def read(self, item: Segment | str, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        narration_id = self._narration(item)[0]
        idx = self._indices(indices, self.path(item), narration_id)
        cache: dict[int, torch.Tensor] = {}
        frames = []
        for position in idx.tolist():
            if position not in cache:
                path = self.frame_file(item, position)
                if not path.is_file():
                    raise VideoNotFoundError(path, "frame file not found", indices=[position], segment=narration_id)
                try:
                    with Image.open(path) as image:
                        cache[position] = torch.from_numpy(np.array(image.convert("RGB")))
                except (OSError, UnidentifiedImageError) as exc:
                    raise VideoError(path, f"cannot decode image: {_first_line(exc)}", indices=[position],
                                     segment=narration_id) from exc
            frames.append(cache[position])
        return torch.stack(frames)

    def write(self, segment: Segment, frames: torch.Tensor, video_frames: Sequence[int], *,
              quality: int = 90, source: str = "") -> Path:
        """Write `frames` (T, H, W, 3) uint8 as JPEGs, then the manifest, each atomically.

        Every file goes to a temporary name in the same folder and is moved into place with
        `os.replace`, so a killed run leaves whole files only; the manifest goes last and
        marks the segment done.
        """
        folder = self.path(segment)
        folder.mkdir(parents=True, exist_ok=True)
        self._frame_counts.pop(segment.narration_id, None)
        for position, frame in enumerate(frames):
            buffer = io.BytesIO()
            # PIL, not torchvision.io: torchvision 0.29 deprecates its image codecs.
            Image.fromarray(np.ascontiguousarray(frame.numpy())).save(buffer, format="JPEG", quality=quality)
            write_bytes_atomic(self.frame_file(segment, position), buffer.getvalue())
        manifest = {
            "narration_id": segment.narration_id,
            "video_id": segment.video_id,
            "video_frames": [int(i) for i in video_frames],
            "source": source,
        }
        write_bytes_atomic(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
        return folder


LAYOUTS: dict[str, type[VideoSource]] = {"chunked": ChunkedVideos, "whole": WholeVideos, "frames": FrameFolders}


def make_source(root: str | Path, layout: str = "chunked", **kwargs: Any) -> VideoSource:
    """The `VideoSource` for `layout` ("chunked", "whole" or "frames"); kwargs go to its constructor
    (for the video layouts, `backend="auto"`, `"decord"` or `"pyav"` among them)."""
    try:
        cls = LAYOUTS[layout]
    except KeyError:
        raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}") from None
    return cls(root, **kwargs)
