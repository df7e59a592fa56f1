"""evitvid.data.extract: N JPEG frames per segment, parallel, resumable, atomic, failures named."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import segment_row, write_csv

from evitvid.cli import main
from evitvid.data.annotations import read_segments
from evitvid.data.extract import extract_frames
from evitvid.data.sampling import tsn_indices
from evitvid.data.video import ChunkedVideos, FrameFolders, WholeVideos


@pytest.fixture
def segments(tree):
    return read_segments(tree.train_csv)


def test_extract_in_parallel_writes_tsn_midpoints(tree, segments, tmp_path):
    source = ChunkedVideos(tree.chunked, chunk_seconds=1)
    report = extract_frames(segments, source, tmp_path, 4, workers=2, progress=False)
    assert sorted(report.written) == sorted(segments) and not report.failed and not report.skipped
    folders = FrameFolders(tmp_path)
    for seg in segments.values():
        folder = folders.path(seg)
        assert sorted(p.name for p in folder.iterdir()) == ["00000.jpg", "00001.jpg", "00002.jpg", "00003.jpg",
                                                            "frames.json"]
        manifest = json.loads((folder / "frames.json").read_text())
        start, stop = source.frame_range(seg)
        assert manifest["video_frames"] == tsn_indices(start, stop, 4).tolist()
        red = folders.read(seg, range(4)).numpy()[:, 24, 32, 0].astype(int)
        expected = np.minimum(manifest["video_frames"], tree.video_frames[seg.video_id] - 1)
        assert np.all(np.abs(red - expected) <= 3)  # JPEG: near the frame index written in red


def test_rerun_skips_finished_segments_and_redoes_incomplete_ones(tree, segments, tmp_path):
    source = WholeVideos(tree.whole)
    extract_frames(segments, source, tmp_path, 3, progress=False)
    folders = FrameFolders(tmp_path)
    done = folders.frame_file(segments["P01_01_0"], 0)
    before = done.stat().st_mtime_ns
    # simulate a killed run on one segment: a leftover temp file, a missing JPEG and no manifest
    victim = folders.path(segments["P02_03_1"])
    (victim / "00002.jpg").unlink()
    (victim / "frames.json").unlink()
    (victim / ".00002.jpg.999.tmp").write_bytes(b"half")
    report = extract_frames(segments, source, tmp_path, 3, progress=False)
    assert report.written == ["P02_03_1"] and len(report.skipped) == 5
    assert done.stat().st_mtime_ns == before
    assert folders.is_complete(segments["P02_03_1"], 3)
    # asking for a different number of frames redoes everything
    assert len(extract_frames(segments, source, tmp_path, 2, progress=False).written) == 6


def test_a_failed_write_leaves_no_partial_file(tree, segments, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_replace = os.replace

    def failing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # die while moving the second JPEG into place
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    seg = segments["P01_01_0"]
    report = extract_frames([seg], ChunkedVideos(tree.chunked, chunk_seconds=1), tmp_path, 4, progress=False)
    assert report.failed and report.failed[0][0] == "P01_01_0" and "killed" in report.failed[0][2]
    folder = FrameFolders(tmp_path).path(seg)
    assert sorted(p.name for p in folder.iterdir()) == ["00000.jpg"]  # no temp file, no manifest
    assert not FrameFolders(tmp_path).is_complete(seg, 4)


def test_failures_are_reported_naming_the_segment(tree, tmp_path, capsys):
    rows = [segment_row("P01_01_0", 0.1, 0.9), segment_row("P08_01_0", 0.0, 1.0), segment_row("P02_03_1", 0.5, 0.6)]
    csv = write_csv(tmp_path / "ann.csv", rows)
    out = tmp_path / "frames"
    code = main(["extract", "--annotations", str(csv), "--videos", str(tree.chunked), "--layout", "chunked",
                 "--chunk-seconds", "1", "--out", str(out), "--num-frames", "2", "--workers", "2", "--no-progress"])
    assert code == 1
    printed = capsys.readouterr()
    assert "2 written, 0 already done, 1 failed" in printed.out
    assert "FAILED P08_01_0" in printed.out and "P08/P08_01.MP4" in printed.out
    assert FrameFolders(out).is_complete("P02_03_1", 2) and not (out / "P08").exists()
    # rerun: nothing to redo but the failure
    code = main(["extract", "--annotations", str(csv), "--videos", str(tree.chunked), "--chunk-seconds", "1",
                 "--out", str(out), "--num-frames", "2", "--workers", "0", "--no-progress"])
    assert code == 1 and "0 written, 2 already done, 1 failed" in capsys.readouterr().out
