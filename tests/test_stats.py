"""evitvid.data.stats: the paper's dataset statistics, as a library function and the `stats` command."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import LABELLED, segment_row, write_classes, write_csv

from evitvid.cli import main
from evitvid.data.annotations import Segment, read_segments
from evitvid.data.stats import dataset_stats, format_stats


def test_dataset_stats_by_hand():
    segments = [
        Segment("P01_01_0", "P01", "P01_01", None, 0.0, 1.0, 0, 60, verb_class=0, noun_class=1),
        Segment("P01_01_1", "P01", "P01_01", None, 2.0, 2.5, 120, 150, verb_class=0, noun_class=2),
        Segment("P02_01_0", "P02", "P02_01", None, 5.0, 9.0, 250, 450, verb_class=3, noun_class=1),
    ]
    stats = dataset_stats(segments)
    assert (stats.segments, stats.videos, stats.participants) == (3, 2, 2)
    assert (stats.min_frames, stats.max_frames) == (30, 200)
    assert stats.mean_frames == pytest.approx(290 / 3)
    assert (stats.min_seconds, stats.max_seconds, stats.mean_seconds) == pytest.approx((0.5, 4.0, 5.5 / 3))
    assert (stats.verb_classes, stats.noun_classes, stats.action_classes) == (2, 2, 3)
    table = format_stats(stats)
    assert "longest segment (frames)" in table and "200" in table


def test_unlabelled_stats_have_no_class_counts(tmp_path):
    path = write_csv(tmp_path / "test.csv", [segment_row("P01_01_0", 0, 1), segment_row("P01_01_1", 1, 3)],
                     LABELLED[:8])
    stats = dataset_stats(read_segments(path))
    assert stats.segments == 2 and stats.verb_classes is None and stats.action_classes is None
    assert "-" in format_stats(stats).splitlines()[-1]


def test_empty_raises():
    with pytest.raises(ValueError):
        dataset_stats([])


def test_stats_command_json_and_table(tmp_path, capsys):
    path = write_csv(tmp_path / "train.csv", [segment_row("P01_01_0", 0, 1, 1, 2), segment_row("P03_02_0", 1, 3, 0, 2)])
    verbs = write_classes(tmp_path / "v.csv", "verb", 2)
    nouns = write_classes(tmp_path / "n.csv", "noun", 3)
    assert main(["stats", str(path), "--verb-classes", str(verbs), "--noun-classes", str(nouns), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["segments"] == 2 and data["participants"] == 2
    assert (data["verb_classes"], data["verb_classes_defined"], data["noun_classes_defined"]) == (2, 2, 3)
    assert main(["stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "segments" in out and "shortest segment (s)" in out


def test_real_validation_stats_match_pandas(shared_dir, capsys):
    """Computed independently with pandas: the counts and lengths the paper reports for train."""
    path = shared_dir / "ek100" / "EPIC_100_validation.csv"
    frame = pd.read_csv(path)
    length = frame.stop_frame - frame.start_frame
    seconds = (pd.to_timedelta(frame.stop_timestamp) - pd.to_timedelta(frame.start_timestamp)).dt.total_seconds()
    stats = dataset_stats(read_segments(path))
    assert stats.segments == len(frame) == 9668
    assert stats.videos == frame.video_id.nunique()
    assert stats.participants == frame.participant_id.nunique()
    assert (stats.min_frames, stats.max_frames) == (length.min(), length.max())
    assert stats.mean_frames == pytest.approx(length.mean())
    assert (stats.min_seconds, stats.max_seconds) == pytest.approx((seconds.min(), seconds.max()))
    assert stats.mean_seconds == pytest.approx(seconds.mean())
    assert stats.verb_classes == frame.verb_class.nunique()
    assert stats.action_classes == len(frame.groupby(["verb_class", "noun_class"]))
    assert main(["stats", str(path)]) == 0
    assert "9,668" in capsys.readouterr().out
