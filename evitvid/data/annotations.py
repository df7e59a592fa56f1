"""EPIC-KITCHENS-100 annotation files as typed records keyed by `narration_id`.

Reads the official CSVs (epic-kitchens-100-annotations): the train / validation files
(15 columns), the test timestamps file (the first 8 columns, no labels), the verb and noun
class files (`id,key,instances,category`) and `EPIC_100_video_info.csv`. Every row is
checked; a wrong row raises `AnnotationError` naming the file, the line number (the header
is line 1) with the 1-based data row, and the column. AVION's `clip_dataset.py` reads the
same files positionally and unchecked; here every column is looked up by name.

Frame numbers versus file frames
--------------------------------
`start_frame`/`stop_frame` are *not* usable as frame indices into AVION's resized 30 fps
chunks, and on the real validation file they are not even at each video's native fps:
for every video (59.94, 29.97, 47.95 and 90 fps alike) `start_frame` is within one frame
of `start_timestamp * 60` (see `frame_number_rate`, tested on the real file). Converting
with the video-info fps would therefore be off by a factor of 2 on 29.97 fps videos and
drift by 0.1 % (1.8 s after 30 minutes) on 59.94 fps ones. The timestamps are the one
field that means the same thing in every copy of the videos (original, AVION's resized
chunks, this project's synthetic set), so `to_file_frames` maps segments to file frames
through the timestamps by default; the frame-number route is available with an explicit
`native_fps` for files whose frame numbers are known to be at that rate.
"""
from __future__ import annotations

import ast
import csv
import math
import re
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LABELLED_COLUMNS",
    "UNLABELLED_COLUMNS",
    "CLASS_COLUMNS",
    "VIDEO_INFO_COLUMNS",
    "AnnotationError",
    "Segment",
    "ClassEntry",
    "ClassList",
    "ActionSpace",
    "avion_action_pairs",
    "VideoInfo",
    "parse_timestamp",
    "read_segments",
    "read_classes",
    "read_video_info",
    "segment_list",
    "to_file_frames",
    "frame_number_rate",
]

LABELLED_COLUMNS: tuple[str, ...] = (
    "narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
    "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
    "noun_class", "all_nouns", "all_noun_classes",
)
# EPIC_100_test_timestamps.csv: the same columns without narration and labels.
UNLABELLED_COLUMNS: tuple[str, ...] = LABELLED_COLUMNS[:8]
CLASS_COLUMNS: tuple[str, ...] = ("id", "key", "instances", "category")
VIDEO_INFO_COLUMNS: tuple[str, ...] = ("video_id", "duration", "fps", "resolution")

_TIMESTAMP = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)(?:\.(\d+))?$")


class AnnotationError(ValueError):
    """A malformed annotation file or row.

    `line` is the physical line number in the file (the header is line 1); `row` is the
    1-based data row (the first row after the header is row 1), None for header errors.
    """

    def __init__(self, path: str | Path, message: str, *, line: int | None = None,
                 row: int | None = None, column: str | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.row = row
        self.column = column
        self.reason = message
        where = [self.path]
        if line is not None:
            where.append(f"line {line}" + (f" (data row {row})" if row is not None else " (header)"))
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(", ".join(where) + ": " + message)


def parse_timestamp(text: str) -> float:
    """`HH:MM:SS[.fff...]` (any number of fraction digits) -> seconds as a float."""
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"not a HH:MM:SS.ff timestamp: {text!r}")
    hours, minutes, seconds, fraction = match.groups()
    # float("SS.ff") is the double nearest to the written seconds (1 + 89/100 is not).
    return int(hours) * 3600 + int(minutes) * 60 + float(f"{seconds}.{fraction or 0}")


