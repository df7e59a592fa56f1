"""Rendering: any frame of a planned video, with the ground truth, before the encoder.

A video is a textured world (its background, larger than the frame) viewed by a jittering
camera; each segment shows its Fashion-MNIST item, tinted, moving as its verb says
(`pose`: the one place where a verb's direction is decided), among static or moving
distractors. Where the verb slides the item, the camera follows it: the view pans across the
world (`_Pose.pan`), so the background and the static distractors move the other way while the
item keeps about its place in the frame. Frames are independent of each other, so
`render_video` can draw any subset of them, with the acted-on item's visible mask as ground
truth; `encode.write_video` draws the same frames for the files. `render_still` draws one
picture in the videos' style for image pretraining (`evitvid.data.images`).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import SynthConfig
from .plan import SegmentPlan, VideoPlan, _background_params, _tint
from .vocabulary import VERBS

__all__ = ["pose", "render_video", "render_still"]


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


@dataclass(frozen=True)
class _Pose:
    x: float            # item centre in the frame, relative to frame size (before camera jitter)
    y: float
    scale: float        # item side, relative
    angle: float        # degrees, clockwise on screen
    light: float        # multiplies the whole frame
    door: tuple[float, float, float, float] | None  # door rectangle (x0, y0, x1, y1), relative
    pan: float = 0.0    # the camera's horizontal offset from the segment's middle view, relative


def pose(seg: SegmentPlan, u: float) -> _Pose:
    """The acted-on item's state, and the camera's pan, at fraction `u` in [0, 1] of the segment.

    The paired verbs of `REVERSE_PAIRS` evaluate the same motion at `1 - u`: this is the one
    place where a verb's direction is decided. The motion pairs ("rotate", "slide") go at
    constant speed, so that each quarter of the segment shows a quarter of the motion.
    """
    spec = VERBS[seg.verb_class]
    w = 1.0 - u if spec.reverse else u
    m = seg.motion
    x, y, scale, angle, light, door, pan = seg.x, seg.y, seg.scale, seg.angle, 1.0, None, 0.0
    if spec.motion == "enter":
        reach = 0.75 * scale + 0.05  # half-diagonal plus a margin: fully out of the frame
        sides = [(-(x + reach), 0.0), ((1 - x) + reach, 0.0), (0.0, -(y + reach)), (0.0, (1 - y) + reach)]
        dx, dy = sides[int(m["side"])]
        away = (1 - w) ** 2  # decelerates into place: settles
        x, y = x + dx * away, y + dy * away
    elif spec.motion == "reveal":
        half = 0.6 * scale
        travel = 2 * half + 0.02
        dx, dy = [(-1, 0), (1, 0), (0, -1), (0, 1)][int(m["side"])]
        off = _smoothstep(w) * travel
        cx, cy = x + dx * off, y + dy * off
        door = (cx - half, cy - half, cx + half, cy + half)
    elif spec.motion == "light":
        light = m["low"] + (1 - m["low"]) * _smoothstep((w - 0.25) / 0.5)
    elif spec.motion == "approach":
        scale = scale * m["ratio"] ** (w - 0.5)
        y = y + 0.1 * (w - 0.5)
    elif spec.motion == "rotate":
        angle = angle + m["degrees"] * w
    elif spec.motion == "slide":
        # The item moves `span` to the right across the scene; the camera follows it, so that it
        # drifts only `drift` in the frame (symmetric about 0) while the scene pans the other way.
        x = x + m["drift"] * (w - 0.5)
        pan = (m["span"] - m["drift"]) * (w - 0.5)
    elif spec.motion == "shake":
        a = math.radians(m["axis"])
        d = m["amplitude"] * math.sin(2 * math.pi * m["periods"] * w + m["phase"])
        x, y = x + d * math.cos(a), y + d * math.sin(a)
    return _Pose(x, y, scale, angle, light, door, pan)


def _item_maps(img: np.ndarray) -> np.ndarray:
    """28x28 uint8 -> 2 x 900 float32: (alpha, shade) on a 30x30 grid with a zero border, flattened
    for fast bilinear gathers."""
    f = img.astype(np.float32) / 255
    maps = np.zeros((2, 30, 30), np.float32)
    maps[0, 1:29, 1:29] = np.clip((f - 0.04) / 0.16, 0, 1)  # the black background is transparent
    maps[1, 1:29, 1:29] = 0.35 + 0.65 * f                    # keep the item's own texture
    return maps.reshape(2, 900)


def _rasterize(maps: np.ndarray, cx: float, cy: float, side: float, angle: float, size: int):
    """Item of `side` pixels centred at (cx, cy), rotated `angle` degrees clockwise, clipped to
    the frame: (y0, x0, alpha, shade) or None when off-frame."""
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    half = 0.5 * side * (abs(c) + abs(s)) + 1
    x0, x1 = max(int(math.floor(cx - half)), 0), min(int(math.ceil(cx + half)), size)
    y0, y1 = max(int(math.floor(cy - half)), 0), min(int(math.ceil(cy + half)), size)
    if x0 >= x1 or y0 >= y1 or side <= 0:
        return None
    k = 28.0 / side
    xs = (np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - cx))[None, :]
    ys = (np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - cy))[:, None]
    # Source coordinates: the inverse of a clockwise (y-down) rotation and scaling; +14 centres
    # the 28-pixel item, +0.5 moves to the padded grid's pixel-centre indexing.
    u = xs * np.float32(c * k) + ys * np.float32(s * k) + np.float32(14.5)
    v = ys * np.float32(c * k) - xs * np.float32(s * k) + np.float32(14.5)
    np.clip(u, 0, 28.999, out=u)
    np.clip(v, 0, 28.999, out=v)
    i0, j0 = u.astype(np.int32), v.astype(np.int32)
    fu, fv = u - i0, v - j0
    idx = j0 * 30 + i0
    out = []
    for channel in maps:
        p00, p01, p10, p11 = (channel.take(idx + o) for o in (0, 1, 30, 31))
        top = p00 + (p01 - p00) * fu
        bottom = p10 + (p11 - p10) * fu
        out.append(top + (bottom - top) * fv)
    return y0, x0, out[0], out[1]


def _paste(canvas: np.ndarray, raster, tint: Sequence[float]) -> None:
    if raster is None:
        return
    y0, x0, alpha, shade = raster
    h, w = alpha.shape
    region = canvas[y0:y0 + h, x0:x0 + w]
    region += alpha[..., None] * (shade[..., None] * np.asarray(tint, np.float32) - region)


def _smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    grid = rng.random((cells + 1, cells + 1))
    pos = np.linspace(0, cells, n, endpoint=False)
    i = pos.astype(int)
    f = pos - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _background(params: Mapping[str, Any], size: int, n: int) -> np.ndarray:
    """The video's world: an n x n textured canvas the camera views `size` x `size` of."""
    rng = np.random.default_rng(params["seed"])
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) / size
    period, a = params["period"], math.radians(params["angle"])
    if params["kind"] == "noise":
        t = 0.7 * _smooth_noise(rng, n, max(2, n // max(4, size // 8))) + 0.3 * _smooth_noise(rng, n, 3)
    elif params["kind"] == "stripes":  # wood-like: stripes bent by smooth noise
        warp = _smooth_noise(rng, n, 4)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * ((xx * math.cos(a) + yy * math.sin(a)) / period + 1.5 * warp))
    else:  # tiles with grout lines
        gx, gy = np.floor(xx / period), np.floor(yy / period)
        t = 0.35 + 0.3 * ((gx + gy) % 2) + 0.15 * _smooth_noise(rng, n, 6)
        fx, fy = xx / period - gx, yy / period - gy
        t = np.where((np.minimum(fx, 1 - fx) < 0.04) | (np.minimum(fy, 1 - fy) < 0.04), 0.05, t)
    t = t + rng.normal(0, 0.03, size=(n, n))  # static grain
    c0, c1 = (np.asarray(c, np.float64) for c in params["colors"])
    return np.clip(c0 + (c1 - c0) * t[..., None], 0, 1).astype(np.float32)


def _door(size_px: int, color: Sequence[float]) -> np.ndarray:
    door = np.empty((size_px, size_px, 3), np.float32)
    door[:] = np.asarray(color, np.float32)
    b = max(1, size_px // 14)
    door[:b], door[-b:], door[:, :b], door[:, -b:] = (0.6 * door[:b], 0.6 * door[-b:], 0.6 * door[:, :b],
                                                      0.6 * door[:, -b:])
    h0, h1 = size_px // 2 - max(1, size_px // 10), size_px // 2 + max(1, size_px // 10)
    door[h0:h1, size_px - 4 * b: size_px - 2 * b] = 0.15  # handle
    return door


class _Renderer:
    """Draws any frame of one video from its plan (frames are independent of each other)."""

    def __init__(self, video: VideoPlan, images: Mapping[int, np.ndarray] | np.ndarray, cfg: SynthConfig) -> None:
        self.video, self.images, self.cfg = video, images, cfg
        self.size = s = cfg.size
        self.margin = int(math.ceil(cfg.jitter * s)) + 1
        self.world = _background(video.background, s, 2 * s + 2 * self.margin)
        self.starts = np.array([seg.start for seg in video.segments])
        self.stops = np.array([seg.stop for seg in video.segments])
        self._maps: dict[int, np.ndarray] = {}
        self._scene: tuple[int, np.ndarray] | None = None

    def maps(self, item: int) -> np.ndarray:
        if item not in self._maps:
            self._maps[item] = _item_maps(np.asarray(self.images[item]))
        return self._maps[item]

    def locate(self, t: float) -> tuple[int, float]:
        """(segment index, u) shown at time t: in a pause, the previous segment's end state
        until the pause's midpoint, then the next segment's start state."""
        k = int(np.searchsorted(self.starts, t, side="right")) - 1
        if k < 0:
            return 0, 0.0
        if t <= self.stops[k]:
            return k, (t - self.starts[k]) / (self.stops[k] - self.starts[k])
        if k + 1 < len(self.starts) and t >= (self.stops[k] + self.starts[k + 1]) / 2:
            return k + 1, 0.0
        return k, 1.0

    def camera(self, t: float) -> tuple[int, int]:
        shift = [0.0, 0.0]
        for axis, amp, freq, phase in self.video.jitter:
            shift[int(axis)] += amp * math.sin(2 * math.pi * freq * t + phase)
        return int(round(shift[0] * self.size)), int(round(shift[1] * self.size))

    def scene(self, k: int) -> tuple[np.ndarray, int, int]:
        """World canvas of segment k with its static distractors drawn in, and the origin of its
        middle view."""
        seg = self.video.segments[k]
        s, m = self.size, self.margin
        ox = m + int(round(seg.view[0] * (self.world.shape[1] - s - 2 * m)))
        oy = m + int(round(seg.view[1] * (self.world.shape[0] - s - 2 * m)))
        if self._scene is None or self._scene[0] != k:
            world = self.world.copy()
            for d in seg.distractors:
                if not d.moving:  # in the whole world: a panning camera sees beyond the middle view
                    _paste(world, _rasterize(self.maps(d.item), ox + d.x * s, oy + d.y * s, d.scale * s, d.angle,
                                             world.shape[0]), d.tint)
            self._scene = (k, world)
        return self._scene[1], ox, oy

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(H x W x 3 uint8 frame, H x W float32 visible mask of the acted-on item)."""
        t = index / self.cfg.fps
        k, u = self.locate(t)
        seg = self.video.segments[k]
        s = self.size
        world, ox, oy = self.scene(k)
        u = float(np.clip(u, 0.0, 1.0))
        p = pose(seg, u)
        jx, jy = self.camera(t)
        px = int(round(p.pan * s))  # whole pixels, as the jitter: the background is not resampled
        if not 0 <= ox + jx + px <= world.shape[1] - s:
            raise ValueError(f"segment {seg.narration_id}: the camera's pan ({p.pan:+.3f} of the frame from view "
                             f"{seg.view}) leaves the video's background; plan the view with room for it "
                             f"(plan.plan_dataset does)")
        img = world[oy + jy: oy + jy + s, ox + jx + px: ox + jx + px + s].copy()
        for d in seg.distractors:
            if d.moving:
                dx, dy = (d.x + d.dx * (u - 0.5)) * s - jx - px, (d.y + d.dy * (u - 0.5)) * s - jy
                _paste(img, _rasterize(self.maps(d.item), dx, dy, d.scale * s, d.angle + d.spin * (u - 0.5), s),
                       d.tint)
        raster = _rasterize(self.maps(seg.item), p.x * s - jx, p.y * s - jy, p.scale * s, p.angle, s)
        _paste(img, raster, seg.tint)
        mask = np.zeros((s, s), np.float32)
        if raster is not None:
            y0, x0, alpha, _ = raster
            mask[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]] = alpha
        if p.door is not None:
            side = int(round((p.door[2] - p.door[0]) * s))
            dx0, dy0 = int(round(p.door[0] * s)) - jx, int(round(p.door[1] * s)) - jy
            door = _door(side, (seg.motion["door_r"], seg.motion["door_g"], seg.motion["door_b"]))
            x0, y0, x1, y1 = max(dx0, 0), max(dy0, 0), min(dx0 + side, s), min(dy0 + side, s)
            if x0 < x1 and y0 < y1:
                img[y0:y1, x0:x1] = door[y0 - dy0: y1 - dy0, x0 - dx0: x1 - dx0]
                mask[y0:y1, x0:x1] = 0
        img *= seg.gain * p.light
        return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), mask


def render_still(image: np.ndarray, rng: np.random.Generator, size: int, scale: int | None = None) -> np.ndarray:
    """One picture in the videos' style, for image pretraining: a 28x28 item, tinted, scaled and
    turned as the videos' items are, at a random place on a textured background of the
    videos' kind. Returns `size` x `size` x 3 uint8.

    `scale` (default `size`) is the side of the video frame whose style the picture imitates:
    the item and the background's texture have the sizes they have in a `scale`-pixel frame,
    and a smaller `size` keeps a window around the item (the item keeps inside it as it does
    in a full frame, where its centre lies in the middle 40 %).
    """
    scale = size if scale is None else int(scale)
    if not 0 < size <= scale:
        raise ValueError(f"render_still: size must be positive and at most scale, got size={size}, scale={scale}")
    canvas = _background(_background_params(rng), scale, size)
    side = float(rng.uniform(0.42, 0.52)) * scale
    centre = rng.uniform(0.3, 0.7, size=2)
    if scale == size:
        cx, cy = centre * size
    else:  # the same draw, its range narrowed so the largest item stays inside the window
        reach = min(0.2 * size, max(0.0, (size - 0.52 * scale) / 2))
        cx, cy = size / 2 + (centre - 0.5) / 0.2 * reach
    _paste(canvas, _rasterize(_item_maps(np.asarray(image)), cx, cy, side, float(rng.uniform(-15, 15)), size),
           _tint(rng, (0.0, 0.6), (0.75, 1.0)))
    canvas *= float(rng.uniform(0.85, 1.1))
    return (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_video(video: VideoPlan, images: Mapping[int, np.ndarray] | np.ndarray, config: SynthConfig,
                 frame_indices: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth, without the encoder: frames (N x H x W x 3 uint8) and the acted-on item's
    visible mask (N x H x W float32 in [0, 1]) at `frame_indices` (default: all) of the files'
    frame grid. `images` maps t10k indices to 28x28 images (e.g. the t10k array itself)."""
    r = _Renderer(video, images, config)
    idx = range(video.num_frames) if frame_indices is None else list(frame_indices)
    frames, masks = zip(*(r.frame(int(i)) for i in idx)) if len(idx) else ((), ())
    s = config.size
    return (np.stack(frames) if frames else np.zeros((0, s, s, 3), np.uint8),
            np.stack(masks) if masks else np.zeros((0, s, s), np.float32))
