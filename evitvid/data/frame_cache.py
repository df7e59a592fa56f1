"""Every frame of a split's segments, decoded once into one memory-mapped uint8 file.

Training samples new frames every epoch (TSN: a random frame in each part of a segment), so
a clip cannot be cached; its frames can. On the embedded dataset decoding a training clip
(8 frames from 112 x 112 H.264, seeking from the previous keyframe) costs about twice a
3D B0 training step per clip, so an epoch spent two thirds of its time in the loader. A
`FrameCache` decodes every frame of every segment once, resizes it so that its shorter side
is `size` (the crop the model sees is taken from it), and writes them into `frames.u8`, one
uint8 array that every process (DataLoader workers included) memory-maps; reading a clip is
then a gather from the page cache.

The cache is a `VideoSource`: `frame_range` and the frame indices are the decoding source's,
so samplers and transforms work unchanged; the frames are the source's, resized. It is
built atomically (a killed build leaves no cache) and found again by its key (the source,
the segments and `size`); `evitvid.study` records `size` with each run, since it changes
the pixels the model sees (`frame_cache` in the run's parameters).

Not for the real EK100: its segments hold hundreds of GB of frames. There the loader keeps
decoding, with workers (`python -m evitvid bench-data` reports its clip rate).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from evitvid.atomic import atomic_path, write_bytes_atomic
from evitvid.data.annotations import Segment, segment_list
from evitvid.data.video import VideoError, VideoSource

__all__ = ["FrameCache"]

_log = logging.getLogger(__name__)
_FORMAT = 1  # bump when the layout of the files changes


def _resized(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> the shorter side `size`, antialiased as the transforms resize."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    if min(x.shape[-2:]) != size:
        x = TF.resize(x, size, antialias=True)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def _fill(args: tuple) -> int:
    """A worker's share of the build: decode its segments' frames into the memory-mapped file."""
    source, path, shape, jobs, size = args
    frames = np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)
    done = 0
    for segment, offset, start, stop in jobs:
        step = 64  # bounded memory for long segments
        for a in range(start, stop, step):
            b = min(stop, a + step)
            decoded = source.read(segment, np.arange(a, b)).numpy()
            frames[offset + a - start: offset + b - start] = _resized(decoded, size)
        done += stop - start
    frames.flush()
    return done


class FrameCache(VideoSource):
    """The frames of `segments`, decoded from `source` once, resized to a shorter side of `size`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        manifest = json.loads((self.folder / "manifest.json").read_text())
        self.size, self.shape = manifest["size"], tuple(manifest["shape"])
        self._index = {k: tuple(v) for k, v in json.loads((self.folder / "index.json").read_text()).items()}
        self._frames: Optional[np.memmap] = None  # opened on first read, in the process that reads
        super().__init__(self.folder, max_open=0)

    def __repr__(self) -> str:
        return f"FrameCache({str(self.folder)!r}, {len(self._index)} segments, size={self.size})"

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_frames"] = None  # workers map the file themselves
        return state

    @property
    def frames(self) -> np.memmap:
        if self._frames is None:
            self._frames = np.memmap(self.folder / "frames.u8", dtype=np.uint8, mode="r", shape=self.shape)
        return self._frames

    def path(self, item: Segment | str) -> Path:
        return self.folder / "frames.u8"

    def _entry(self, item: Segment | str) -> tuple[int, int, int]:
        narration_id = item.narration_id if isinstance(item, Segment) else item
        try:
            return self._index[narration_id]
        except KeyError:
            raise VideoError(self.folder, "segment not in this frame cache", segment=narration_id) from None

    def frame_range(self, segment: Segment) -> tuple[int, int]:
        _, start, stop = self._entry(segment)
        return start, stop

    def read(self, item: Segment | str, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        offset, start, stop = self._entry(item)
        idx = self._indices(indices, self.folder, item.narration_id if isinstance(item, Segment) else item)
        if idx.min() < start or idx.max() >= stop:
            raise VideoError(self.folder, f"frames outside the cached segment [{start}, {stop})", indices=idx,
                             segment=item.narration_id if isinstance(item, Segment) else item)
        return torch.from_numpy(np.ascontiguousarray(self.frames[offset + idx - start]))

    # -- building ----------------------------------------------------------------------------

    @staticmethod
    def key(source: VideoSource, segments: Sequence[Segment], size: int, identity: Any = None) -> str:
        """What a cache is the cache of: the source (`identity`, e.g. a generated dataset's manifest
        key, else its repr), each segment and its frame range, and `size`."""
        h = hashlib.sha1(json.dumps({"format": _FORMAT, "source": identity if identity is not None else repr(source),
                                     "size": size}, sort_keys=True, default=str).encode())
        for seg in segments:
            h.update(f"{seg.narration_id}:{source.frame_range(seg)}".encode())
        return h.hexdigest()[:16]

    @classmethod
    def open_or_build(cls, source: VideoSource, segments, root: str | Path, size: int, *, identity: Any = None,
                      workers: Optional[int] = None, log=_log.info) -> "FrameCache":
        """The cache of `segments` under `root/frames-<size>-<key>/`, built first if it is not there."""
        segments = segment_list(segments)
        folder = Path(root) / f"frames-{size}-{cls.key(source, segments, size, identity)}"
        if (folder / "manifest.json").exists():
            return cls(folder)
        return cls.build(source, segments, folder, size, workers=workers, log=log)

    @classmethod
    def build(cls, source: VideoSource, segments, folder: str | Path, size: int, *, workers: Optional[int] = None,
              log=_log.info) -> "FrameCache":
        """Decode every frame of `segments` into `folder` (written whole or not at all)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        segments = segment_list(segments)
        started = time.perf_counter()
        ranges = [source.frame_range(seg) for seg in segments]
        first = source.read(segments[0], np.array([ranges[0][0]])).numpy()
        h, w = _resized(first, size).shape[1:3]
        offsets = np.concatenate([[0], np.cumsum([b - a for a, b in ranges])])
        shape = (int(offsets[-1]), h, w, 3)
        index = {seg.narration_id: (int(o), a, b) for seg, o, (a, b) in zip(segments, offsets, ranges)}
        log(f"frame cache: decoding {shape[0]:,} frames of {len(segments):,} segments into {folder} "
            f"({np.prod(shape) / 1e9:.1f} GB at {h} x {w})")
        jobs = [(seg, int(o), a, b) for seg, o, (a, b) in zip(segments, offsets, ranges)]
        with atomic_path(folder / "frames.u8") as tmp:
            np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape).flush()
            workers = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
            if workers <= 1:
                _fill((source, str(tmp), shape, jobs, size))
            else:
                import multiprocessing

                from evitvid.workers import process_pool
                shares = [jobs[i::workers] for i in range(workers)]
                with process_pool(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                    list(pool.map(_fill, [(source, str(tmp), shape, share, size) for share in shares]))
        write_bytes_atomic(folder / "index.json", json.dumps(index).encode())
        write_bytes_atomic(folder / "manifest.json", json.dumps(
            {"format": _FORMAT, "size": size, "shape": list(shape), "segments": len(segments),
             "seconds": round(time.perf_counter() - started, 1)}, indent=2).encode())  # last: marks it complete
        log(f"frame cache: {shape[0]:,} frames in {time.perf_counter() - started:.0f} s")
        return cls(folder)