@dataclass(frozen=True, slots=True)
class Segment:
    """One action segment (one CSV row). Times are in seconds; labels are -1 when absent.

    `narration_timestamp` is None where the file leaves it empty (70 validation rows).
    """

    narration_id: str
    participant_id: str
    video_id: str
    narration_timestamp: float | None
    start_timestamp: float
    stop_timestamp: float
    start_frame: int
    stop_frame: int
    narration: str | None = None
    verb: str | None = None
    verb_class: int = -1
    noun: str | None = None
    noun_class: int = -1
    all_nouns: tuple[str, ...] = ()
    all_noun_classes: tuple[int, ...] = ()

    @property
    def num_frames(self) -> int:
        """Length as the paper counts it: `stop_frame - start_frame` (annotation frame numbers)."""
        return self.stop_frame - self.start_frame

    @property
    def duration(self) -> float:
        """Length in seconds, from the timestamps."""
        return self.stop_timestamp - self.start_timestamp

    @property
    def has_labels(self) -> bool:
        return self.verb_class >= 0 and self.noun_class >= 0

    @property
    def action(self) -> tuple[int, int]:
        """The (verb_class, noun_class) pair; (-1, -1) without labels."""
        return (self.verb_class, self.noun_class)


def _round_half_up(x: float) -> int:
    # Python's round() rounds halves to even, which would make the mapping depend on parity.
    return int(math.floor(x + 0.5))


def to_file_frames(segment: Segment, file_fps: float, *, native_fps: float | None = None) -> tuple[int, int]:
    """Half-open range [start, stop) of frame indices of `segment` in a video file at `file_fps`.

    By default through the timestamps: `round(t * file_fps)` for both ends (see the module
    docstring for why). With `native_fps`, through the annotation frame numbers instead:
    `round(frame * file_fps / native_fps)`. The range always holds at least one frame.
    The end of the video is not known here; readers clamp indices past it.
    """
    if file_fps <= 0:
        raise ValueError(f"file_fps must be positive, got {file_fps}")
    if native_fps is None:
        start = _round_half_up(segment.start_timestamp * file_fps)
        stop = _round_half_up(segment.stop_timestamp * file_fps)
    else:
        if native_fps <= 0:
            raise ValueError(f"native_fps must be positive, got {native_fps}")
        scale = file_fps / native_fps
        start = _round_half_up(segment.start_frame * scale)
        stop = _round_half_up(segment.stop_frame * scale)
    start = max(start, 0)
    return start, max(stop, start + 1)


def frame_number_rate(segments: Iterable[Segment], *, min_seconds: float = 60.0) -> dict[str, float]:
    """Per video, the rate (frames per second) the annotation frame numbers are counted at.

    The least-squares slope of `start_frame` against `start_timestamp` over the video's
    segments starting after `min_seconds` (so rounding does not dominate); videos without
    such segments are left out. Compare with `VideoInfo.fps` before trusting frame numbers.
    """
    times: dict[str, list[float]] = {}
    frames: dict[str, list[int]] = {}
    for seg in segments:
        if seg.start_timestamp >= min_seconds:
            times.setdefault(seg.video_id, []).append(seg.start_timestamp)
            frames.setdefault(seg.video_id, []).append(seg.start_frame)
    rates = {}
    for video_id, t in times.items():
        t_arr, f_arr = np.asarray(t), np.asarray(frames[video_id], dtype=float)
        rates[video_id] = float(np.dot(t_arr, f_arr) / np.dot(t_arr, t_arr))  # line through 0
    return rates


@dataclass(frozen=True, slots=True)
class ClassEntry:
    """One row of `EPIC_100_verb_classes.csv` / `EPIC_100_noun_classes.csv`."""

    id: int
    key: str
    instances: tuple[str, ...]
    category: str


