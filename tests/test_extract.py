"""evitvid.data.extract: N JPEG frames per segment, parallel, resumable, atomic, failures named."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import child_pids, kill_and_expect_workers_gone, reaped, segment_row, wait_until, write_csv
from PIL import Image

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


def test_extract_decodes_with_the_decoder_asked_for(tree, segments, tmp_path, monkeypatch):
    import evitvid.commands.extract as command
    made = []
    real = command.make_source
    monkeypatch.setattr(command, "make_source", lambda *a, **kw: made.append(kw["backend"]) or real(*a, **kw))
    csv = write_csv(tmp_path / "ann.csv", [segment_row("P01_01_0", 0.1, 0.9)])
    for decoder in ("pyav", "decord"):
        assert main(["extract", "--annotations", str(csv), "--videos", str(tree.chunked), "--chunk-seconds", "1",
                     "--out", str(tmp_path / decoder), "--num-frames", "2", "--workers", "0", "--no-progress",
                     "--decoder", decoder]) == 0
    assert made == ["pyav", "decord"]
    assert [p.read_bytes() for p in sorted((tmp_path / "pyav").rglob("*.jpg"))] == \
        [p.read_bytes() for p in sorted((tmp_path / "decord").rglob("*.jpg"))]  # lossless source: same frames
    with pytest.raises(SystemExit):
        main(["extract", "--annotations", str(csv), "--videos", str(tree.chunked), "--out", str(tmp_path / "x"),
              "--decoder", "opencv"])


@pytest.mark.slow  # a command in its own interpreter, killed mid-run: about 8 s
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_sigkill_of_extract_kills_its_workers_and_leaves_only_whole_files(tree, tmp_path):
    """Issue item 11: SIGKILL of `extract --workers 2` left its two workers writing on."""
    # 400 overlapping 1-s segments of P01_01 (2.5 s): enough to be killed in the middle
    rows = [segment_row(f"P01_01_{i}", start, start + 1.0) for i, start in enumerate(np.linspace(0, 1.4, 400))]
    csv = write_csv(tmp_path / "many.csv", rows)
    out = tmp_path / "frames"
    command = [sys.executable, "-m", "evitvid", "extract", "--annotations", str(csv), "--videos", str(tree.chunked),
               "--chunk-seconds", "1", "--out", str(out), "--num-frames", "16", "--no-progress"]
    parent = subprocess.Popen([*command, "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parents[1])
    workers: list[int] = []
    with reaped(parent, workers):
        def busy() -> bool:
            workers[:] = child_pids(parent.pid)
            return parent.poll() is not None or (len(workers) >= 2 and any(out.rglob("frames.json")))

        assert wait_until(busy, timeout=120) and parent.poll() is None, \
            f"extract ended before it could be killed: {parent.stderr.read().decode()[-2000:]}"
        kill_and_expect_workers_gone(parent, workers)

    segments = read_segments(csv)
    folders = FrameFolders(out)
    done = [n for n in segments if (folders.path(n) / "frames.json").exists()]
    assert 0 < len(done) < len(segments)
    for jpeg in out.rglob("*.jpg"):  # under its final name, a JPEG is whole
        with Image.open(jpeg) as image:
            image.load()
    assert all(folders.is_complete(n, 16) for n in done)  # a manifest comes after its JPEGs
    # A rerun finishes the job, reusing what the killed run completed.
    rerun = subprocess.run([*command, "--workers", "0"], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[1])
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{len(segments) - len(done)} written, {len(done)} already done, 0 failed" in rerun.stdout
    assert all(folders.is_complete(n, 16) for n in segments)
    assert not list(out.rglob("*.tmp"))  # the killed run's temporaries went with the segments redone
