"""A segment's frames as pictures: a strip (PNG) or a playing clip (animated GIF).

The frames are the ones evaluation samples (TSN: the midpoint of each of T equal parts of
the segment, `evitvid.data.sampling`), read from the videos as they are stored: the whole
frame, before the model's resize and centre crop, and without the normalisation round trip
(what the model saw, not an approximation of it). A segment is decoded once per frame
count and kept in a small LRU cache, so going back to a segment, or switching between the
strip and the clip, costs no decoding. Pictures are made with Pillow, not matplotlib: a
strip takes milliseconds.
"""
from __future__ import annotations

import io
from collections import OrderedDict
from typing import Sequence

import numpy as np
from PIL import Image

from ..study import DataPaths, clip_dataset

__all__ = ["SegmentFrames", "strip_png", "clip_gif"]


def _resized(frames: np.ndarray, height: int) -> list[Image.Image]:
    """Frames (T, H, W, 3) uint8 as images `height` pixels high (nearest when enlarging:
    small frames stay sharp; a good filter when shrinking)."""
    t, h, w, _ = frames.shape
    width = max(1, round(w * height / h))
    resample = Image.NEAREST if height >= h else Image.LANCZOS
    return [Image.fromarray(f).resize((width, height), resample) if (width, height) != (w, h)
            else Image.fromarray(f) for f in frames]


def strip_png(frames: np.ndarray, *, height: int = 112, max_width: int = 1000, gap: int = 2) -> bytes:
    """Frames (T, H, W, 3) uint8 side by side, left to right in time, as one PNG; the frames are
    scaled to `height` pixels, or less if the strip would be wider than `max_width`."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"expected frames T x H x W x 3 uint8 with T >= 1, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    height = max(8, min(height, int((max_width - gap * (t - 1)) / t * h / w)))
    tiles = _resized(frames, height)
    width = sum(tile.width for tile in tiles) + gap * (t - 1)
    strip = Image.new("RGB", (width, height), "white")
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + gap
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG", compress_level=1)  # speed over bytes: the page is local
    return buffer.getvalue()


def clip_gif(frames: np.ndarray, *, fps: float = 4.0, height: int = 224) -> bytes:
    """Frames (T, H, W, 3) uint8 as an animated GIF that loops, `fps` frames per second."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"expected frames T x H x W x 3 uint8 with T >= 1, got {frames.shape} {frames.dtype}")
    images = _resized(frames, height)
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=max(20, round(1000 / fps)), disposal=1, optimize=False)
    return buffer.getvalue()


class SegmentFrames:
    """The evaluation frames of `segments` (validation segments of `data`), decoded on demand
    and cached (`cache_size` clips, least recently used dropped first)."""

    def __init__(self, data: DataPaths, segments: Sequence, *, num_frames: int = 8, cache_size: int = 32):
        self.data = data
        self.segments = list(segments)
        self.num_frames = int(num_frames)
        self.cache_size = int(cache_size)
        self._row = {s.narration_id: i for i, s in enumerate(self.segments)}
        self._datasets: dict[int, object] = {}
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    def _dataset(self, num_frames: int):
        if num_frames not in self._datasets:
            # crop_size only configures the transform, which is not applied here
            self._datasets[num_frames] = clip_dataset(self.data, "val", num_frames=num_frames, crop_size=112,
                                                      train=False, segments=self.segments)
        return self._datasets[num_frames]

    def frames(self, narration_id: str, num_frames: int | None = None) -> np.ndarray:
        """The segment's `num_frames` (default `self.num_frames`) evaluation frames, (T, H, W, 3) uint8."""
        n = int(num_frames or self.num_frames)
        key = (narration_id, n)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if narration_id not in self._row:
            raise KeyError(f"segment {narration_id!r} is not among the explorer's {len(self.segments)} segments")
        dataset = self._dataset(n)
        row = self._row[narration_id]
        frames = np.asarray(dataset.source.read(self.segments[row], dataset.indices(row)), dtype=np.uint8)
        self._cache[key] = frames
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return frames

    def strip(self, narration_id: str, **kwargs) -> bytes:
        """The segment's frames as a PNG strip (`strip_png` arguments)."""
        return strip_png(self.frames(narration_id), **kwargs)

    def clip(self, narration_id: str, *, num_frames: int = 16, **kwargs) -> bytes:
        """The segment as a looping GIF of `num_frames` evaluation-style frames (`clip_gif` arguments)."""
        return clip_gif(self.frames(narration_id, num_frames), **kwargs)