class ClassList(Sequence[ClassEntry]):
    """A verb or noun label space: entries in file order, looked up by id or key."""

    def __init__(self, entries: Iterable[ClassEntry], *, name: str = "classes") -> None:
        self.name = name
        self._entries = tuple(entries)
        self._by_id = {e.id: e for e in self._entries}
        self._by_key = {e.key: e for e in self._entries}
        if len(self._by_id) != len(self._entries):
            raise ValueError(f"{name}: duplicate class ids")

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index):  # type: ignore[override]
        return self._entries[index]

    def __iter__(self) -> Iterator[ClassEntry]:
        return iter(self._entries)

    def __contains__(self, class_id: object) -> bool:  # type: ignore[override]
        return class_id in self._by_id

    def __repr__(self) -> str:
        return f"ClassList({self.name!r}, {len(self)} classes)"

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(e.id for e in self._entries)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self._entries)

    def by_id(self, class_id: int) -> ClassEntry:
        try:
            return self._by_id[class_id]
        except KeyError:
            raise KeyError(f"{self.name}: no class with id {class_id}") from None

    def by_key(self, key: str) -> ClassEntry:
        try:
            return self._by_key[key]
        except KeyError:
            raise KeyError(f"{self.name}: no class with key {key!r}") from None


class ActionSpace:
    """Contiguous action ids for the (verb_class, noun_class) pairs seen in a training set.

    Pairs are sorted by (verb, noun), so the ids depend only on the set of pairs, not on the
    file order. A pair absent from training (possible in validation) maps to -1 with `get`.
    """

    def __init__(self, pairs: Iterable[tuple[int, int]]) -> None:
        self.pairs: tuple[tuple[int, int], ...] = tuple(sorted(set((int(v), int(n)) for v, n in pairs)))
        self._ids = {pair: i for i, pair in enumerate(self.pairs)}

    @classmethod
    def from_segments(cls, segments: Iterable[Segment] | Mapping[str, Segment]) -> ActionSpace:
        items = segment_list(segments)
        pairs = []
        for seg in items:
            if not seg.has_labels:
                raise ValueError(f"segment {seg.narration_id} has no labels; "
                                 "build the action space from a labelled file")
            pairs.append(seg.action)
        return cls(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __contains__(self, pair: object) -> bool:
        return pair in self._ids

    def index(self, verb_class: int, noun_class: int) -> int:
        """The action id of a pair; KeyError when the pair is not in the space."""
        try:
            return self._ids[(verb_class, noun_class)]
        except KeyError:
            raise KeyError(f"action (verb {verb_class}, noun {noun_class}) is not in the action space") from None

    def get(self, verb_class: int, noun_class: int, default: int = -1) -> int:
        return self._ids.get((verb_class, noun_class), default)

    def pair(self, action_id: int) -> tuple[int, int]:
        return self.pairs[action_id]


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """One row of `EPIC_100_video_info.csv`."""

    video_id: str
    duration: float
    fps: float
    width: int
    height: int


# ---------------------------------------------------------------- CSV reading


def avion_action_pairs(segments: Iterable[Segment] | Mapping[str, Segment]) -> list[tuple[int, int]]:
    """The (verb_class, noun_class) pairs of `segments`, once each, in the order AVION numbers its
    EK100 action classes (`avion/utils/misc.py`, `generate_label_map`: the strings "verb:noun" of
    every pair in the train and validation files, sorted as text, so "10:5" comes before "1:2").
    Class i of a model trained by AVION's script (the paper's code) is pair i of the train and
    validation segments together; `ActionSpace` numbers pairs by value instead.
    """
    pairs = set()
    for seg in segment_list(segments):
        if not seg.has_labels:
            raise ValueError(f"segment {seg.narration_id} has no labels; the action classes come from labelled files")
        pairs.add(seg.action)
    return sorted(pairs, key=lambda pair: f"{pair[0]}:{pair[1]}")


def segment_list(segments: Iterable[Segment] | Mapping[str, Segment]) -> list[Segment]:
    """Segments as a list, from `read_segments`' {narration_id: Segment} or any iterable of them."""
    return list(segments.values() if isinstance(segments, Mapping) else segments)


class _Rows:
    """Iterates a CSV's data rows as `_Field` parsers after checking the header."""

    def __init__(self, path: str | Path, required: Sequence[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"annotation file not found: {self.path}")
        self.required = tuple(required)

    def header(self) -> list[str]:
        with self.path.open(newline="", encoding="utf-8") as f:
            first = next(csv.reader(f), None)
        if first is None:
            raise AnnotationError(self.path, "empty file, expected a header", line=1)
        return [c.strip() for c in first]

    def __iter__(self) -> Iterator["_Field"]:
        with self.path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [c.strip() for c in next(reader)]
            for column in self.required:
                if column not in header:
                    raise AnnotationError(self.path, f"missing column (header has {', '.join(header)})",
                                          line=1, column=column)
            positions = {c: header.index(c) for c in self.required}
            row_number = 0
            for fields in reader:
                if not fields:  # blank line
                    continue
                row_number += 1
                line = reader.line_num
                if len(fields) != len(header):
                    # A short row is missing its last columns; name the first one missing.
                    column = header[len(fields)] if len(fields) < len(header) else None
                    raise AnnotationError(
                        self.path, f"{len(fields)} fields, the header has {len(header)}",
                        line=line, row=row_number, column=column)
                yield _Field(self.path, line, row_number, {c: fields[i] for c, i in positions.items()})


class _Field:
    """Parses one column of one row, raising AnnotationError with the location."""

    def __init__(self, path: Path, line: int, row: int, values: dict[str, str]) -> None:
        self.path, self.line, self.row, self.values = path, line, row, values

    def error(self, column: str, message: str) -> AnnotationError:
        return AnnotationError(self.path, message, line=self.line, row=self.row, column=column)

    def check_new(self, column: str, value: Any, seen: Container, label: str | None = None) -> None:
        """Raise if this row's key `value` (from `column`) was already seen in an earlier row."""
        if value in seen:
            raise self.error(column, f"duplicate {label or column} {value!r}")

    def text(self, column: str, *, allow_empty: bool = False) -> str:
        value = self.values[column].strip()
        if not value and not allow_empty:
            raise self.error(column, "empty value")
        return value

    def integer(self, column: str, *, minimum: int | None = None) -> int:
        text = self.text(column)
        try:
            value = int(text)
        except ValueError:
            raise self.error(column, f"not an integer: {text!r}") from None
        if minimum is not None and value < minimum:
            raise self.error(column, f"{value} is below {minimum}")
        return value

    def number(self, column: str, *, positive: bool = False) -> float:
        text = self.text(column)
        try:
            value = float(text)
        except ValueError:
            raise self.error(column, f"not a number: {text!r}") from None
        if not math.isfinite(value) or (positive and value <= 0):
            raise self.error(column, f"expected a {'positive ' if positive else ''}finite number, got {text!r}")
        return value

    def timestamp(self, column: str, *, optional: bool = False) -> float | None:
        text = self.text(column, allow_empty=optional)
        if not text:
            return None
        try:
            return parse_timestamp(text)
        except ValueError as exc:
            raise self.error(column, str(exc)) from None

    def literal_list(self, column: str, kind: type) -> tuple:
        text = self.text(column)
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise self.error(column, f"not a list literal: {text!r}") from None
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, kind) for v in value):
            raise self.error(column, f"expected a list of {kind.__name__}, got {text!r}")
        return tuple(value)


