"""evitvid.data.datasets: EK100Dataset with DataLoader workers, seeding, and the error modes."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch
from conftest import segment_row, write_csv
from torch.utils.data import DataLoader

from evitvid.data.annotations import ActionSpace, read_segments
from evitvid.data.datasets import EK100Dataset, SkippedSegment, collate
from evitvid.data.sampling import tsn_indices
from evitvid.data.video import VideoError

CHUNKS = {"chunk_seconds": 1}
IDENTITY = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def decoded_ids(video: torch.Tensor) -> list[int]:
    """Frame indices from a (C, T, H, W) clip normalised with mean 0 / std 1 (red = index % 256)."""
    return [int(round(v)) for v in (video[0, :, 4, 4] * 255).tolist()]


def test_eval_sample_has_the_tsn_frames_and_labels(tree):
    ds = EK100Dataset(tree.train_csv, tree.chunked, source_options=CHUNKS, num_frames=4, crop_size=32, **IDENTITY)
    assert len(ds) == 6
    sample = ds[1]  # P01_01_1: file frames 24..47, crossing a chunk boundary
    assert set(sample) == {"video", "verb", "noun", "action", "narration_id"}
    assert sample["video"].shape == (3, 4, 32, 32) and sample["video"].dtype == torch.float32
    assert (sample["narration_id"], sample["verb"], sample["noun"], sample["action"]) == ("P01_01_1", 1, 2, -1)
    assert decoded_ids(sample["video"]) == tsn_indices(24, 48, 4).tolist() == [27, 33, 39, 45]
    assert torch.equal(ds[1]["video"], sample["video"])  # evaluation is deterministic


def test_test_split_labels_are_minus_one_and_action_ids(tree):
    ds = EK100Dataset(tree.test_csv, tree.chunked, source_options=CHUNKS, num_frames=2, crop_size=16)
    assert (ds[0]["verb"], ds[0]["noun"], ds[0]["action"]) == (-1, -1, -1)
    segments = read_segments(tree.train_csv)
    space = ActionSpace.from_segments(segments)
    ds = EK100Dataset(segments, tree.chunked, source_options=CHUNKS, num_frames=2, crop_size=16, action_space=space)
    assert [ds[i]["action"] for i in range(len(ds))] == [space.index(*s.action) for s in segments.values()]


def test_dense_sampling_and_whole_layout(tree):
    ds = EK100Dataset(tree.train_csv, tree.whole, layout="whole", num_frames=4, sampling="dense", stride=3,
                      crop_size=32, **IDENTITY)
    # P01_01_0: frames 3..26 (24 frames), span 10, centred at offset 7
    assert decoded_ids(ds[0]["video"]) == [10, 13, 16, 19]


def _batches(ds, workers):
    loader = DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=collate)
    return list(loader)


def test_two_workers_give_the_same_batches_as_none(tree):
    for train in (False, True):
        ds = EK100Dataset(tree.train_csv, tree.chunked, source_options=CHUNKS, num_frames=4, crop_size=32,
                          train=train, seed=3)
        ds.set_epoch(2)
        serial, parallel = _batches(ds, 0), _batches(ds, 2)
        assert len(serial) == len(parallel) == 2
        for a, b in zip(serial, parallel):
            assert a["narration_id"] == b["narration_id"]
            assert torch.equal(a["video"], b["video"]) and torch.equal(a["verb"], b["verb"])
            assert a["skipped"] == b["skipped"] == []


def test_training_sampling_is_seeded_per_epoch_and_index(tree):
    def clips(epoch, seed=0):
        ds = EK100Dataset(tree.train_csv, tree.chunked, source_options=CHUNKS, num_frames=4, crop_size=32,
                          train=True, seed=seed, **IDENTITY)
        ds.set_epoch(epoch)
        return [ds[i]["video"] for i in range(len(ds))]

    first, again, later, other = clips(0), clips(0), clips(1), clips(0, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, later))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    # training indices stay within the segment: P01_01_0 covers file frames 3..26
    ds = EK100Dataset(tree.train_csv, tree.chunked, source_options=CHUNKS, num_frames=8, train=True)
    for epoch in range(10):
        ds.set_epoch(epoch)
        idx = ds.indices(0, np.random.default_rng(epoch))
        assert idx.min() >= 3 and idx.max() <= 26


@pytest.fixture
def broken(tree, tmp_path):
    """A copy of the chunked tree plus a segment whose video is missing and one whose chunk is corrupt."""
    root = tmp_path / "videos"
    shutil.copytree(tree.chunked, root)
    corrupt = root / "P04" / "P04_02.MP4" / "0.MP4"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000)
    rows = [segment_row(n, a, b, v, o) for n, a, b, v, o in [
        ("P01_01_0", 0.1, 0.9, 0, 1), ("P03_01_0", 0.0, 1.0, 1, 1), ("P01_01_1", 0.8, 1.6, 1, 2),
        ("P04_02_0", 0.2, 0.8, 2, 0), ("P02_03_0", 0.0, 1.3, 1, 1)]]
    return root, write_csv(tmp_path / "train.csv", rows)


def test_bad_video_raises_naming_file_and_segment(broken):
    root, csv = broken
    ds = EK100Dataset(csv, root, source_options=CHUNKS, num_frames=4, crop_size=32)
    with pytest.raises(VideoError, match=r"P03/P03_01\.MP4 \(segment P03_01_0\): chunk folder not found"):
        ds[1]
    with pytest.raises(VideoError, match=r"P04_02\.MP4/0\.MP4 \(segment P04_02_0\): cannot open"):
        ds[3]
    # through workers, the error still names the segment
    with pytest.raises(Exception, match="P03_01_0"):
        list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate))


def test_skip_mode_records_every_skip_and_reports(broken, caplog):
    root, csv = broken
    ds = EK100Dataset(csv, root, source_options=CHUNKS, num_frames=4, crop_size=32, on_error="skip")
    assert isinstance(ds[1], SkippedSegment)
    kept = []
    for batch in DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate):
        ds.collect_skipped(batch)
        if batch["video"] is not None:
            assert batch["video"].shape[0] == len(batch["narration_id"]) == len(batch["verb"])
            kept += batch["narration_id"]
    assert kept == ["P01_01_0", "P01_01_1", "P02_03_0"]
    assert sorted(s.narration_id for s in ds.skipped) == ["P03_01_0", "P04_02_0"]
    assert any("P04_02.MP4/0.MP4" in s.path for s in ds.skipped)
    with caplog.at_level(logging.WARNING, logger="evitvid.data.datasets"):
        report = ds.end_epoch()
    assert len(report) == 2 and ds.skipped == []
    assert "skipped 2 of 5 segments" in caplog.text and "P03_01_0" in caplog.text


def test_collate_all_skipped():
    batch = collate([SkippedSegment("a", "f", "r"), SkippedSegment("b", "g", "s")])
    assert batch["video"] is None and batch["verb"].numel() == 0 and len(batch["skipped"]) == 2


def test_frames_layout_reads_extracted_frames(tree, tmp_path):
    from evitvid.data.extract import extract_frames
    from evitvid.data.video import ChunkedVideos

    segments = read_segments(tree.train_csv)
    report = extract_frames(segments, ChunkedVideos(tree.chunked, chunk_seconds=1), tmp_path, 4, progress=False)
    assert len(report.written) == 6
    ds = EK100Dataset(segments, tmp_path, layout="frames", num_frames=4, crop_size=32, **IDENTITY)
    ids = decoded_ids(ds[1]["video"])  # JPEG: within a few levels of the true frame indices
    assert np.allclose(ids, [27, 33, 39, 45], atol=3)


def test_bad_arguments(tree):
    with pytest.raises(ValueError, match="on_error"):
        EK100Dataset(tree.train_csv, tree.chunked, on_error="ignore")
    with pytest.raises(ValueError, match="unknown sampler"):
        EK100Dataset(tree.train_csv, tree.chunked, sampling="uniform")
    with pytest.raises(TypeError):
        EK100Dataset(tree.train_csv, tree.chunked, source_options={"chunk": 1})


def test_bench_data_smoke(tree, tmp_path, capsys):
    """Not a benchmark: the command runs end to end on a few clips and writes its JSON."""
    from evitvid.data.loader_bench import benchmark_loader, format_loader_results

    results = benchmark_loader(tree.root, clips=3, num_frames=4, crop_size=32, batch_size=2, workers=(0, 1),
                        chunk_seconds=1)
    rows = {r["what"]: r for r in results["results"]}
    assert rows["DataLoader, 0 workers"]["clips"] == 3 and rows["DataLoader, 1 worker"]["clips"] == 3
    assert all(r["clips_per_s"] > 0 for r in rows.values())
    assert rows["decode whole segment, in-process"]["frames"] > rows["decode sampled frames only, in-process"]["frames"]
    assert "clips/s" in format_loader_results(results)
    json.dumps(results)


# ------------------------------------------------------------ the synthetic data set (evitvid.data.synth)


def test_synthetic_tiny_through_the_loader(synth_tiny):
    from evitvid.data.annotations import read_classes, read_video_info
    from evitvid.data.stats import dataset_stats

    ann = synth_tiny / "annotations"
    verbs = read_classes(ann / "EPIC_100_verb_classes.csv", name="verb classes")
    nouns = read_classes(ann / "EPIC_100_noun_classes.csv", name="noun classes")
    train = read_segments(ann / "EPIC_100_train.csv", verb_classes=verbs, noun_classes=nouns)
    val = read_segments(ann / "EPIC_100_validation.csv", verb_classes=verbs, noun_classes=nouns)
    info = read_video_info(ann / "EPIC_100_video_info.csv")
    assert {s.video_id for s in train.values()} | {s.video_id for s in val.values()} <= set(info)
    assert dataset_stats(train).segments == len(train) > 0
    space = ActionSpace.from_segments(train)
    ds = EK100Dataset(train, synth_tiny / "videos", num_frames=8, crop_size=64, train=True, action_space=space)
    for segment in train.values():  # frame ranges (through timestamps) fall inside the 30 fps files
        start, stop = ds.source.frame_range(segment)
        assert stop <= ds.source.num_frames(segment.video_id) + 1
        assert abs(ds.source.num_frames(segment.video_id) - info[segment.video_id].duration * 30) <= 1
    seen = 0
    for batch in DataLoader(ds, batch_size=8, num_workers=2, collate_fn=collate):
        assert batch["video"].shape[1:] == (3, 8, 64, 64) and batch["skipped"] == []
        assert torch.isfinite(batch["video"]).all() and batch["video"].std() > 0.1
        assert (batch["action"] >= 0).all()
        seen += len(batch["narration_id"])
    assert seen == len(train)
    evaluation = EK100Dataset(val, synth_tiny / "videos", num_frames=8, crop_size=64)
    assert evaluation[0]["narration_id"] == next(iter(val))


def test_synthetic_tiny_chunk_boundaries_and_last_chunk(synth_tiny):
    from evitvid.data.video import ChunkedVideos, read_frames

    source = ChunkedVideos(synth_tiny / "videos")
    segments = {**read_segments(synth_tiny / "annotations" / "EPIC_100_train.csv"),
                **read_segments(synth_tiny / "annotations" / "EPIC_100_validation.csv")}
    per_chunk = source.frames_per_chunk
    crossing = [s for s in segments.values()
                if source.frame_range(s)[0] // per_chunk != (source.frame_range(s)[1] - 1) // per_chunk]
    assert crossing, "the tiny preset should have a segment crossing a 15-s chunk boundary"
    seg = crossing[0]
    start, stop = source.frame_range(seg)
    boundary = (start // per_chunk + 1) * per_chunk
    chunk = boundary // per_chunk
    frames = source.read(seg, [start, boundary - 1, boundary, stop - 1])
    before = read_frames(source.chunk_path(seg, chunk - 1), [start - (chunk - 1) * per_chunk, per_chunk - 1])
    after = read_frames(source.chunk_path(seg, chunk), [0, stop - 1 - chunk * per_chunk])
    assert torch.equal(frames, torch.cat([before, after]))
    assert not torch.equal(frames[1], frames[2])
    # the last, shorter chunk: the video's last frame is that chunk's last frame
    video = seg.video_id
    last = source.num_chunks(video) - 1
    total = source.num_frames(video)
    assert 0 < total - last * per_chunk < per_chunk
    tail = read_frames(source.chunk_path(video, last), [total - last * per_chunk - 1])
    assert torch.equal(source.read(video, [total - 1, total]), torch.cat([tail, tail]))  # one past: clamped
