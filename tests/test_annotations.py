"""evitvid.data.annotations: EK100 CSVs to typed records, checked row by row."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import LABELLED, segment_row, write_classes, write_csv

from evitvid.data.annotations import (
    ActionSpace,
    AnnotationError,
    avion_action_pairs,
    Segment,
    frame_number_rate,
    parse_timestamp,
    read_classes,
    read_segments,
    read_video_info,
    to_file_frames,
)


@pytest.mark.parametrize("text, seconds", [
    ("00:00:01.89", 1.89),
    ("00:00:00.560", 0.56),
    ("00:17:47.5", 1067.5),
    ("01:02:03.12345", 3723.12345),
    ("00:00:07", 7.0),
])
def test_parse_timestamp(text, seconds):
    assert parse_timestamp(text) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize("text", ["", "1.5", "00:01", "00:61:00.00", "00:00:75.00", "00:00:01.", "aa:00:00.00"])
def test_parse_timestamp_rejects(text):
    with pytest.raises(ValueError):
        parse_timestamp(text)


@pytest.fixture
def small(tmp_path):
    rows = [segment_row("P01_01_0", 0.5, 2.0, 1, 2), segment_row("P01_01_1", 1.0, 3.25, 0, 1),
            segment_row("P02_05_0", 10.0, 11.0, 1, 2)]
    return {
        "rows": rows,
        "csv": write_csv(tmp_path / "train.csv", rows),
        "verbs": write_classes(tmp_path / "verbs.csv", "verb", 2),
        "nouns": write_classes(tmp_path / "nouns.csv", "noun", 3),
    }


def test_read_segments_typed_rows_keyed_in_file_order(small):
    verbs, nouns = read_classes(small["verbs"]), read_classes(small["nouns"])
    segments = read_segments(small["csv"], verb_classes=verbs, noun_classes=nouns)
    assert list(segments) == ["P01_01_0", "P01_01_1", "P02_05_0"]
    seg = segments["P01_01_1"]
    assert isinstance(seg, Segment)
    assert (seg.participant_id, seg.video_id) == ("P01", "P01_01")
    assert seg.start_timestamp == pytest.approx(1.0) and seg.stop_timestamp == pytest.approx(3.25)
    assert seg.duration == pytest.approx(2.25)
    assert (seg.start_frame, seg.stop_frame) == (60, 195)  # 59.94 fps in the file
    assert seg.num_frames == 135
    assert (seg.verb_class, seg.noun_class, seg.action) == (0, 1, (0, 1))
    assert seg.all_nouns == ("noun1",) and seg.all_noun_classes == (1,)
    assert seg.has_labels
    with pytest.raises(AttributeError):
        seg.verb_class = 3  # frozen


def test_read_test_timestamps_file_has_no_labels(tmp_path, small):
    path = write_csv(tmp_path / "test.csv", small["rows"], LABELLED[:8])
    segments = read_segments(path)
    seg = segments["P02_05_0"]
    assert not seg.has_labels
    assert (seg.verb_class, seg.noun_class, seg.narration, seg.all_nouns) == (-1, -1, None, ())
    assert seg.start_timestamp == pytest.approx(10.0)


def test_classes_and_action_space(small):
    verbs = read_classes(small["verbs"], name="verb classes")
    assert len(verbs) == 2 and verbs.keys == ("verb0", "verb1")
    assert verbs.by_id(1).instances == ("verb1", "verb1:x") and verbs.by_key("verb0").id == 0
    assert 1 in verbs and 2 not in verbs
    with pytest.raises(KeyError, match="verb classes"):
        verbs.by_id(5)
    segments = read_segments(small["csv"])
    space = ActionSpace.from_segments(segments)
    # pairs (1, 2), (0, 1), (1, 2): two distinct, sorted, contiguous ids
    assert space.pairs == ((0, 1), (1, 2))
    assert space.index(1, 2) == 1 and space.pair(0) == (0, 1)
    assert space.get(0, 2) == -1
    with pytest.raises(KeyError):
        space.index(0, 2)


def test_action_space_refuses_unlabelled(tmp_path, small):
    path = write_csv(tmp_path / "test.csv", small["rows"], LABELLED[:8])
    with pytest.raises(ValueError, match="no labels"):
        ActionSpace.from_segments(read_segments(path))


def test_avion_action_pairs_are_numbered_by_their_text(tmp_path):
    rows = [segment_row(f"P01_01_{i}", i, i + 1, verb=v, noun=n) for i, (v, n) in
            enumerate([(1, 2), (10, 5), (1, 2), (2, 0), (1, 10)])]
    train = read_segments(write_csv(tmp_path / "train.csv", rows[:3]))
    val = read_segments(write_csv(tmp_path / "val.csv", rows[3:]))
    # "10:5" < "1:10" < "1:2" < "2:0" as text; numerically (1, 2) would come first
    assert avion_action_pairs([*train.values(), *val.values()]) == [(10, 5), (1, 10), (1, 2), (2, 0)]
    unlabelled = read_segments(write_csv(tmp_path / "test.csv", rows, LABELLED[:8]))
    with pytest.raises(ValueError, match="segment P01_01_0 has no labels"):
        avion_action_pairs(unlabelled)


def _corrupt(rows, row_index, column, value):
    rows = [dict(r) for r in rows]
    rows[row_index][column] = value
    return rows


# (description, column, value, row index to corrupt, expected column in the error, message fragment)
BAD_ROWS = [
    ("stop before start", "stop_timestamp", "00:00:00.20", 1, "stop_timestamp", "not after start"),
    ("stop frame before start frame", "stop_frame", "10", 1, "stop_frame", "not after start frame"),
    ("unknown verb class", "verb_class", "7", 2, "verb_class", "not in the verb"),
    ("unknown noun class", "noun_class", "3", 1, "noun_class", "not in the noun"),
    ("unknown class in all_noun_classes", "all_noun_classes", "[1, 9]", 1, "all_noun_classes", "class id 9"),
    ("unparsable timestamp", "start_timestamp", "0:0:1,5", 2, "start_timestamp", "timestamp"),
    ("unparsable int", "start_frame", "12a", 1, "start_frame", "not an integer"),
    ("negative class", "verb_class", "-1", 1, "verb_class", "below 0"),
    ("empty id", "video_id", "", 1, "video_id", "empty"),
    ("bad list", "all_nouns", "noun1", 1, "all_nouns", "list"),
    ("duplicate narration_id", "narration_id", "P01_01_0", 2, "narration_id", "duplicate"),
]


@pytest.mark.parametrize("description, column, value, index, error_column, fragment", BAD_ROWS,
                         ids=[b[0] for b in BAD_ROWS])
def test_bad_row_names_file_row_and_column(tmp_path, small, description, column, value, index, error_column, fragment):
    path = write_csv(tmp_path / "bad.csv", _corrupt(small["rows"], index, column, value))
    with pytest.raises(AnnotationError) as info:
        read_segments(path, verb_classes=read_classes(small["verbs"], name="verb classes"),
                      noun_classes=read_classes(small["nouns"], name="noun classes"))
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.path, err.row, err.line, err.column) == (str(path), index + 1, index + 2, error_column)
    message = str(err)
    assert str(path) in message and f"line {index + 2} (data row {index + 1})" in message
    assert repr(error_column) in message and fragment in message


def test_missing_column_in_header(tmp_path, small):
    path = write_csv(tmp_path / "bad.csv", small["rows"], [c for c in LABELLED if c != "noun_class"])
    with pytest.raises(AnnotationError, match=r"line 1 \(header\), column 'noun_class': missing column") as info:
        read_segments(path)
    assert info.value.row is None and info.value.line == 1


def test_short_row_names_first_missing_column(tmp_path, small):
    path = write_csv(tmp_path / "bad.csv", small["rows"])
    lines = path.read_text().splitlines()
    lines[2] = ",".join(lines[2].split(",")[:7])  # data row 2 loses stop_frame onwards
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=r"line 3 \(data row 2\), column 'stop_frame'"):
        read_segments(path)


def test_missing_file_names_path(tmp_path):
    path = tmp_path / "nowhere" / "EPIC_100_train.csv"
    with pytest.raises(FileNotFoundError, match="nowhere/EPIC_100_train.csv"):
        read_segments(path)


def test_bad_class_and_video_info_rows(tmp_path):
    classes = write_csv(tmp_path / "c.csv", [{"id": "0", "key": "a", "instances": "['a']", "category": "x"},
                                             {"id": "0", "key": "b", "instances": "['b']", "category": "x"}],
                        ("id", "key", "instances", "category"))
    with pytest.raises(AnnotationError, match=r"data row 2\), column 'id': duplicate"):
        read_classes(classes)
    info = write_csv(tmp_path / "v.csv",
                     [{"video_id": "P01_01", "duration": "10.5", "fps": "50", "resolution": "1920x1080"},
                      {"video_id": "P01_02", "duration": "3", "fps": "fast", "resolution": "1x1"}],
                     ("video_id", "duration", "fps", "resolution"))
    with pytest.raises(AnnotationError, match=r"data row 2\), column 'fps'"):
        read_video_info(info)


def test_to_file_frames_through_timestamps_or_frame_numbers():
    seg = Segment("P01_01_0", "P01", "P01_01", None, 16.05, 17.5, 962, 1049)
    assert to_file_frames(seg, 30) == (482, 525)  # 481.5 rounds half up, not to even
    # through frame numbers at a stated native rate (962 / 59.94 * 30 = 481.48)
    assert to_file_frames(seg, 30, native_fps=59.94) == (481, 525)
    tiny = Segment("x_0", "x", "x_0", None, 1.00, 1.01, 60, 61)
    assert to_file_frames(tiny, 30) == (30, 31)  # never empty
    with pytest.raises(ValueError):
        to_file_frames(seg, 0)


# ------------------------------------------------------------ the real files


def test_real_validation_file(shared_dir):
    ek = shared_dir / "ek100"
    verbs = read_classes(ek / "EPIC_100_verb_classes.csv", name="verb classes")
    nouns = read_classes(ek / "EPIC_100_noun_classes.csv", name="noun classes")
    assert (len(verbs), len(nouns)) == (97, 300)
    assert verbs.by_id(0).key == "take" and "collect-from" in verbs.by_id(0).instances
    segments = read_segments(ek / "EPIC_100_validation.csv", verb_classes=verbs, noun_classes=nouns)
    assert len(segments) == 9668
    first = segments["P01_11_0"]
    assert (first.start_timestamp, first.stop_timestamp, first.start_frame, first.stop_frame) == (0.0, 1.89, 1, 113)
    assert (first.verb, first.verb_class, first.noun, first.noun_class) == ("take", 0, "plate", 2)
    frame = pd.read_csv(ek / "EPIC_100_validation.csv")
    assert list(segments) == frame.narration_id.tolist()
    # the empty narration timestamps are kept as None, not rejected
    missing = sum(s.narration_timestamp is None for s in segments.values())
    assert missing == int(frame.narration_timestamp.isna().sum()) > 0


def test_real_frame_numbers_are_at_60_fps_not_the_native_rate(shared_dir):
    """Why segments map to file frames through timestamps: the frame numbers' rate is not the video's."""
    ek = shared_dir / "ek100"
    segments = read_segments(ek / "EPIC_100_validation.csv")
    info = read_video_info(ek / "EPIC_100_video_info.csv")
    assert len(info) == 700 and info["P01_01"].fps == pytest.approx(59.94, abs=0.01)
    rates = frame_number_rate(segments.values())
    assert len(rates) > 100
    assert all(abs(rate - 60.0) < 0.05 for rate in rates.values())
    odd = {v: info[v].fps for v in rates if abs(info[v].fps - 60) > 1}
    assert odd and all(abs(fps - 60) > 10 for fps in odd.values())  # e.g. P18_09 at 90 fps, P09_08 at 29.97


def test_real_chunk_crossing_fraction(shared_dir):
    segments = read_segments(shared_dir / "ek100" / "EPIC_100_validation.csv").values()
    crossing = 0
    for seg in segments:
        start, stop = to_file_frames(seg, 30)
        crossing += start // 450 != (stop - 1) // 450
    assert crossing / len(segments) == pytest.approx(0.219, abs=0.005)
    assert math.isclose(min(s.duration for s in segments), 0.5)


def test_real_action_pairs_in_the_order_of_the_paper_code(shared_dir, tmp_path, monkeypatch):
    """The paper's code numbers its classes with AVION's `generate_label_map`, which reads the train
    and validation files from fixed paths; given the validation file as both (the train file is
    not in the shared folder), its classes are ours in the same order."""
    code = shared_dir / "paper-code"
    if not (code / "avion" / "utils" / "misc.py").is_file():
        pytest.skip("the paper's code is not in the shared folder")
    import importlib.util
    spec = importlib.util.spec_from_file_location("avion_misc", code / "avion" / "utils" / "misc.py")
    misc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(misc)
    folder = tmp_path / "datasets" / "EK100" / "epic-kitchens-100-annotations"
    folder.mkdir(parents=True)
    val = shared_dir / "ek100" / "EPIC_100_validation.csv"
    for name in ("EPIC_100_train.csv", "EPIC_100_validation.csv"):
        (folder / name).symlink_to(val)
    monkeypatch.chdir(tmp_path)
    _, mapping = misc.generate_label_map("ek100_cls")
    theirs = [tuple(int(x) for x in vn.split(":")) for vn, _ in sorted(mapping.items(), key=lambda item: item[1])]
    ours = avion_action_pairs(read_segments(val))
    assert ours == theirs and len(ours) > 1000
    assert ours != sorted(ours)  # the text order is not the numeric one
