"""Dataset statistics of an EK100 annotation file, as the paper reports them.

The paper ("EfficientViT for Video Action Recognition", section IV-A) describes EK100 train
by its segment count, shortest / longest / mean segment length in frames (length counted as
`stop_frame - start_frame`: 10, 14,857 and 172.4 frames on train) and its classes.
`dataset_stats` computes those numbers (plus lengths in seconds, from the timestamps) for
any segment file; `python -m evitvid stats FILE` prints them as a table or JSON, and the
book's data notebook calls the same function.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from evitvid.data.annotations import ClassList, Segment, segment_list

__all__ = ["DatasetStats", "dataset_stats", "format_stats"]


@dataclass(frozen=True)
class DatasetStats:
    """Counts and segment lengths; class counts are None for unlabelled files."""

    segments: int
    videos: int
    participants: int
    min_frames: int
    max_frames: int
    mean_frames: float
    min_seconds: float
    max_seconds: float
    mean_seconds: float
    total_seconds: float
    verb_classes: int | None
    noun_classes: int | None
    action_classes: int | None
    verb_classes_defined: int | None = None
    noun_classes_defined: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def dataset_stats(
    segments: Mapping[str, Segment] | Iterable[Segment],
    *,
    verb_classes: ClassList | None = None,
    noun_classes: ClassList | None = None,
) -> DatasetStats:
    """Statistics of a set of segments. Class lists, when given, add the defined class counts."""
    items = segment_list(segments)
    if not items:
        raise ValueError("no segments")
    frames = [s.num_frames for s in items]
    seconds = [s.duration for s in items]
    labelled = all(s.has_labels for s in items)
    return DatasetStats(
        segments=len(items),
        videos=len({s.video_id for s in items}),
        participants=len({s.participant_id for s in items}),
        min_frames=min(frames),
        max_frames=max(frames),
        mean_frames=sum(frames) / len(frames),
        min_seconds=min(seconds),
        max_seconds=max(seconds),
        mean_seconds=sum(seconds) / len(seconds),
        total_seconds=sum(seconds),
        verb_classes=len({s.verb_class for s in items}) if labelled else None,
        noun_classes=len({s.noun_class for s in items}) if labelled else None,
        action_classes=len({s.action for s in items}) if labelled else None,
        verb_classes_defined=len(verb_classes) if verb_classes is not None else None,
        noun_classes_defined=len(noun_classes) if noun_classes is not None else None,
    )


def format_stats(stats: DatasetStats, title: str = "") -> str:
    """A two-column plain-text table."""
    def present(count: int | None, defined: int | None) -> str:
        if count is None:
            return "-"
        return f"{count:,}" + (f" of {defined:,}" if defined is not None else "")

    rows = [
        ("segments", f"{stats.segments:,}"),
        ("videos", f"{stats.videos:,}"),
        ("participants", f"{stats.participants:,}"),
        ("shortest segment (frames)", f"{stats.min_frames:,}"),
        ("longest segment (frames)", f"{stats.max_frames:,}"),
        ("mean segment (frames)", f"{stats.mean_frames:,.1f}"),
        ("shortest segment (s)", f"{stats.min_seconds:,.2f}"),
        ("longest segment (s)", f"{stats.max_seconds:,.2f}"),
        ("mean segment (s)", f"{stats.mean_seconds:,.2f}"),
        ("total annotated (h)", f"{stats.total_seconds / 3600:,.1f}"),
        ("verb classes present", present(stats.verb_classes, stats.verb_classes_defined)),
        ("noun classes present", present(stats.noun_classes, stats.noun_classes_defined)),
        ("action classes present", present(stats.action_classes, None)),
    ]
    width = max(len(name) for name, _ in rows)
    value_width = max(len(value) for _, value in rows)
    lines = [title] if title else []
    lines.append(f"{'statistic':<{width}}  {'value':>{value_width}}")
    lines.append(f"{'-' * width}  {'-' * value_width}")
    lines += [f"{name:<{width}}  {value:>{value_width}}" for name, value in rows]
    return "\n".join(lines)