def _check_class(field: _Field, column: str, class_id: int, classes: ClassList | None) -> None:
    if classes is not None and class_id not in classes:
        raise field.error(column, f"class id {class_id} is not in the {classes.name} file")


def read_segments(
    path: str | Path,
    *,
    verb_classes: ClassList | None = None,
    noun_classes: ClassList | None = None,
) -> dict[str, Segment]:
    """Read an EK100 segment file into {narration_id: Segment}, in file order.

    A file with the `narration`/label columns is read as labelled (all 15 columns required);
    a file with none of them (`EPIC_100_test_timestamps.csv`) as unlabelled, with labels -1.
    Other columns (e.g. an old `uid`) are ignored. With class lists given, every class id is
    checked against them. Raises `AnnotationError` on the first wrong row,
    `FileNotFoundError` when the file is missing.
    """
    rows = _Rows(path, UNLABELLED_COLUMNS)
    header = rows.header()
    label_columns = LABELLED_COLUMNS[len(UNLABELLED_COLUMNS):]
    labelled = any(c in header for c in label_columns)
    if labelled:
        rows.required = LABELLED_COLUMNS

    segments: dict[str, Segment] = {}
    for field in rows:
        narration_id = field.text("narration_id")
        field.check_new("narration_id", narration_id, segments)
        start_ts = field.timestamp("start_timestamp")
        stop_ts = field.timestamp("stop_timestamp")
        assert start_ts is not None and stop_ts is not None
        if stop_ts <= start_ts:
            raise field.error("stop_timestamp", f"stop {field.values['stop_timestamp']} is not after start "
                                                f"{field.values['start_timestamp']}")
        start_frame = field.integer("start_frame", minimum=0)
        stop_frame = field.integer("stop_frame", minimum=0)
        if stop_frame <= start_frame:
            raise field.error("stop_frame", f"stop frame {stop_frame} is not after start frame {start_frame}")
        common = dict(
            narration_id=narration_id,
            participant_id=field.text("participant_id"),
            video_id=field.text("video_id"),
            # Empty in 70 rows of the real validation file: the narration time is unknown.
            narration_timestamp=field.timestamp("narration_timestamp", optional=True),
            start_timestamp=start_ts,
            stop_timestamp=stop_ts,
            start_frame=start_frame,
            stop_frame=stop_frame,
        )
        if labelled:
            verb_class = field.integer("verb_class", minimum=0)
            noun_class = field.integer("noun_class", minimum=0)
            all_noun_classes = field.literal_list("all_noun_classes", int)
            _check_class(field, "verb_class", verb_class, verb_classes)
            _check_class(field, "noun_class", noun_class, noun_classes)
            for class_id in all_noun_classes:
                _check_class(field, "all_noun_classes", class_id, noun_classes)
            segments[narration_id] = Segment(
                **common,
                narration=field.text("narration", allow_empty=True),
                verb=field.text("verb"),
                verb_class=verb_class,
                noun=field.text("noun"),
                noun_class=noun_class,
                all_nouns=field.literal_list("all_nouns", str),
                all_noun_classes=all_noun_classes,
            )
        else:
            segments[narration_id] = Segment(**common)
    return segments


