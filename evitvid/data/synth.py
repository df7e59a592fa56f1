"""A synthetic EPIC-KITCHENS-100 stand-in, embedded: `python -m evitvid synth --preset NAME --out DIR`.

The study asks whether a model that sees frame order (the I3D-inflated 3D EfficientViT)
beats one that averages per-frame features, and whether image pretraining helps. EK100
itself (700 hours of video) cannot be trained on a 2-core CPU, so this module writes a small
data set with the *same files* EK100 has, so that the same loaders read both:

* the annotation CSVs with EK100's 15 columns, formats and row order
  (`EPIC_100_{train,validation}.csv`, the class files, `EPIC_100_video_info.csv`);
* AVION's chunked video layout: `videos/P01/P01_01.MP4/0.MP4, 15.MP4, ...`, H.264 at 30 fps
  in 15-second chunks named by their start second (AVION `avion/data/clip_dataset.py`);
* `manifest.json`, written last and atomically: its presence with matching parameters means
  the folder is complete, and a rerun skips generation.

Content, built so that the study's questions have answers:

* **Nouns** are real images: Fashion-MNIST items from the t10k split only (the train split is
  the image-pretraining set, see `evitvid.data.fashion_mnist`), tinted, on textured
  backgrounds that vary per video, with distractor items and camera jitter.
* **Verbs** are motions of the item over the segment. Most come in pairs that are exact
  time-reversals of one motion (`REVERSE_PAIRS`: put/take, open/close, ...): a clip of one
  played backwards is a clip of the other, drawn from the same distribution, so a model blind
  to frame order cannot beat chance within a pair. `shake` and `hold` do not depend on order.
  `HFLIP_SWAP` lists the verbs a horizontal flip turns into each other (rotations, move-left /
  move-right): flip augmentation must swap those labels.
* **Shape**: long-tailed (Zipf-like) verb and noun frequencies, every class present in both
  splits when they are big enough, segment lengths from 10 annotation frames to several
  hundred (the motion spans the segment: long segments are slow motions), gaps between
  segments, some segments crossing a 15-s chunk boundary, train/validation split by video.

Frame numbers follow the convention measured on the real `EPIC_100_validation.csv`:
`frame = floor(seconds * round(fps))` (99.5 % of rows of 59.94-fps videos; on that file even
29.97/47.95/90-fps videos count at 60, a quirk not imitated here). The synthetic videos are
"recorded" at 59.94 or 50 fps (`EPIC_100_video_info.csv` says which), so their frame numbers
count at 60 or 50 frames per second while the files are 30 fps: loaders must go through the
timestamps (or the fps), as on EK100.

Everything is a function of the seed: a plan (`plan_dataset`) drawn with numpy Generators
(one per video, from `SeedSequence(seed).spawn`), rendered frame by frame (`render_video`,
which also returns ground-truth masks of the item), converted to YUV 4:2:0 in integer
arithmetic (`rgb_to_yuv420p`, so no CPU-dependent scaler sits between the pixels and the
encoder) and encoded with libx264 single-threaded and without macroblock-tree rate control,
which makes the files byte-identical across runs, worker counts and processes (with mbtree,
the same frames gave different files from one encode to the next).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from evitvid.atomic import write_bytes_atomic
from evitvid.data.fashion_mnist import CLASSES as FASHION_CLASSES
from evitvid.data.fashion_mnist import load_fashion_mnist

__all__ = [
    "GENERATOR_VERSION",
    "ANNOTATION_COLUMNS",
    "VerbSpec",
    "NounSpec",
    "VERBS",
    "NOUNS",
    "REVERSE_PAIRS",
    "render_still",
    "rgb_to_yuv420p",
    "HFLIP_SWAP",
    "SynthConfig",
    "PRESETS",
    "Distractor",
    "SegmentPlan",
    "VideoPlan",
    "DatasetPlan",
    "resolve_config",
    "plan_dataset",
    "pose",
    "render_video",
    "chunk_paths",
    "annotation_tables",
    "write_annotations",
    "write_video",
    "make_dataset",
    "read_manifest",
    "is_complete",
    "default_out_dir",
    "annotation_rate",
    "seconds_to_frame",
    "format_timestamp",
]

# Bump when a change to planning or rendering changes the output: cached folders regenerate.
GENERATOR_VERSION = 2  # 2: YUV by rgb_to_yuv420p, libx264 without mbtree (deterministic bytes)
_GENERATOR = "evitvid.data.synth"

ANNOTATION_COLUMNS: tuple[str, ...] = (
    "narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
    "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
    "noun_class", "all_nouns", "all_noun_classes",
)
_INCOMPLETE = ".synth-incomplete"  # marker: a generation started here and has not finished


# --------------------------------------------------------------------------------------------
# Label spaces
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerbSpec:
    """A verb class: EK100-style key, instances and category, and the motion that shows it.

    `reverse` plays `motion` backwards: two verbs with the same motion and opposite `reverse`
    are exact time-reversals of each other.
    """

    key: str
    instances: tuple[str, ...]
    category: str
    motion: str
    reverse: bool = False


@dataclass(frozen=True)
class NounSpec:
    """A noun class: EK100-style key, instances, category, and its Fashion-MNIST label."""

    key: str
    instances: tuple[str, ...]
    category: str
    fashion_label: int


# Table order is class id order and, as in EK100, roughly frequency order (see _class_weights).
VERBS: tuple[VerbSpec, ...] = (
    VerbSpec("take", ("take", "pick-up", "grab", "get"), "retrieve", "enter", reverse=True),
    VerbSpec("put", ("put", "put-down", "place", "leave"), "leave", "enter"),
    VerbSpec("open", ("open", "open-up"), "access", "reveal"),
    VerbSpec("close", ("close", "shut"), "block", "reveal", reverse=True),
    VerbSpec("turn-on", ("turn-on", "switch-on"), "access", "light"),
    VerbSpec("turn-off", ("turn-off", "switch-off"), "block", "light", reverse=True),
    VerbSpec("shake", ("shake", "wiggle"), "manipulate", "shake"),
    VerbSpec("push", ("push", "push-away"), "manipulate", "approach", reverse=True),
    VerbSpec("pull", ("pull", "pull-towards"), "manipulate", "approach"),
    VerbSpec("rotate-clockwise", ("rotate-clockwise", "turn-clockwise"), "manipulate", "rotate"),
    VerbSpec("rotate-anticlockwise", ("rotate-anticlockwise", "turn-anticlockwise"), "manipulate", "rotate",
             reverse=True),
    VerbSpec("hold", ("hold", "keep"), "manipulate", "hold"),
    VerbSpec("move-left", ("move-left", "slide-left"), "transition", "slide", reverse=True),
    VerbSpec("move-right", ("move-right", "slide-right"), "transition", "slide"),
)

NOUNS: tuple[NounSpec, ...] = (
    NounSpec("bag", ("bag", "handbag"), "containers", 8),
    NounSpec("t-shirt", ("t-shirt", "top", "tee"), "clothes", 0),
    NounSpec("sneaker", ("sneaker", "trainer", "shoe:sport"), "footwear", 7),
    NounSpec("trouser", ("trouser", "trousers", "jeans"), "clothes", 1),
    NounSpec("dress", ("dress",), "clothes", 3),
    NounSpec("pullover", ("pullover", "jumper", "sweater"), "clothes", 2),
    NounSpec("shirt", ("shirt", "blouse"), "clothes", 6),
    NounSpec("coat", ("coat", "jacket"), "clothes", 4),
    NounSpec("sandal", ("sandal",), "footwear", 5),
    NounSpec("boot:ankle", ("boot:ankle", "boot"), "footwear", 9),
)


def _pairs() -> tuple[tuple[int, int], ...]:
    pairs = []
    for i, a in enumerate(VERBS):
        for j, b in enumerate(VERBS):
            if i < j and a.motion == b.motion:
                if a.reverse == b.reverse:
                    raise AssertionError(f"verbs {a.key} and {b.key} share a motion without being reversals")
                pairs.append((i, j))
    return tuple(pairs)


# (verb_class, verb_class) pairs that are each other's time-reversal.
REVERSE_PAIRS: tuple[tuple[int, int], ...] = _pairs()
_VERB_ID = {v.key: i for i, v in enumerate(VERBS)}
# A horizontal flip turns a clockwise rotation into an anticlockwise one and left into right.
HFLIP_SWAP: dict[int, int] = {
    **{_VERB_ID["rotate-clockwise"]: _VERB_ID["rotate-anticlockwise"],
       _VERB_ID["rotate-anticlockwise"]: _VERB_ID["rotate-clockwise"]},
    **{_VERB_ID["move-left"]: _VERB_ID["move-right"], _VERB_ID["move-right"]: _VERB_ID["move-left"]},
}


def _class_weights(num: int, exponent: float, pairs: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Zipf weights over class ids (rank = id + 1); the two verbs of a pair share their mean,
    so that frequency alone cannot tell a verb from its reversal."""
    w = np.arange(1, num + 1, dtype=np.float64) ** -float(exponent)
    for i, j in pairs:
        w[i] = w[j] = (w[i] + w[j]) / 2
    return w / w.sum()


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SynthConfig:
    """Every generation parameter (the seed aside). Times in seconds; lengths relative to `size`."""

    num_participants: int = 8
    num_videos: int = 64
    segments_per_video: int = 32     # mean; each video draws 0.6x to 1.4x this
    val_fraction: float = 0.25       # of the videos
    size: int = 112                  # frame height and width (pixels, even)
    segment_median: float = 1.8      # segment length: log-normal median (s) ...
    segment_sigma: float = 0.6       # ... and log-sd, clipped to [min_segment_frames, segment_max]
    segment_max: float = 8.0
    min_segment_frames: int = 10     # annotation frames (at 60 or 50 per second)
    gap_min: float = 0.2             # pause before each segment and after the last (s)
    gap_max: float = 1.2
    verb_zipf: float = 1.0           # Zipf exponents of the class frequencies
    noun_zipf: float = 1.0
    fps_50_fraction: float = 0.25    # videos "recorded" at 50 fps, the rest at 59.94
    max_distractors: int = 3
    jitter: float = 0.03             # camera shake amplitude (fraction of size)
    fps: int = 30                    # of the written files (AVION's resized videos)
    chunk_seconds: int = 15          # AVION's chunk length
    crf: int = 20                    # libx264 quality

    def __post_init__(self) -> None:
        checks = [
            (self.num_videos >= 1, "num_videos must be >= 1"),
            (self.num_participants >= 1, "num_participants must be >= 1"),
            (self.segments_per_video >= 1, "segments_per_video must be >= 1"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.size >= 32 and self.size % 2 == 0, "size must be even and >= 32 (H.264 4:2:0)"),
            (self.segment_median > 0 and self.segment_sigma >= 0, "segment_median > 0, segment_sigma >= 0"),
            (self.segment_max * 50 >= self.min_segment_frames + 1, "segment_max too short for min_segment_frames"),
            (self.min_segment_frames >= 1, "min_segment_frames must be >= 1"),
            (0 < self.gap_min <= self.gap_max, "need 0 < gap_min <= gap_max"),
            (0 <= self.fps_50_fraction <= 1, "fps_50_fraction must be in [0, 1]"),
            (self.max_distractors >= 0, "max_distractors must be >= 0"),
            (0 <= self.jitter <= 0.1, "jitter must be in [0, 0.1]"),
            (self.fps >= 1 and self.chunk_seconds >= 1, "fps and chunk_seconds must be >= 1"),
            (0 <= self.crf <= 51, "crf must be in [0, 51]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SynthConfig: {message} ({self})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, SynthConfig] = {
    # For tests: ~40 segments, 4 videos of 2-3 chunks, 64x64; writes in a few seconds.
    "tiny": SynthConfig(num_participants=2, num_videos=4, segments_per_video=10, size=64),
    # For the book: ~1,500 train / ~500 validation segments, 112x112.
    "default": SynthConfig(),
}


def resolve_config(preset: str = "tiny", **overrides: Any) -> SynthConfig:
    """The preset's `SynthConfig` with `overrides` applied; unknown names raise `TypeError`."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    names = {f.name for f in dataclasses.fields(SynthConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown synth parameter(s) {unknown}; valid: {sorted(names)}")
    return dataclasses.replace(PRESETS[preset], **overrides)


# --------------------------------------------------------------------------------------------
# Time conventions
# --------------------------------------------------------------------------------------------

def annotation_rate(native_fps: float) -> int:
    """Frames per second the CSV frame numbers count at for a video recorded at `native_fps`."""
    return int(round(native_fps))


def seconds_to_frame(seconds: float, native_fps: float) -> int:
    """EK100's frame number for a time: `floor(seconds * round(native_fps))` (see module doc)."""
    return int(math.floor(seconds * annotation_rate(native_fps) + 1e-6))


def format_timestamp(seconds: float, decimals: int = 2) -> str:
    """`HH:MM:SS.ff` (EK100's start/stop format; `decimals=3` for narration_timestamp)."""
    units = int(round(seconds * 10 ** decimals))
    whole, frac = divmod(units, 10 ** decimals)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{frac:0{decimals}d}"


# --------------------------------------------------------------------------------------------
# Plan: every random choice, drawn up front
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Distractor:
    """Another Fashion-MNIST item in the scene, static or drifting (positions relative to size)."""

    item: int                        # t10k index
    tint: tuple[float, float, float]
    x: float                         # position at the segment's midpoint
    y: float
    scale: float
    angle: float                     # degrees, clockwise
    vx: float = 0.0                  # drift per second
    vy: float = 0.0


@dataclass(frozen=True)
class SegmentPlan:
    """One action segment: its annotation row and how to draw it.

    Times are integers (centiseconds, milliseconds for the narration) so that the CSV
    strings and the frame numbers are exact. `x, y, scale` are relative to the frame size.
    """

    narration_id: str
    start_cs: int
    stop_cs: int
    narration_ms: int
    verb_class: int
    noun_class: int
    verb: str                         # the instance written in the `verb` column
    noun: str
    item: int                         # t10k index of the acted-on item
    tint: tuple[float, float, float]
    x: float
    y: float
    scale: float
    angle: float
    gain: float                       # scene brightness
    view: tuple[float, float]         # where in the video's background the camera looks
    motion: dict[str, float] = field(default_factory=dict)
    distractors: tuple[Distractor, ...] = ()

    @property
    def start(self) -> float:
        return self.start_cs / 100

    @property
    def stop(self) -> float:
        return self.stop_cs / 100


@dataclass(frozen=True)
class VideoPlan:
    video_id: str
    participant_id: str
    split: str                        # "train" or "validation"
    native_fps: float
    num_frames: int                   # frames in the files (at config.fps)
    background: dict[str, Any]
    jitter: tuple[tuple[float, float, float, float], ...]  # (axis, amplitude, frequency, phase)
    segments: tuple[SegmentPlan, ...]

    def duration(self, fps: int) -> float:
        return self.num_frames / fps


@dataclass(frozen=True)
class DatasetPlan:
    preset: str
    seed: int
    config: SynthConfig
    videos: tuple[VideoPlan, ...]

    def split_videos(self, split: str) -> list[VideoPlan]:
        return [v for v in self.videos if v.split == split]

    def items(self) -> set[int]:
        """Every t10k index drawn in any video (acted-on items and distractors)."""
        return {i for v in self.videos for s in v.segments for i in (s.item, *(d.item for d in s.distractors))}


def _draw_labels(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    # Every class once when there is room (so each split has them all), the rest i.i.d.
    k = len(weights)
    if n >= k:
        labels = np.concatenate([np.arange(k), rng.choice(k, size=n - k, p=weights)])
        rng.shuffle(labels)
        return labels
    return rng.choice(k, size=n, p=weights)


def _tint(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> tuple[float, float, float]:
    h, s, v = rng.random(), rng.uniform(*sat), rng.uniform(*val)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return tuple(round(float(c), 4) for c in rgb)


def _motion_params(rng: np.random.Generator, motion: str) -> dict[str, float]:
    if motion == "enter":      # put: the item comes in from one side and settles
        return {"side": int(rng.integers(4))}
    if motion == "reveal":     # open: a door slides off the item
        door = _tint(rng, (0.1, 0.5), (0.35, 0.7))
        return {"side": int(rng.integers(4)), "door_r": door[0], "door_g": door[1], "door_b": door[2]}
    if motion == "light":      # turn-on: the scene brightens
        return {"low": round(float(rng.uniform(0.15, 0.35)), 4)}
    if motion == "approach":   # pull: the item grows (comes closer)
        return {"ratio": round(float(rng.uniform(2.0, 3.0)), 4)}
    if motion == "rotate":     # clockwise by 120-300 degrees
        return {"degrees": round(float(rng.uniform(120, 300)), 3)}
    if motion == "slide":      # move-right across 35-45 % of the frame
        return {"span": round(float(rng.uniform(0.35, 0.45)), 4)}
    if motion == "shake":      # 1.5-2.5 oscillations along a random axis
        return {"axis": round(float(rng.uniform(0, 180)), 3), "amplitude": round(float(rng.uniform(0.06, 0.1)), 4),
                "periods": round(float(rng.uniform(1.5, 2.5)), 4), "phase": round(float(rng.uniform(0, 2 * np.pi)), 4)}
    if motion == "hold":
        return {}
    raise ValueError(f"unknown motion {motion!r}")


def _segment_length_cs(rng: np.random.Generator, cfg: SynthConfig, start_cs: int, rate: int) -> int:
    seconds = float(np.clip(rng.lognormal(math.log(cfg.segment_median), cfg.segment_sigma), 0.0, cfg.segment_max))
    length = max(1, int(math.ceil(seconds * 100)))
    # At least min_segment_frames annotation frames, with frame numbers as the CSV will hold them.
    while (start_cs + length) * rate // 100 - start_cs * rate // 100 < cfg.min_segment_frames:
        length += 1
    return length


def _background_params(rng: np.random.Generator) -> dict[str, Any]:
    kind = str(rng.choice(["noise", "stripes", "tiles"]))
    c0, c1 = _tint(rng, (0.1, 0.7), (0.2, 0.45)), _tint(rng, (0.1, 0.7), (0.35, 0.6))
    return {"kind": kind, "colors": [list(c0), list(c1)], "seed": int(rng.integers(2**31)),
            "period": round(float(rng.uniform(0.15, 0.4)), 4), "angle": round(float(rng.uniform(0, 180)), 3)}


def _pick_position(rng: np.random.Generator, avoid: tuple[float, float], min_dist: float) -> tuple[float, float]:
    for _ in range(20):
        x, y = rng.uniform(0.1, 0.9, size=2)
        if math.hypot(x - avoid[0], y - avoid[1]) >= min_dist:
            break
    return round(float(x), 4), round(float(y), 4)


def plan_dataset(preset: str = "tiny", seed: int = 0, **overrides: Any) -> DatasetPlan:
    """Every random choice of the data set (layout, labels, items, motions), without drawing.

    Only Fashion-MNIST's t10k split is read. The layout, labels and items come from one
    Generator; each video's scene and motions from its own (`SeedSequence(seed).spawn`).
    """
    cfg = resolve_config(preset, **overrides)
    _, fm_labels = load_fashion_mnist("t10k")
    root_seq = np.random.SeedSequence(seed)
    main_seq, video_seqs = root_seq.spawn(1)[0], root_seq.spawn(cfg.num_videos)
    rng = np.random.default_rng(main_seq)

    # Videos: participants round-robin; validation videos and 50-fps videos chosen at random.
    nv = cfg.num_videos
    num_participants = min(cfg.num_participants, nv)
    n_val = 0 if nv == 1 or cfg.val_fraction == 0 else int(np.clip(round(cfg.val_fraction * nv), 1, nv - 1))
    is_val = np.zeros(nv, bool)
    is_val[rng.choice(nv, size=n_val, replace=False)] = True
    n50 = int(round(cfg.fps_50_fraction * nv))
    if cfg.fps_50_fraction > 0 and nv >= 2:
        n50 = max(n50, 1)
    is50 = np.zeros(nv, bool)
    is50[rng.choice(nv, size=min(n50, nv), replace=False)] = True
    counts = np.maximum(1, np.round(cfg.segments_per_video * rng.uniform(0.6, 1.4, size=nv))).astype(int)
    participant = [k % num_participants for k in range(nv)]
    video_ids = []
    seen: dict[int, int] = {}
    for p in participant:
        seen[p] = seen.get(p, 0) + 1
        video_ids.append(f"P{p + 1:02d}_{seen[p]:02d}")

    # Labels per split: long-tailed, every class present when the split is big enough.
    verb_w = _class_weights(len(VERBS), cfg.verb_zipf, REVERSE_PAIRS)
    noun_w = _class_weights(len(NOUNS), cfg.noun_zipf)
    labels: dict[bool, Iterator[tuple[int, int]]] = {}
    for val in (False, True):
        n = int(counts[is_val == val].sum())
        labels[val] = iter(zip(_draw_labels(rng, n, verb_w).tolist(), _draw_labels(rng, n, noun_w).tolist()))

    # Image pools: t10k indices per Fashion-MNIST label, split so no image is in both splits.
    pools: dict[tuple[bool, int], np.ndarray] = {}
    for label in range(len(FASHION_CLASSES)):
        idx = rng.permutation(np.flatnonzero(fm_labels == label))
        n_val_img = max(1, int(round(len(idx) * max(cfg.val_fraction, 0.1))))
        pools[(False, label)], pools[(True, label)] = idx[n_val_img:], idx[:n_val_img]
    cursor = {key: 0 for key in pools}

    def next_item(val: bool, label: int) -> int:
        pool = pools[(val, label)]
        item = int(pool[cursor[(val, label)] % len(pool)])  # wraps only for very large configs
        cursor[(val, label)] += 1
        return item

    videos = []
    for k in range(nv):
        vrng = np.random.default_rng(video_seqs[k])
        val = bool(is_val[k])
        native_fps = 50.0 if is50[k] else 60000 / 1001
        rate = annotation_rate(native_fps)
        segments = []
        now_cs = 0
        for j in range(int(counts[k])):
            verb_class, noun_class = next(labels[val])
            verb, noun = VERBS[verb_class], NOUNS[noun_class]
            item = next_item(val, noun.fashion_label)
            start_cs = now_cs + int(round(vrng.uniform(cfg.gap_min, cfg.gap_max) * 100))
            stop_cs = start_cs + _segment_length_cs(vrng, cfg, start_cs, rate)
            now_cs = stop_cs
            narration_ms = max(0, start_cs * 10 + int(vrng.integers(-400, 600)))
            verb_text = str(vrng.choice(verb.instances))
            noun_text = str(vrng.choice(noun.instances))
            x, y = (round(float(v), 4) for v in vrng.uniform(0.35, 0.65, size=2))
            angle = round(float(vrng.uniform(-15, 15)), 3)
            if verb.motion == "slide":  # keep the whole path inside the frame
                x = round(float(vrng.uniform(0.45, 0.55)), 4)
            if verb.motion == "rotate":
                angle = round(float(vrng.uniform(0, 360)), 3)
            distractors = []
            others = [lab for lab in range(len(FASHION_CLASSES)) if lab != noun.fashion_label]
            for _ in range(int(vrng.integers(cfg.max_distractors + 1))):
                dx, dy = _pick_position(vrng, (x, y), 0.35)
                drift = vrng.random() < 0.5
                speed, heading = vrng.uniform(0.02, 0.08), vrng.uniform(0, 2 * np.pi)
                pool = pools[(val, int(vrng.choice(others)))]
                distractors.append(Distractor(
                    item=int(pool[vrng.integers(len(pool))]), tint=_tint(vrng, (0.0, 0.7), (0.6, 1.0)),
                    x=dx, y=dy, scale=round(float(vrng.uniform(0.22, 0.32)), 4),
                    angle=round(float(vrng.uniform(-30, 30)), 3),
                    vx=round(float(speed * math.cos(heading)), 4) if drift else 0.0,
                    vy=round(float(speed * math.sin(heading)), 4) if drift else 0.0))
            segments.append(SegmentPlan(
                narration_id=f"{video_ids[k]}_{j}", start_cs=start_cs, stop_cs=stop_cs, narration_ms=narration_ms,
                verb_class=verb_class, noun_class=noun_class, verb=verb_text, noun=noun_text, item=item,
                tint=_tint(vrng, (0.0, 0.6), (0.75, 1.0)), x=x, y=y,
                scale=round(float(vrng.uniform(0.42, 0.52)), 4), angle=angle,
                gain=round(float(vrng.uniform(0.85, 1.1)), 4),
                view=(round(float(vrng.random()), 4), round(float(vrng.random()), 4)),
                motion=_motion_params(vrng, verb.motion), distractors=tuple(distractors)))
        end_cs = now_cs + int(round(vrng.uniform(cfg.gap_min, cfg.gap_max) * 100))
        jitter = []
        for axis in (0, 1):
            amps = vrng.dirichlet(np.ones(3)) * cfg.jitter * vrng.uniform(0.3, 1.0)
            for a in amps:
                jitter.append((axis, round(float(a), 5), round(float(vrng.uniform(0.2, 1.5)), 4),
                               round(float(vrng.uniform(0, 2 * np.pi)), 4)))
        videos.append(VideoPlan(
            video_id=video_ids[k], participant_id=video_ids[k][:3], split="validation" if val else "train",
            native_fps=native_fps, num_frames=-(-end_cs * cfg.fps // 100), background=_background_params(vrng),
            jitter=tuple(jitter), segments=tuple(segments)))
    videos.sort(key=lambda v: v.video_id)
    return DatasetPlan(preset=preset, seed=seed, config=cfg, videos=tuple(videos))


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


@dataclass(frozen=True)
class _Pose:
    x: float            # item centre, relative to frame size (before camera jitter)
    y: float
    scale: float        # item side, relative
    angle: float        # degrees, clockwise on screen
    light: float        # multiplies the whole frame
    door: tuple[float, float, float, float] | None  # door rectangle (x0, y0, x1, y1), relative


def pose(seg: SegmentPlan, u: float) -> _Pose:
    """The acted-on item's state at fraction `u` in [0, 1] of the segment.

    The paired verbs of `REVERSE_PAIRS` evaluate the same motion at `1 - u`: this is the one
    place where a verb's direction is decided.
    """
    spec = VERBS[seg.verb_class]
    w = 1.0 - u if spec.reverse else u
    m = seg.motion
    x, y, scale, angle, light, door = seg.x, seg.y, seg.scale, seg.angle, 1.0, None
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
        x = x + m["span"] * (w - 0.5)
    elif spec.motion == "shake":
        a = math.radians(m["axis"])
        d = m["amplitude"] * math.sin(2 * math.pi * m["periods"] * w + m["phase"])
        x, y = x + d * math.cos(a), y + d * math.sin(a)
    return _Pose(x, y, scale, angle, light, door)


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
        """World canvas of segment k with its static distractors drawn in, and the view origin."""
        seg = self.video.segments[k]
        s, m = self.size, self.margin
        ox = m + int(round(seg.view[0] * (self.world.shape[1] - s - 2 * m)))
        oy = m + int(round(seg.view[1] * (self.world.shape[0] - s - 2 * m)))
        if self._scene is None or self._scene[0] != k:
            world = self.world.copy()
            for d in seg.distractors:
                if d.vx == 0 and d.vy == 0:
                    sub = world[oy - m: oy + s + m, ox - m: ox + s + m]
                    _paste(sub, _rasterize(self.maps(d.item), d.x * s + m, d.y * s + m, d.scale * s, d.angle,
                                           s + 2 * m), d.tint)
            self._scene = (k, world)
        return self._scene[1], ox, oy

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(H x W x 3 uint8 frame, H x W float32 visible mask of the acted-on item)."""
        t = index / self.cfg.fps
        k, u = self.locate(t)
        seg = self.video.segments[k]
        s = self.size
        world, ox, oy = self.scene(k)
        jx, jy = self.camera(t)
        img = world[oy + jy: oy + jy + s, ox + jx: ox + jx + s].copy()
        mid = (seg.start + seg.stop) / 2
        for d in seg.distractors:
            if d.vx != 0 or d.vy != 0:
                dx, dy = (d.x + d.vx * (t - mid)) * s - jx, (d.y + d.vy * (t - mid)) * s - jy
                _paste(img, _rasterize(self.maps(d.item), dx, dy, d.scale * s, d.angle, s), d.tint)
        p = pose(seg, float(np.clip(u, 0.0, 1.0)))
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


def render_still(image: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """One picture in the videos' style, for image pretraining: a 28x28 item, tinted, scaled and
    turned as the videos' items are, at a random place on a textured background of the
    videos' kind. Returns H x W x 3 uint8."""
    canvas = _background(_background_params(rng), size, size)
    side = float(rng.uniform(0.42, 0.52)) * size
    cx, cy = rng.uniform(0.3, 0.7, size=2) * size
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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

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


def _write_video_task(args: tuple[VideoPlan, dict[int, np.ndarray], SynthConfig, str]) -> tuple[str, int]:
    video, images, config, root = args
    try:
        return video.video_id, write_video(video, images, config, root)
    except Exception as err:
        raise RuntimeError(f"synth: writing video {video.video_id} under {root} failed: {err!r}") from err


def annotation_tables(plan: DatasetPlan):
    """The five EK100 annotation tables as pandas DataFrames, keyed by file name."""
    import pandas as pd

    rows: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for video in plan.videos:
        rate = annotation_rate(video.native_fps)
        for seg in video.segments:
            noun_words = " ".join(reversed(seg.noun.split(":")))
            rows[video.split].append({
                "narration_id": seg.narration_id, "participant_id": video.participant_id,
                "video_id": video.video_id,
                "narration_timestamp": format_timestamp(seg.narration_ms / 1000, 3),
                "start_timestamp": format_timestamp(seg.start_cs / 100),
                "stop_timestamp": format_timestamp(seg.stop_cs / 100),
                "start_frame": seg.start_cs * rate // 100, "stop_frame": seg.stop_cs * rate // 100,
                "narration": f"{seg.verb.replace('-', ' ')} {noun_words}",
                "verb": seg.verb, "verb_class": seg.verb_class, "noun": seg.noun, "noun_class": seg.noun_class,
                "all_nouns": repr([seg.noun]), "all_noun_classes": repr([seg.noun_class]),
            })
    tables = {}
    for split, name in (("train", "EPIC_100_train.csv"), ("validation", "EPIC_100_validation.csv")):
        df = pd.DataFrame(rows[split], columns=list(ANNOTATION_COLUMNS))
        tables[name] = df.sort_values("narration_id", kind="stable").reset_index(drop=True)  # EK100's order
    tables["EPIC_100_verb_classes.csv"] = pd.DataFrame(
        [{"id": i, "key": v.key, "instances": repr(list(v.instances)), "category": v.category}
         for i, v in enumerate(VERBS)])
    tables["EPIC_100_noun_classes.csv"] = pd.DataFrame(
        [{"id": i, "key": n.key, "instances": repr(list(n.instances)), "category": n.category}
         for i, n in enumerate(NOUNS)])
    cfg = plan.config
    tables["EPIC_100_video_info.csv"] = pd.DataFrame(
        [{"video_id": v.video_id, "duration": v.duration(cfg.fps), "fps": v.native_fps,
          "resolution": f"{cfg.size}x{cfg.size}"} for v in plan.videos])
    return tables


def write_annotations(plan: DatasetPlan, root: str | Path) -> list[Path]:
    """Write the five annotation CSVs under `root/annotations`; returns their paths."""
    folder = Path(root) / "annotations"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in annotation_tables(plan).items():
        path = folder / name
        write_bytes_atomic(path, df.to_csv(index=False).encode())
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------
# The cached data set
# --------------------------------------------------------------------------------------------

def _repo_data_dir() -> Path:
    root = Path(__file__).resolve().parents[2]
    return root / "data" if (root / "pyproject.toml").exists() else Path.cwd() / "data"


def default_out_dir(preset: str = "tiny", seed: int = 0, **overrides: Any) -> Path:
    """`data/synth-<preset>` at the repository root (suffixed for another seed or overrides)."""
    name = f"synth-{preset}"
    if seed != 0:
        name += f"-seed{seed}"
    if overrides:
        name += "-" + hashlib.sha1(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]
    return _repo_data_dir() / name


def _key(seed: int, config: SynthConfig) -> dict[str, Any]:
    # What must match for a folder to be reused (JSON round trip: tuples become lists).
    return json.loads(json.dumps({"generator_version": GENERATOR_VERSION, "seed": seed, "params": config.to_dict()}))


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when there is none (an incomplete or foreign folder)."""
    path = Path(root) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return manifest if manifest.get("generator") == _GENERATOR else None


def is_complete(root: str | Path, seed: int, config: SynthConfig) -> bool:
    """True when `root` holds a finished data set generated with exactly these parameters."""
    manifest = read_manifest(root)
    if manifest is None or (Path(root) / _INCOMPLETE).exists():
        return False
    return {k: manifest.get(k) for k in ("generator_version", "seed", "params")} == _key(seed, config)


def _prepare(root: Path) -> None:
    """Make `root` ready for a fresh generation, refusing to touch a folder that is not ours."""
    if root.exists() and any(root.iterdir()):
        ours = (root / _INCOMPLETE).exists() or read_manifest(root) is not None
        if not ours:
            raise FileExistsError(f"{root} exists, is not empty and holds no synthetic data set (no manifest.json "
                                  f"from {_GENERATOR}); refusing to overwrite it: choose another --out or empty it")
    root.mkdir(parents=True, exist_ok=True)
    (root / _INCOMPLETE).write_text("generation started; this folder is incomplete until manifest.json appears\n")
    (root / "manifest.json").unlink(missing_ok=True)  # first: a killed run never looks complete
    (root / "manifest.json.partial").unlink(missing_ok=True)
    for sub in ("videos", "annotations"):
        if (root / sub).exists():
            shutil.rmtree(root / sub)


def _package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in ("evitvid", "numpy", "av", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _counts(plan: DatasetPlan, root: Path) -> dict[str, Any]:
    cfg = plan.config
    out: dict[str, Any] = {"participants": len({v.participant_id for v in plan.videos})}
    for split in ("train", "validation"):
        vids = plan.split_videos(split)
        segs = [s for v in vids for s in v.segments]
        out[split] = {
            "videos": len(vids), "segments": len(segs),
            "verbs_present": len({s.verb_class for s in segs}), "nouns_present": len({s.noun_class for s in segs}),
            "crossing_chunk_boundary": sum(int(s.start // cfg.chunk_seconds) != int(s.stop // cfg.chunk_seconds)
                                           for s in segs),
        }
    segs = [s for v in plan.videos for s in v.segments]
    lengths = np.array([s.stop_cs - s.start_cs for s in segs]) / 100
    out["segment_seconds"] = {"min": float(lengths.min()), "median": float(np.median(lengths)),
                              "mean": round(float(lengths.mean()), 3), "max": float(lengths.max())}
    out["frames"] = sum(v.num_frames for v in plan.videos)
    out["hours"] = round(out["frames"] / cfg.fps / 3600, 4)
    out["chunks"] = sum(len(chunk_paths(root, v, cfg)) for v in plan.videos)
    out["bytes"] = sum(p.stat().st_size for p in (root / "videos").rglob("*.MP4") if p.is_file())
    return out


def make_dataset(out_dir: str | Path | None = None, preset: str = "tiny", seed: int = 0, *,
                 workers: int | None = None, progress: bool = True, force: bool = False, **overrides: Any) -> Path:
    """Generate (or reuse) the synthetic data set and return its folder.

    `out_dir` defaults to `default_out_dir(preset, seed, **overrides)`. A folder whose
    manifest matches (seed, every parameter, `GENERATOR_VERSION`) is returned as it is
    unless `force`; otherwise it is regenerated from scratch. `workers` processes write
    videos in parallel (default: one per available core); the output does not depend on it.
    """
    config = resolve_config(preset, **overrides)
    root = Path(out_dir) if out_dir is not None else default_out_dir(preset, seed, **overrides)
    if not force and is_complete(root, seed, config):
        return root
    t0 = time.perf_counter()
    _prepare(root)
    plan = plan_dataset(preset, seed, **overrides)
    images, _ = load_fashion_mnist("t10k")
    tasks = []
    for video in sorted(plan.videos, key=lambda v: -v.num_frames):  # longest first: balances the pool
        needed = {s.item for s in video.segments} | {d.item for s in video.segments for d in s.distractors}
        tasks.append((video, {i: np.asarray(images[i]) for i in needed}, config, str(root)))
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(tasks)))
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(v.num_frames for v in plan.videos), unit="frame", desc=f"synth-{preset} videos",
               disable=not progress)
    try:
        if workers == 1:
            for task in tasks:
                bar.update(_write_video_task(task)[1])
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # spawn: safe under a Jupyter kernel or with torch's threads in the parent.
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            try:
                futures = [pool.submit(_write_video_task, task) for task in tasks]
                for future in as_completed(futures):
                    bar.update(future.result()[1])
            finally:
                pool.shutdown(wait=True, cancel_futures=True)  # on an error, drop what has not started
    finally:
        bar.close()
    write_annotations(plan, root)
    manifest = {
        "generator": _GENERATOR, **_key(seed, config), "preset": preset,
        "counts": _counts(plan, root),
        "fashion_mnist": {"split": "t10k", "items_used": len(plan.items())},
        "frame_numbers": "floor(seconds * round(native fps)); files at params.fps",
        "generation_seconds": round(time.perf_counter() - t0, 2), "workers": workers,
        "versions": _package_versions(),
    }
    write_bytes_atomic(root / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    (root / _INCOMPLETE).unlink()
    return root
