"""The plan: every random choice of the data set (layout, labels, items, motions), drawn up front.

Everything is a function of the seed: `plan_dataset` draws the layout, labels and items with
one numpy Generator and each video's scene and motions with its own (one per video, from
`SeedSequence(seed).spawn`). Rendering and encoding draw nothing: they are functions of the
plan.

The plan gives the data set EK100's **shape**: long-tailed (Zipf-like) verb and noun
frequencies, every class present in both splits when they are big enough, segment lengths
from 10 annotation frames to several hundred (the motion spans the segment: long segments
are slow motions), gaps between segments, some segments crossing a 15-s chunk boundary,
train/validation split by video (the videos of `val_unseen_participants` whole participants,
as EK100's unseen participants, and the rest drawn at random from every other participant's),
and no Fashion-MNIST image in both splits. Only the t10k split is read.

Motions are drawn so that the two kinds of pairs (`vocabulary.PAIR_KINDS`) are what they say:
the motion pairs' first and last frames come from one distribution (start angle uniform over
the circle; the item's place in the frame, and its drift in it, symmetric about the middle).
Every scene has a static distractor, a landmark the camera's pan shows against, and up to
three more, most of them moving and turning in random directions by as much as a slid or
turned item, so that motion alone does not point at the verb's item. Distractors are drawn
alike for every verb.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evitvid.data.fashion_mnist import CLASSES as FASHION_CLASSES
from evitvid.data.fashion_mnist import load_fashion_mnist

from .config import SynthConfig, resolve_config
from .timecode import annotation_rate
from .vocabulary import MOTION, NOUNS, REVERSE_PAIRS, VERBS, verb_kind

__all__ = ["Distractor", "SegmentPlan", "VideoPlan", "DatasetPlan", "plan_dataset"]


@dataclass(frozen=True)
class Distractor:
    """Another Fashion-MNIST item in the scene, static or moving (positions relative to size).

    A moving one goes at constant speed over the segment, as the acted-on item does: at
    fraction u it is at (x + dx (u - 1/2), y + dy (u - 1/2)), turned angle + spin (u - 1/2).
    Positions are in the scene, seen from the segment's middle view (`render`: a panning
    camera moves them in the frame as it moves the background).
    """

    item: int                        # t10k index
    tint: tuple[float, float, float]
    x: float                         # position at the segment's midpoint
    y: float
    scale: float
    angle: float                     # degrees, clockwise, at the segment's midpoint
    dx: float = 0.0                  # displacement over the segment
    dy: float = 0.0
    spin: float = 0.0                # degrees turned over the segment, clockwise

    @property
    def moving(self) -> bool:
        return bool(self.dx or self.dy or self.spin)


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


def _class_weights(num: int, exponent: float, pairs: Sequence[tuple[int, int]] = (),
                   order: Sequence[int] = ()) -> np.ndarray:
    """Zipf weights over class ids, the classes of `order` ranked first (in its order), the
    others after them by id; the two verbs of a pair share their mean, so that frequency alone
    cannot tell a verb from its reversal."""
    ranked = [*order, *(i for i in range(num) if i not in order)]
    w = np.empty(num, dtype=np.float64)
    w[ranked] = np.arange(1, num + 1, dtype=np.float64) ** -float(exponent)
    for i, j in pairs:
        w[i] = w[j] = (w[i] + w[j]) / 2
    return w / w.sum()


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
    if motion == "rotate":     # clockwise by 135-170 degrees, at constant speed
        # A quarter of the turn (34-43 degrees) between TSN frames a quarter-segment apart, and at
        # most 85 between two training draws (up to half the segment apart): below the 90 at which
        # an item that looks alike turned by 180 (trousers, a dress) could seem to turn either way.
        return {"degrees": round(float(rng.uniform(135, 170)), 3)}
    if motion == "slide":      # move-right by 45-60 % of the frame across the scene, at constant speed
        # The camera follows the item (render.pose: the scene pans the other way), leaving it a
        # drift in the frame symmetric about 0: its place in the first and last frames is alike, and
        # only the direction it moves against the background tells right from left.
        return {"span": round(float(rng.uniform(0.45, 0.6)), 4), "drift": round(float(rng.uniform(-0.1, 0.1)), 4)}
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

    # Videos: participants round-robin; validation: every video of `val_unseen_participants`
    # participants drawn at random, then videos drawn at random from the other participants'; 50-fps
    # videos chosen at random.
    nv = cfg.num_videos
    num_participants = min(cfg.num_participants, nv)
    participant = np.arange(nv) % num_participants
    n_val = 0 if nv == 1 or cfg.val_fraction == 0 else int(np.clip(round(cfg.val_fraction * nv), 1, nv - 1))
    is_val = np.zeros(nv, bool)
    if cfg.val_unseen_participants:
        is_val[np.isin(participant, rng.choice(num_participants, cfg.val_unseen_participants, replace=False))] = True
        if is_val.sum() > n_val:
            raise ValueError(f"SynthConfig: the {cfg.val_unseen_participants} unseen participant(s) have "
                             f"{is_val.sum()} videos, more than the {n_val} validation videos of val_fraction="
                             f"{cfg.val_fraction}: lower val_unseen_participants or raise val_fraction")
        is_val[rng.choice(np.flatnonzero(~is_val), size=n_val - int(is_val.sum()), replace=False)] = True
    else:
        is_val[rng.choice(nv, size=n_val, replace=False)] = True
    n50 = int(round(cfg.fps_50_fraction * nv))
    if cfg.fps_50_fraction > 0 and nv >= 2:
        n50 = max(n50, 1)
    is50 = np.zeros(nv, bool)
    is50[rng.choice(nv, size=min(n50, nv), replace=False)] = True
    counts = np.maximum(1, np.round(cfg.segments_per_video * rng.uniform(0.6, 1.4, size=nv))).astype(int)
    video_ids = []
    seen: dict[int, int] = {}
    for p in participant.tolist():
        seen[p] = seen.get(p, 0) + 1
        video_ids.append(f"P{p + 1:02d}_{seen[p]:02d}")

    # Labels per split: long-tailed, every class present when the split is big enough.
    motion = [i for i in range(len(VERBS)) if verb_kind(i) == MOTION] if cfg.motion_first else []
    verb_w = _class_weights(len(VERBS), cfg.verb_zipf, REVERSE_PAIRS, order=motion)
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
            # Position and angle at the segment's middle, symmetric about the frame's middle.
            x, y = (round(float(v), 4) for v in vrng.uniform(0.35, 0.65, size=2))
            angle = round(float(vrng.uniform(-15, 15)), 3)
            if verb.motion == "rotate":  # the start angle uniform over the circle: so is the end angle
                angle = round(float(vrng.uniform(0, 360)), 3)
            distractors = []
            others = [lab for lab in range(len(FASHION_CLASSES)) if lab != noun.fashion_label]
            # One to max_distractors: the first static, a landmark against which a panning camera is
            # seen to pan (the background alone can hide it: smooth noise, stripes along the pan, tiles
            # a pan step apart); each other one moving (2 in 3) in a random direction by as much as a
            # slid item moves across the scene, turning either way by up to as much as a turned item.
            for n in range(int(vrng.integers(min(1, cfg.max_distractors), cfg.max_distractors + 1))):
                dx, dy = _pick_position(vrng, (x, y), 0.35)
                moving = n > 0 and vrng.random() < 2 / 3
                travel, heading, spin = vrng.uniform(0.2, 0.6), vrng.uniform(0, 2 * np.pi), vrng.uniform(-170, 170)
                pool = pools[(val, int(vrng.choice(others)))]
                distractors.append(Distractor(
                    item=int(pool[vrng.integers(len(pool))]), tint=_tint(vrng, (0.0, 0.7), (0.6, 1.0)),
                    x=dx, y=dy, scale=round(float(vrng.uniform(0.22, 0.32)), 4),
                    angle=round(float(vrng.uniform(-30, 30)), 3),
                    dx=round(float(travel * math.cos(heading)), 4) if moving else 0.0,
                    dy=round(float(travel * math.sin(heading)), 4) if moving else 0.0,
                    spin=round(float(spin), 3) if moving else 0.0))
            motion = _motion_params(vrng, verb.motion)
            view = (round(float(vrng.random()), 4), round(float(vrng.random()), 4))
            if verb.motion == "slide":  # room in the video's background for the camera's pan
                half = (motion["span"] - motion["drift"]) / 2
                view = (round(half + view[0] * (1 - 2 * half), 4), view[1])
            segments.append(SegmentPlan(
                narration_id=f"{video_ids[k]}_{j}", start_cs=start_cs, stop_cs=stop_cs, narration_ms=narration_ms,
                verb_class=verb_class, noun_class=noun_class, verb=verb_text, noun=noun_text, item=item,
                tint=_tint(vrng, (0.0, 0.6), (0.75, 1.0)), x=x, y=y,
                scale=round(float(vrng.uniform(0.42, 0.52)), 4), angle=angle,
                gain=round(float(vrng.uniform(0.85, 1.1)), 4), view=view, motion=motion,
                distractors=tuple(distractors)))
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
