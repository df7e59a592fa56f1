"""Tests for evitvid.data.synth on the tiny preset (generated once per session, ~2 s)."""
from __future__ import annotations

import argparse
import ast
import dataclasses
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import decord
import numpy as np
import pandas as pd
import pytest
import torch
import torchvision.transforms.functional as TF
from scipy import ndimage, stats
from conftest import child_pids, cmdline, find_shared, kill_and_expect_workers_gone, reaped, wait_until

from evitvid import cli
from evitvid.data import fashion_mnist, synth
from evitvid.data.sampling import tsn_indices
from evitvid.data.transforms import EvalTransform

# the official validation file, where every test finds the shared folder; None without it
REAL_VALIDATION = (find_shared() / "ek100" / "EPIC_100_validation.csv") if find_shared() else None
# The header of the official EPIC_100_{train,validation}.csv, used when shared/ is absent.
EK100_COLUMNS = [
    "narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp", "stop_timestamp",
    "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun", "noun_class", "all_nouns",
    "all_noun_classes",
]
SPLIT_FILES = ("EPIC_100_train.csv", "EPIC_100_validation.csv")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "tiny"
    synth.generate(root, "tiny", seed=0, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def plan() -> synth.DatasetPlan:
    return synth.plan_dataset("tiny", seed=0)


@pytest.fixture(scope="session")
def t10k() -> np.ndarray:
    return fashion_mnist.load_fashion_mnist("t10k")[0]


def _read(root: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(root / "annotations" / name, dtype=str, keep_default_na=False)


def _segments(root: Path) -> pd.DataFrame:
    return pd.concat([_read(root, name).assign(split=name) for name in SPLIT_FILES], ignore_index=True)


def _seconds(text: str) -> float:
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _decode(path: Path, indices=None) -> np.ndarray:
    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr))) if indices is None else list(indices)).asnumpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def _trend(values: np.ndarray) -> float:
    return float(np.corrcoef(np.arange(len(values)), values)[0, 1])


# ---- files and formats ------------------------------------------------------------------------

def test_layout(tiny):
    assert sorted(p.name for p in (tiny / "annotations").iterdir()) == sorted(
        [*SPLIT_FILES, "EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv", "EPIC_100_video_info.csv"])
    assert (tiny / "manifest.json").is_file() and not (tiny / ".synth-incomplete").exists()
    assert not list(tiny.rglob("*.partial")) and not list(tiny.rglob("*.tmp"))


def test_columns_are_ek100s(tiny):
    expected = (pd.read_csv(REAL_VALIDATION, nrows=0).columns.tolist() if REAL_VALIDATION and REAL_VALIDATION.exists()
                else EK100_COLUMNS)
    assert expected == EK100_COLUMNS == list(synth.ANNOTATION_COLUMNS)
    for name in SPLIT_FILES:
        assert (tiny / "annotations" / name).read_text().splitlines()[0] == ",".join(expected)


def test_rows_are_formatted_like_ek100(tiny):
    df = _segments(tiny)
    ts2 = re.compile(r"^\d\d:[0-5]\d:[0-5]\d\.\d\d$")
    assert df.start_timestamp.str.match(ts2).all() and df.stop_timestamp.str.match(ts2).all()
    assert df.narration_timestamp.str.match(r"^\d\d:[0-5]\d:[0-5]\d\.\d{3}$").all()
    assert (df.participant_id == df.video_id.str[:3]).all()
    assert df.video_id.str.match(r"^P\d\d_\d\d$").all()
    verbs = _read(tiny, "EPIC_100_verb_classes.csv")
    for _, row in df.iterrows():
        assert re.fullmatch(rf"{row.video_id}_\d+", row.narration_id)
        nouns, noun_classes = ast.literal_eval(row.all_nouns), ast.literal_eval(row.all_noun_classes)
        assert nouns == [row.noun] and noun_classes == [int(row.noun_class)]
        assert row.verb in ast.literal_eval(verbs.instances[int(row.verb_class)])
        assert row.narration.startswith(row.verb.replace("-", " ") + " ")
    for name in SPLIT_FILES:  # EK100's files are sorted by narration_id as strings
        ids = _read(tiny, name).narration_id.tolist()
        assert ids == sorted(ids)


def test_class_files_parse(tiny):
    for name, specs in (("EPIC_100_verb_classes.csv", synth.VERBS), ("EPIC_100_noun_classes.csv", synth.NOUNS)):
        df = pd.read_csv(tiny / "annotations" / name)
        assert df.columns.tolist() == ["id", "key", "instances", "category"]
        assert df.id.tolist() == list(range(len(specs)))
        assert df.key.tolist() == [s.key for s in specs]
        for key, instances, category in zip(df.key, df.instances, df.category):
            parsed = ast.literal_eval(instances)
            assert isinstance(parsed, list) and key in parsed and category