def read_classes(path: str | Path, *, name: str | None = None) -> ClassList:
    """Read `EPIC_100_verb_classes.csv` or `EPIC_100_noun_classes.csv`."""
    rows = _Rows(path, CLASS_COLUMNS)
    entries: list[ClassEntry] = []
    seen: set[int] = set()
    for field in rows:
        class_id = field.integer("id", minimum=0)
        field.check_new("id", class_id, seen, label="class id")
        seen.add(class_id)
        entries.append(ClassEntry(
            id=class_id,
            key=field.text("key"),
            instances=field.literal_list("instances", str),
            category=field.text("category"),
        ))
    return ClassList(entries, name=name or Path(path).name)


def read_video_info(path: str | Path) -> dict[str, VideoInfo]:
    """Read `EPIC_100_video_info.csv` into {video_id: VideoInfo}."""
    rows = _Rows(path, VIDEO_INFO_COLUMNS)
    videos: dict[str, VideoInfo] = {}
    for field in rows:
        video_id = field.text("video_id")
        field.check_new("video_id", video_id, videos)
        resolution = field.text("resolution")
        match = re.fullmatch(r"(\d+)x(\d+)", resolution)
        if match is None:
            raise field.error("resolution", f"expected WIDTHxHEIGHT, got {resolution!r}")
        videos[video_id] = VideoInfo(
            video_id=video_id,
            duration=field.number("duration", positive=True),
            fps=field.number("fps", positive=True),
            width=int(match.group(1)),
            height=int(match.group(2)),
        )
    return videos
