"""Writing the videos: AVION's chunked layout, H.264, the same bytes on any machine.

Each video is written as AVION's resized videos are laid out: `videos/P01/P01_01.MP4/0.MP4,
15.MP4, ...`, H.264 at 30 fps in 15-second chunks named by their start second (AVION
`avion/data/clip_dataset.py`). A chunk is encoded to a `.partial` name and renamed into place
when complete.

Rendered frames are converted to YUV 4:2:0 in integer arithmetic (`rgb_to_yuv420p`, so no
CPU-dependent scaler sits between the pixels and the encoder) and encoded with libx264
single-threaded and without macroblock-tree rate control, which makes the files
byte-identical across runs, worker counts and processes (with mbtree, the same frames gave
different files from one encode to the next).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np

from .config import SynthConfig
from .plan import VideoPlan
from .render import _Renderer

__all__ = ["rgb_to_yuv420p", "chunk_paths", "write_video"]


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB (H, W even) -> (3H/2) x W uint8 planar YUV 4:2:0 (PyAV's `yuv420p` array),
    BT.601 limited range in integer arithmetic, chroma from each 2 x 2 block's mean.

    Done here rather than by FFmpeg's scaler, whose SIMD paths depend on the CPU: integers make
    the encoder's input a function of the pixels alone, on any machine."""
    h, w, _ = rgb.shape
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs an even frame size, got {w}x{h}")
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    # 2 x 2 sums (0..1020), then the chroma rows of the BT.601 matrix with a 4x wider shift
    sr, sg, sb = (c.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3)) for c in (r, g, b))
    u = ((-38 * sr - 74 * sg + 112 * sb + 512) >> 10) + 128
    v = ((112 * sr - 94 * sg - 18 * sb + 512) >> 10) + 128
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = y
    out[h:].reshape(-1)[: h * w // 4] = u.reshape(-1)
    out[h:].reshape(-1)[h * w // 4:] = v.reshape(-1)
    return out


def _encode(frames: Iterable[np.ndarray], path: Path, size: int, fps: int, crf: int) -> int:
    import av  # imported here so that planning works without PyAV

    count = 0
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        # Byte-identical files need both: threads=1, and no macroblock-tree rate control, with
        # which libx264 gave different bitstreams for the same frames from one encode to the
        # next (measured on 64 x 64 clips, single-threaded). mbtree only moves bits between
        # frames at a given crf; what the model sees stays as sharp.
        stream.options = {"crf": str(crf), "preset": "fast", "threads": "1", "x264-params": "mbtree=0"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(rgb), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    return count


def chunk_paths(root: str | Path, video: VideoPlan, config: SynthConfig) -> list[Path]:
    """The chunk files of `video`: `videos/P01/P01_01.MP4/0.MP4`, `15.MP4`, ..."""
    per_chunk = config.fps * config.chunk_seconds
    folder = Path(root) / "videos" / video.participant_id / f"{video.video_id}.MP4"
    return [folder / f"{c * config.chunk_seconds}.MP4" for c in range(-(-video.num_frames // per_chunk))]


def write_video(video: VideoPlan, images: Mapping[int, np.ndarray] | np.ndarray, config: SynthConfig,
                root: str | Path) -> int:
    """Render and encode one video's chunks under `root`; returns the number of frames written.

    Each chunk is encoded to a `.partial` name and renamed into place when complete."""
    renderer = _Renderer(video, images, config)
    per_chunk = config.fps * config.chunk_seconds
    total = 0
    for c, path in enumerate(chunk_paths(root, video, config)):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        frames = (renderer.frame(i)[0] for i in range(c * per_chunk, min(video.num_frames, (c + 1) * per_chunk)))
        total += _encode(frames, tmp, config.size, config.fps, config.crf)
        os.replace(tmp, path)
    return total