def test_narration_ids_count_up_in_time(tiny):
    df = _segments(tiny)
    df["n"] = df.narration_id.str.rsplit("_", n=1).str[1].astype(int)
    df["start"] = df.start_timestamp.map(_seconds)
    df["stop"] = df.stop_timestamp.map(_seconds)
    info = _read(tiny, "EPIC_100_video_info.csv").set_index("video_id")
    for video_id, g in df.sort_values("start").groupby("video_id"):
        assert g.n.tolist() == list(range(len(g)))
        # laid out in time with a pause before each segment, all inside the video
        assert g.start.iloc[0] > 0 and (g.start.to_numpy()[1:] > g.stop.to_numpy()[:-1]).all()
        assert g.stop.max() < float(info.duration[video_id])


def test_timestamps_agree_with_frame_numbers(tiny):
    df = _segments(tiny)
    fps = _read(tiny, "EPIC_100_video_info.csv").set_index("video_id").fps.astype(float)
    native = df.video_id.map(fps)
    assert set(native.round(2)) == {59.94, 50.0}  # two recording rates, neither the files' 30
    for ts, frame in (("start_timestamp", "start_frame"), ("stop_timestamp", "stop_frame")):
        expected = [synth.seconds_to_frame(_seconds(t), f) for t, f in zip(df[ts], native)]
        assert df[frame].astype(int).tolist() == expected
    lengths = df.stop_frame.astype(int) - df.start_frame.astype(int)
    assert lengths.min() >= synth.PRESETS["tiny"].min_segment_frames


@pytest.mark.skipif(not (REAL_VALIDATION and REAL_VALIDATION.exists()), reason="shared/ek100 not present")
def test_frame_convention_is_the_real_files():
    real = pd.read_csv(REAL_VALIDATION)
    info = pd.read_csv(REAL_VALIDATION.with_name("EPIC_100_video_info.csv")).set_index("video_id").fps
    real = real[real.video_id.map(info).round(2) == 59.94]
    ok = [synth.seconds_to_frame(_seconds(t), 60000 / 1001) == f for t, f in zip(real.stop_timestamp, real.stop_frame)]
    assert np.mean(ok) > 0.99


def test_split_is_by_video(tiny):
    train, val = (set(_read(tiny, name).video_id) for name in SPLIT_FILES)
    assert train and val and not train & val
    assert train | val == set(_read(tiny, "EPIC_100_video_info.csv").video_id)


def test_chunks_exist_and_match_video_length(tiny):
    info = _read(tiny, "EPIC_100_video_info.csv")
    cfg = synth.PRESETS["tiny"]
    per_chunk = cfg.fps * cfg.chunk_seconds
    for video_id, duration, resolution in zip(info.video_id, info.duration.astype(float), info.resolution):
        folder = tiny / "videos" / video_id[:3] / f"{video_id}.MP4"
        num_frames = round(duration * cfg.fps)
        num_chunks = math.ceil(num_frames / per_chunk)
        assert num_chunks >= 2
        names = sorted((p.name for p in folder.iterdir()), key=lambda n: int(n.split(".")[0]))
        assert names == [f"{c * cfg.chunk_seconds}.MP4" for c in range(num_chunks)]
        for c, name in enumerate(names):
            vr = decord.VideoReader(str(folder / name))
            expected = per_chunk if c < num_chunks - 1 else num_frames - per_chunk * (num_chunks - 1)
            assert len(vr) == expected and vr.get_avg_fps() == cfg.fps
            assert vr[0].shape == (cfg.size, cfg.size, 3) and resolution == f"{cfg.size}x{cfg.size}"


def test_some_segments_cross_a_chunk_boundary(tiny):
    df = _segments(tiny)
    crossing = df.start_timestamp.map(_seconds) // 15 != df.stop_timestamp.map(_seconds) // 15
    assert crossing.sum() >= 1


# ---- content ----------------------------------------------------------------------------------

def test_segment_read_through_timestamps_shows_its_motion(tiny, plan, t10k):
    # A segment crossing a chunk boundary, read the way a loader would: timestamps -> file frames
    # -> (chunk, frame in chunk), decoded, matches the generator's own rendering.
    cfg = plan.config
    per_chunk = cfg.fps * cfg.chunk_seconds
    video, seg = next((v, s) for v in plan.videos for s in v.segments
                      if int(s.start // cfg.chunk_seconds) != int(s.stop // cfg.chunk_seconds))
    frames = np.arange(round(seg.start * cfg.fps), round(seg.stop * cfg.fps))
    folder = tiny / "videos" / video.participant_id / f"{video.video_id}.MP4"
    decoded = np.concatenate([
        _decode(folder / f"{c * cfg.chunk_seconds}.MP4", frames[frames // per_chunk == c] - c * per_chunk)
        for c in np.unique(frames // per_chunk)])
    expected, _ = synth.render_video(video, t10k, cfg, frames)
    later, _ = synth.render_video(video, t10k, cfg, frames + 5)
    assert _psnr(decoded, expected) > 30 and _psnr(decoded, expected) > _psnr(decoded, later) + 1


def test_item_masks_follow_the_verb(plan, t10k):
    # In every segment of the tiny set whose verb changes how much of the item is visible, the
    # ground-truth mask area goes the verb's way: up for put/open/pull, down for their reversals.
    direction = {"put": 1, "open": 1, "pull": 1, "take": -1, "close": -1, "push": -1}
    checked = 0
    for video in plan.videos:
        for seg in video.segments:
            key = synth.VERBS[seg.verb_class].key
            if key in direction:
                idx = range(round(seg.start * 30), round(seg.stop * 30) + 1)
                area = synth.render_video(video, t10k, plan.config, idx)[1].sum(axis=(1, 2))
                assert direction[key] * _trend(area) > 0.5, (seg.narration_id, key, area)
                assert direction[key] * (area[-1] - area[0]) > 0
                checked += 1
    assert checked >= 5


def _still_video(video: synth.VideoPlan, segments) -> synth.VideoPlan:
    # No camera jitter: then a segment played backwards can equal another exactly.
    last = max(s.stop_cs for s in segments)
    return dataclasses.replace(video, jitter=(), segments=tuple(segments), num_frames=(last + 100) * 30 // 100)


def _pair_segments(base: synth.SegmentPlan, a: int, b: int, start_cs: int, stop_cs: int):
    motion = synth.plan._motion_params(np.random.default_rng(a), synth.VERBS[a].motion)
    if "door_r" in motion:
        motion.update(door_r=0.9, door_g=0.2, door_b=0.2)
    view = (0.5, base.view[1]) if synth.VERBS[a].motion == "slide" else base.view  # room for the camera's pan
    seg_a = dataclasses.replace(base, verb_class=a, motion=motion, view=view, start_cs=start_cs, stop_cs=stop_cs)
    # Everything that moves with time reverses too: moving distractors move and turn the other way.
    reversed_distractors = tuple(dataclasses.replace(d, dx=-d.dx, dy=-d.dy, spin=-d.spin) for d in base.distractors)
    return seg_a, dataclasses.replace(seg_a, verb_class=b, distractors=reversed_distractors)


@pytest.mark.parametrize("pair", synth.REVERSE_PAIRS, ids=lambda p: f"{synth.VERBS[p[0]].key}/{synth.VERBS[p[1]].key}")
def test_paired_verbs_are_exact_time_reversals(plan, t10k, pair):
    video = plan.videos[0]
    base = next(s for s in video.segments if any(d.moving for d in s.distractors))
    seg_a, seg_b = _pair_segments(base, *pair, start_cs=100, stop_cs=300)
    for u in np.linspace(0, 1, 11):
        pa, pb = synth.pose(seg_a, u), synth.pose(seg_b, 1 - u)
        assert np.allclose([pa.x, pa.y, pa.scale, pa.angle, pa.light, pa.pan],
                           [pb.x, pb.y, pb.scale, pb.angle, pb.light, pb.pan])
    idx = range(30, 91)  # t = 1.0 s .. 3.0 s, a frame grid symmetric about the segment's middle
    frames_a, masks_a = synth.render_video(_still_video(video, [seg_a]), t10k, plan.config, idx)
    frames_b, masks_b = synth.render_video(_still_video(video, [seg_b]), t10k, plan.config, idx)
    assert np.abs(frames_a[::-1].astype(int) - frames_b).max() <= 1
    assert not np.array_equal(frames_a, frames_b)  # and the verbs do differ
    assert np.allclose(masks_a[::-1], masks_b, atol=1e-4)


def test_decoded_clip_played_backwards_is_its_pair(tmp_path, plan, t10k):
    # Through the encoder: put and take (item area), turn-on and turn-off (brightness), each pair
    # with the same scene, 2-s segments at 1-3 s, 4-6 s, 7-9 s and 10-12 s.
    verb = {v.key: i for i, v in enumerate(synth.VERBS)}
    base = plan.videos[0].segments[0]
    put, take = _pair_segments(base, verb["put"], verb["take"], 100, 300)
    on, off = _pair_segments(base, verb["turn-on"], verb["turn-off"], 700, 900)
    segments = [put, dataclasses.replace(take, start_cs=400, stop_cs=600),
                on, dataclasses.replace(off, start_cs=1000, stop_cs=1200)]
    video = _still_video(plan.videos[0], segments)
    synth.write_video(video, t10k, plan.config, tmp_path)
    decoded = _decode(synth.chunk_paths(tmp_path, video, plan.config)[0])
    clip = {name: decoded[30 * s: 30 * s + 61] for name, s in (("put", 1), ("take", 4), ("on", 7), ("off", 10))}
    assert _psnr(clip["put"][::-1], clip["take"]) > 35
    assert _psnr(clip["put"], clip["take"]) < _psnr(clip["put"][::-1], clip["take"]) - 10
    assert _psnr(clip["on"][::-1], clip["off"]) > 35
    brightness = {k: v.mean(axis=(1, 2, 3)) for k, v in clip.items()}
    assert _trend(brightness["on"]) > 0.8 and _trend(brightness["off"]) < -0.8
    _, masks = synth.render_video(video, t10k, plan.config, range(video.num_frames))
    area = masks.sum(axis=(1, 2))
    assert _trend(area[30:91]) > 0.8 and _trend(area[120:181]) < -0.8


def test_rotation_and_flip_conventions():
    # An item that is a bar at the top: rotated 90 degrees clockwise, the bar is on the right.
    bar = np.zeros((28, 28), np.uint8)
    bar[2:6, 8:20] = 255
    y0, x0, alpha, _ = synth.render._rasterize(synth.render._item_maps(bar), 32, 32, 28, 90, 64)
    ys, xs = np.nonzero(alpha > 0.5)
    assert (xs + x0).mean() > 40 and abs((ys + y0).mean() - 32) < 3
    verb = {v.key: i for i, v in enumerate(synth.VERBS)}
    seg = synth.SegmentPlan("P01_01_0", 0, 100, 0, verb["rotate-clockwise"], 0, "rotate", "bag", 0,
                            (1.0, 1.0, 1.0), 0.5, 0.5, 0.45, 0.0, 1.0, (0.5, 0.5), motion={"degrees": 180.0})
    assert synth.pose(seg, 1).angle > synth.pose(seg, 0).angle
    # move-left: 0.5 of the frame to the left across the scene, the camera following it so closely
    # (drift -0.1, move-right's drift, reversed) that the item drifts right in the frame
    left = dataclasses.replace(seg, verb_class=verb["move-left"], motion={"span": 0.5, "drift": -0.1})
    start, end = synth.pose(left, 0), synth.pose(left, 1)
    assert end.x + end.pan < start.x + start.pan - 0.49
    assert end.pan < start.pan - 0.59 and end.x > start.x + 0.09
    assert synth.HFLIP_SWAP[verb["move-left"]] == verb["move-right"]
    assert synth.HFLIP_SWAP[verb["rotate-clockwise"]] == verb["rotate-anticlockwise"]
    assert all(synth.HFLIP_SWAP[b] == a for a, b in synth.HFLIP_SWAP.items())


def test_verb_table():
    keys = [v.key for v in synth.VERBS]
    pairs = {(keys[a], keys[b]) for a, b in synth.REVERSE_PAIRS}
    assert {("take", "put"), ("open", "close"), ("turn-on", "turn-off"), ("push", "pull"),
            ("rotate-clockwise", "rotate-anticlockwise"), ("move-left", "move-right")} == pairs
    assert {"shake", "hold"} <= set(keys)
    kinds = {(keys[a], keys[b]): kind for (a, b), kind in synth.PAIR_KINDS.items()}
    assert kinds == {("take", "put"): "end state", ("open", "close"): "end state",
                     ("turn-on", "turn-off"): "end state", ("push", "pull"): "end state",
                     ("rotate-clockwise", "rotate-anticlockwise"): "motion", ("move-left", "move-right"): "motion"}
    assert [synth.verb_kind(k) for k in ("shake", "hold", "move-right", "close")] == [
        "unpaired", "unpaired", "motion", "end state"]
    assert [synth.verb_kind(i) for i in range(len(keys))] == [synth.verb_kind(k) for k in keys]
    with pytest.raises(ValueError, match="stir"):
        synth.verb_kind("stir")


# ---- the motion pairs: told by the direction of motion, not by the clip's ends -------------------

def _study_clip(video: synth.VideoPlan, seg: synth.SegmentPlan, cfg: synth.SynthConfig, t10k: np.ndarray):
    """The study's view of a segment: 4 TSN frames (the middle of each quarter, as evaluated),
    the whole frame resized to 64 pixels (EvalTransform(64)); grey frames and the acted-on
    item's mask from the renderer, 4 x 64 x 64 each."""
    start, stop = (math.floor(t * cfg.fps + 0.5) for t in (seg.start, seg.stop))  # to_file_frames' rounding
    frames, masks = synth.render_video(video, t10k, cfg, tsn_indices(start, stop, 4))
    grey = EvalTransform(64)(torch.from_numpy(frames)).mean(0).numpy()
    masks = TF.resize(torch.from_numpy(masks)[:, None], 64, antialias=True)[:, 0].numpy()
    return grey, masks


def _scene_shift(a: np.ndarray, b: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
    """How well frame b matches frame a moved by dx pixels (dx = -16..16; the best of small
    vertical moves, for the camera's jitter): the normalised correlation of their fine texture
    (a 3-pixel blur taken off) outside the acted-on item, which the camera follows."""
    a, b = a - ndimage.gaussian_filter(a, 3), b - ndimage.gaussian_filter(b, 3)
    keep_a, keep_b = ~ndimage.binary_dilation(mask_a > 0.02), ~ndimage.binary_dilation(mask_b > 0.02)
    n = a.shape[0]
    scores = []
    for dx in range(-16, 17):
        best = -1.0
        for dy in range(-3, 4):
            sa = (slice(max(0, -dy), n - max(0, dy)), slice(max(0, -dx), n - max(0, dx)))
            sb = (slice(max(0, dy), n - max(0, -dy)), slice(max(0, dx), n - max(0, -dx)))
            keep = keep_a[sa] & keep_b[sb]
            pa, pb = a[sa][keep], b[sb][keep]
            pa, pb = pa - pa.mean(), pb - pb.mean()
            best = max(best, float((pa * pb).sum() / math.sqrt((pa * pa).sum() * (pb * pb).sum() + 1e-12)))
        scores.append(best)
    return np.array(scores)


def _turn_profile(mask: np.ndarray) -> np.ndarray:
    """The item's mass by direction from its centroid (1-degree bins, clockwise on screen, smoothed)."""
    ys, xs = np.mgrid[0:mask.shape[0], 0:mask.shape[1]] + 0.5
    cy, cx = (mask * ys).sum() / mask.sum(), (mask * xs).sum() / mask.sum()
    bins = np.degrees(np.arctan2(ys - cy, xs - cx)).astype(int) % 360
    profile = np.bincount(bins.ravel(), weights=(mask * np.hypot(ys - cy, xs - cx)).ravel(), minlength=360)
    return ndimage.gaussian_filter1d(profile, 5, mode="wrap")


def _turn(mask_a: np.ndarray, mask_b: np.ndarray) -> int:
    """The turn (degrees, clockwise, -89..89) that best carries the item's shape in a onto b's."""
    pa, pb = _turn_profile(mask_a), _turn_profile(mask_b)
    lags = np.arange(-89, 90)
    return int(lags[np.argmax([np.dot(np.roll(pa, lag), pb) for lag in lags])])


def test_motion_pairs_are_told_by_the_order_of_frames(t10k):
    """At the study's sampling (4 TSN frames, 64 pixels) a hand-made order-aware statistic tells
    the two verbs of each motion pair apart in >= 90 % of segments: for slides, which way the
    scene moves behind the item (the scene's shift between successive frames, summed); for
    rotations, which way the item turns (its shape's turn between successive frames). The same
    statistic on the frames shuffled, and where the item sits in the first frame, score about
    50 %: what tells the verbs apart is the direction of motion, not the frames or the ends.
    Measured on the default preset (seed 0), 60 segments a pair: order-aware 100 % for both pairs,
    shuffled and first frame 43 to 62 %; on all 107 slides and 108 rotations of the preset,
    99 % and 100 % order-aware, 46 % and 57 % shuffled."""
    plan = synth.plan_dataset("default", seed=0)
    keys = [v.key for v in synth.VERBS]
    pairs = {"slide": ("move-right", "move-left"), "rotate": ("rotate-clockwise", "rotate-anticlockwise")}
    rng = np.random.default_rng(0)
    scores: dict[str, list[tuple[bool, bool, bool]]] = {"slide": [], "rotate": []}
    for video in plan.videos:
        for seg in video.segments:
            key = keys[seg.verb_class]
            motion = synth.VERBS[seg.verb_class].motion
            if synth.verb_kind(key) != "motion" or len(scores[motion]) >= 60:
                continue
            grey, masks = _study_clip(video, seg, plan.config, t10k)
            positive = key == pairs[motion][0]  # move-right, clockwise
            ys, xs = np.mgrid[0:64, 0:64] + 0.5
            m0 = masks[0] / masks[0].sum()
            cx, cy = (m0 * xs).sum(), (m0 * ys).sum()
            if motion == "slide":  # the scene moves left behind an item moving right
                def direction(order):
                    total = sum(_scene_shift(grey[i], grey[j], masks[i], masks[j]) for i, j in zip(order, order[1:]))
                    return int(np.argmax(total)) - 16 < 0
                first_frame = cx < 32  # the item starts left of the middle: it is going right
            else:
                def direction(order):
                    return sum(_turn(masks[i], masks[j]) for i, j in zip(order, order[1:])) > 0
                # the item's long axis in the first frame, between 0 and 90 degrees clockwise
                sxx, syy, sxy = ((m0 * (xs - cx) ** 2).sum(), (m0 * (ys - cy) ** 2).sum(),
                                 (m0 * (xs - cx) * (ys - cy)).sum())
                first_frame = np.degrees(0.5 * np.arctan2(2 * sxy, sxx - syy)) % 180 < 90
            scores[motion].append((direction(range(4)) == positive, direction(rng.permutation(4)) == positive,
                                   first_frame == positive))
    for motion, rows in scores.items():
        ordered, shuffled, first_frame = np.mean(rows, axis=0)
        print(f"{motion}: order-aware {ordered:.1%}, shuffled {shuffled:.1%}, first frame {first_frame:.1%}")
        assert len(rows) == 60, (motion, len(rows))
        assert ordered >= 0.9, (motion, ordered)
        # 60 segments: a coin's share has sd 6.5 points; +-20 is 3 sd
        assert abs(shuffled - 0.5) <= 0.2 and abs(first_frame - 0.5) <= 0.2, (motion, shuffled, first_frame)


def test_motion_pairs_first_frames_do_not_tell_the_verb():
    """Within a motion pair, the first frame's pose (where the item is, its angle, size, light
    and door) has one distribution for both verbs (so, by the time reversal, the first and last
    frames of either verb have the same one): two-sample Kolmogorov-Smirnov tests on 6,000
    planned segments (~430 a verb) find no difference, while the same tests tell the end-state
    pairs apart at once (the test can fail). The camera's place in the video's background
    differs, but a frame shows a window of a texture with no landmark in the world."""
    plan = synth.plan_dataset("default", seed=0, num_videos=600, verb_zipf=0.0)
    segs = [s for v in plan.videos for s in v.segments]
    keys = [v.key for v in synth.VERBS]

    def first(key: str) -> np.ndarray:  # x, y, angle (mod 360), scale, light, the door off the item, at u = 0
        poses = [synth.pose(s, 0.0) for s in segs if keys[s.verb_class] == key]
        return np.array([(p.x, p.y, p.angle % 360, p.scale, p.light,
                          0.0 if p.door is None else math.hypot((p.door[0] + p.door[2]) / 2 - p.x,
                                                                (p.door[1] + p.door[3]) / 2 - p.y))
                         for p in poses])

    for (a, b), kind in synth.PAIR_KINDS.items():
        fa, fb = first(keys[a]), first(keys[b])
        assert min(len(fa), len(fb)) > 300
        p_values = [stats.ks_2samp(fa[:, k], fb[:, k]).pvalue if np.ptp(np.r_[fa[:, k], fb[:, k]]) else 1.0
                    for k in range(fa.shape[1])]
        if kind == "motion":
            assert min(p_values) > 1e-3, (keys[a], keys[b], p_values)
        else:  # the item off-frame or not, the light low or not, the item small or large
            assert min(p_values) < 1e-12, (keys[a], keys[b], p_values)


# ---- Fashion-MNIST splits ---------------------------------------------------------------------

def test_videos_use_only_t10k(monkeypatch, plan):
    real = fashion_mnist.load_fashion_mnist

    def t10k_only(split="train", **kwargs):
        if split != "t10k":
            raise AssertionError(f"synth read the {split!r} split")
        return real(split, **kwargs)

    monkeypatch.setattr(synth.plan, "load_fashion_mnist", t10k_only)
    assert synth.plan_dataset("tiny", seed=0) == plan
    items = np.array(sorted(plan.items()))
    assert items.min() >= 0 and items.max() < 10000
    # and none of those images is a pretraining (train) image
    train, _ = real("train")
    t10k, _ = real("t10k")
    train_rows = {row.tobytes() for row in train.reshape(len(train), -1)}
    assert not {t10k[i].tobytes() for i in items} & train_rows


def test_train_and_validation_videos_use_different_images(plan):
    used = {split: {i for v in plan.split_videos(split) for s in v.segments
                    for i in (s.item, *(d.item for d in s.distractors))} for split in ("train", "validation")}
    assert used["train"] and used["validation"] and not used["train"] & used["validation"]


def test_nouns_are_their_fashion_mnist_class(plan):
    _, labels = fashion_mnist.load_fashion_mnist("t10k")
    for video in plan.videos:
        for seg in video.segments:
            assert labels[seg.item] == synth.NOUNS[seg.noun_class].fashion_label
            assert all(labels[d.item] != labels[seg.item] for d in seg.distractors)


# ---- the default preset's shape (planned, not rendered) --------------------------------------

def test_default_plan_is_shaped_like_ek100():
    plan = synth.plan_dataset("default", seed=0)
    cfg = plan.config
    for split, (low, high) in (("train", (1300, 1800)), ("validation", (400, 700))):
        segs = [s for v in plan.split_videos(split) for s in v.segments]
        assert low <= len(segs) <= high
        verbs = np.bincount([s.verb_class for s in segs], minlength=len(synth.VERBS))
        nouns = np.bincount([s.noun_class for s in segs], minlength=len(synth.NOUNS))
        assert verbs.min() >= 1 and nouns.min() >= 1  # every class in both splits
        # long tail: Zipf 1 makes the first verbs 13x as frequent as the last, the first noun 5x the last
        assert verbs[:2].min() > 5 * verbs[-2:].max() and nouns[0] > 3 * nouns[-1]
    # About 2,000 segments as before (64 videos of 32), in videos enough, of participants enough,
    # for an interval to resample validation videos: EK100's mix of seen and unseen participants.
    assert 1800 <= sum(len(v.segments) for v in plan.videos) <= 2300
    val, train = plan.split_videos("validation"), plan.split_videos("train")
    val_people, train_people = {v.participant_id for v in val}, {v.participant_id for v in train}
    assert len(val) >= 48 and len(val_people) >= 8
    assert len(val_people - train_people) == cfg.val_unseen_participants == 1
    assert len(val_people & train_people) >= 8
    rates = {v.video_id: synth.annotation_rate(v.native_fps) for v in plan.videos}
    frames = np.array([(s.stop_cs * rates[v.video_id]) // 100 - (s.start_cs * rates[v.video_id]) // 100
                       for v in plan.videos for s in v.segments])
    assert frames.min() >= cfg.min_segment_frames and frames.max() >= 300
    seconds = np.array([(s.stop_cs - s.start_cs) / 100 for v in plan.videos for s in v.segments])
    assert 1 <= np.median(seconds) <= 4
    crossing = np.mean([int(s.start // 15) != int(s.stop // 15) for v in plan.videos for s in v.segments])
    assert 0.05 < crossing < 0.5


def test_motion_preset_makes_the_motion_pairs_the_most_frequent_in_the_same_videos():
    default, motion = synth.plan_dataset("default", seed=0), synth.plan_dataset("motion", seed=0)
    kinds = np.array([synth.verb_kind(i) for i in range(len(synth.VERBS))])
    motion_kind = kinds == "motion"

    def share(plan, split):
        verbs = np.array([s.verb_class for v in plan.split_videos(split) for s in v.segments])
        return motion_kind[verbs].mean()

    for split in ("train", "validation"):
        assert share(default, split) < 0.3 and share(motion, split) > 0.5
    # the same videos, segments and nouns: the verbs' frequencies differ (and so each scene's draws)
    assert [(v.video_id, v.split, [s.noun_class for s in v.segments]) for v in motion.videos] == \
        [(v.video_id, v.split, [s.noun_class for s in v.segments]) for v in default.videos]
    counts = np.bincount([s.verb_class for v in motion.videos for s in v.segments], minlength=len(synth.VERBS))
    assert counts[motion_kind].min() > counts[~motion_kind].max()


# ---- reproducibility and caching -------------------------------------------------------------

def test_same_seed_same_csvs_other_seed_different(tmp_path, tiny):
    synth.write_annotations(synth.plan_dataset("tiny", seed=0), tmp_path / "same")
    synth.write_annotations(synth.plan_dataset("tiny", seed=1), tmp_path / "other")
    for name in SPLIT_FILES:
        original = (tiny / "annotations" / name).read_bytes()
        assert (tmp_path / "same" / "annotations" / name).read_bytes() == original
        assert (tmp_path / "other" / "annotations" / name).read_bytes() != original


def test_same_seed_same_video_bytes(tmp_path, tiny, plan, t10k):
    video = min(plan.videos, key=lambda v: v.num_frames)
    synth.write_video(video, t10k, plan.config, tmp_path)
    for path in synth.chunk_paths(tmp_path, video, plan.config):
        assert path.read_bytes() == (tiny / path.relative_to(tmp_path)).read_bytes()


def test_every_video_encodes_to_the_same_bytes_twice(tmp_path, plan, t10k):
    """libx264's macroblock-tree rate control gave different files for the same frames from one
    encode to the next; every video of the plan is written twice and compared."""
    for video in plan.videos:
        synth.write_video(video, t10k, plan.config, tmp_path / "a")
        synth.write_video(video, t10k, plan.config, tmp_path / "b")
        for path in synth.chunk_paths(tmp_path / "a", video, plan.config):
            assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes(), path


def test_rgb_to_yuv420p_is_bt601_limited_range():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2, :2] = 255          # white
    rgb[:2, 2:] = (255, 0, 0)  # red
    yuv = synth.rgb_to_yuv420p(rgb)  # black elsewhere
    y, u, v = yuv[:4], yuv[4:].reshape(-1)[:4].reshape(2, 2), yuv[4:].reshape(-1)[4:].reshape(2, 2)
    assert y[0, 0] == 235 and y[0, 3] == 82 and y[3, 3] == 16
    assert (u[0, 0], v[0, 0]) == (128, 128) and (u[0, 1], v[0, 1]) == (90, 240) and (u[1, 1], v[1, 1]) == (128, 128)
    with pytest.raises(ValueError, match="even"):
        synth.rgb_to_yuv420p(np.zeros((3, 4, 3), np.uint8))


def test_worker_processes_give_the_same_files(tmp_path, tiny):
    root = synth.generate(tmp_path / "pool", "tiny", seed=0, workers=2, progress=False)
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert files == sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")
    for rel in files:
        assert (root / rel).read_bytes() == (tiny / rel).read_bytes(), rel


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_killed_generation_takes_its_workers_along(tmp_path):
    root = tmp_path / "killed"
    parent = subprocess.Popen([sys.executable, "-m", "evitvid", "synth", "--preset", "tiny", "--out", str(root),
                               "--workers", "2", "--no-progress"], cwd=Path(__file__).resolve().parents[1],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[int] = []

    def spawned() -> bool:  # the pool's workers, not multiprocessing's resource tracker
        workers[:] = [pid for pid in child_pids(parent.pid)
                      if b"spawn_main" in cmdline(pid)]
        return len(workers) == 2 or parent.poll() is not None

    with reaped(parent, workers):
        assert wait_until(spawned, timeout=60) and parent.poll() is None, parent.stderr.read().decode()[-2000:]
        kill_and_expect_workers_gone(parent, workers)
    assert not synth.is_complete(root, 0, synth.PRESETS["tiny"]) and (root / ".synth-incomplete").exists()


def test_rerun_skips_a_complete_folder(tiny):
    stamps = {p: p.stat().st_mtime_ns for p in tiny.rglob("*") if p.is_file()}
    start = time.perf_counter()
    assert synth.generate(tiny, "tiny", seed=0, workers=1, progress=False) == tiny
    assert time.perf_counter() - start < 1.0
    assert {p: p.stat().st_mtime_ns for p in tiny.rglob("*") if p.is_file()} == stamps
    assert synth.is_complete(tiny, 0, synth.PRESETS["tiny"])


SMALL = dict(num_videos=2, segments_per_video=3, workers=1, progress=False)


def test_manifest_mismatch_regenerates(tmp_path):
    root = tmp_path / "ds"
    synth.generate(root, "tiny", seed=0, **SMALL)
    first = (root / "annotations" / "EPIC_100_train.csv").read_bytes()
    assert synth.read_manifest(root)["params"]["num_videos"] == 2
    synth.generate(root, "tiny", seed=3, **SMALL)  # another seed
    assert synth.read_manifest(root)["seed"] == 3
    assert (root / "annotations" / "EPIC_100_train.csv").read_bytes() != first
    synth.generate(root, "tiny", seed=3, **{**SMALL, "num_videos": 1})  # fewer videos: stale ones go
    info = pd.read_csv(root / "annotations" / "EPIC_100_video_info.csv")
    assert sorted(p.name for p in (root / "videos").glob("*/*.MP4")) == [f"{v}.MP4" for v in info.video_id]


def test_interrupted_run_does_not_look_complete(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    synth.generate(root, "tiny", seed=0, **SMALL)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth.build, "write_annotations", killed)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(root, "tiny", seed=1, **SMALL)
    assert synth.read_manifest(root) is None and (root / ".synth-incomplete").exists()
    assert not synth.is_complete(root, 0, synth.resolve_config("tiny", num_videos=2, segments_per_video=3))
    monkeypatch.undo()
    synth.generate(root, "tiny", seed=1, **SMALL)  # a rerun finishes the job
    assert synth.read_manifest(root)["seed"] == 1 and not (root / ".synth-incomplete").exists()


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "precious.MP4").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="refusing"):
        synth.generate(tmp_path, "tiny", **SMALL)
    assert (tmp_path / "videos" / "precious.MP4").read_bytes() == b"x"


def test_config_checks():
    with pytest.raises(TypeError, match="num_video"):
        synth.resolve_config("tiny", num_video=3)
    with pytest.raises(ValueError, match="even"):
        synth.resolve_config("tiny", size=63)
    with pytest.raises(ValueError, match="unknown preset"):
        synth.resolve_config("huge")
    assert synth.default_out_dir("tiny", data_root="data").name == "synth-tiny"
    assert synth.default_out_dir("tiny", 1, data_root="data", size=96).name.startswith("synth-tiny-seed1-")


def test_cli(tmp_path, tiny, capsys):
    assert "synth" in cli.COMMANDS
    assert cli.main(["synth", "--preset", "tiny", "--out", str(tiny), "--no-progress"]) == 0  # complete: skipped
    counts = synth.read_manifest(tiny)["counts"]
    summary = f"{counts['train']['segments']} train / {counts['validation']['segments']} validation"
    assert summary in capsys.readouterr().out
    out = tmp_path / "cli"
    assert cli.main(["synth", "--out", str(out), "--num-videos", "2", "--segments-per-video", "2", "--size", "32",
                     "--workers", "1", "--no-progress"]) == 0
    manifest = synth.read_manifest(out)
    assert manifest["params"]["size"] == 32 and manifest["counts"]["train"]["videos"] == 1
    assert manifest["params"]["motion_first"] is False
    from evitvid.commands import synth as command
    parser = argparse.ArgumentParser()
    command.configure(parser)
    assert parser.parse_args(["--motion-first", "yes"]).motion_first is True
    assert parser.parse_args(["--motion-first", "no"]).motion_first is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--motion-first", "maybe"])
