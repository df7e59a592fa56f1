"""`EK100Dataset`: EK100 segments -> {"video": float (C, T, H, W), "verb", "noun", ...} samples.

One sample per segment (`narration_id` kept in every sample): sample frame indices with a
pure sampler (`sampling.py`), decode them from a `VideoSource` (`video.py`), transform them
(`transforms.py`). Follows AVION's `VideoClassyDataset` for EK100 classification (TSN
sampling over the segment, chunked 30 fps videos, labels from `verb_class`/`noun_class`),
with three differences on purpose:

* Sampling happens per `__getitem__`, seeded from (seed, epoch, index): training clips are
  reproducible whatever the number of DataLoader workers and differ across epochs
  (`set_epoch`). pytorchvideo's EPIC dataset samples once at construction instead.
* decord readers are created lazily inside the process that reads (the sources are
  pickled without them), so DataLoader workers never share a decoder.
* A missing or corrupt video raises, naming the file and the segment. AVION substitutes frame
  0 silently; here the opt-in `on_error="skip"` returns a `SkippedSegment` record instead,
  which `collate` moves into the batch under "skipped" (so it reaches the main process from
  workers), `collect_skipped` records, and `end_epoch` reports. No frame is ever substituted.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evitvid.data.annotations import ActionSpace, ClassList, Segment, read_segments, segment_list
from evitvid.data.batches import SkippedSegment, collate
from evitvid.data.hooks import EpochDataset
from evitvid.data.sampling import get_sampler
from evitvid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transform
from evitvid.data.video import VideoError, VideoSource, make_source

__all__ = ["EK100Dataset", "sample_rng", "SkippedSegment", "collate"]

log = logging.getLogger(__name__)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for sample `index` in `epoch`: a pure function of the three numbers."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


class EK100Dataset(EpochDataset):
    """EK100 action segments as clips.

    Args:
        segments: a segment CSV path, {narration_id: Segment} (as `read_segments` returns)
            or a sequence of segments. Order is kept.
        videos: the video root, or a ready `VideoSource`.
        layout: "chunked" (AVION), "whole" (official videos) or "frames" (`extract` output);
            used only when `videos` is a path. `source_options` go to the source constructor
            (e.g. chunk_seconds, fps, ext).
        num_frames: frames per clip (T).
        sampling: "tsn" or "dense"; `stride` applies to dense.
        train: random sampling and augmentation (seeded) when True, deterministic when False.
        crop_size, flip, scale, resize_size, mean, std: see `transforms.build_transform`.
        seed: base seed of the training randomness.
        eval_offset: evaluation only: where the frames are taken, TSN's within each part, dense
            sampling's clip within the room the segment leaves it (default 0.5: midpoints, the
            centred clip); other values evaluate other temporal positions.
        on_error: "raise" (default) or "skip"; see the module docstring.
        action_space: maps (verb, noun) to an action id for the "action" key (-1 otherwise).
        verb_classes, noun_classes: checked against the file when `segments` is a path.
    """

    def __init__(
        self,
        segments: str | Path | Mapping[str, Segment] | Sequence[Segment],
        videos: str | Path | VideoSource,
        *,
        layout: str = "chunked",
        source_options: Mapping[str, Any] | None = None,
        num_frames: int = 16,
        sampling: str = "tsn",
        stride: int = 2,
        train: bool = False,
        crop_size: int = 224,
        flip: bool = True,
        scale: tuple[float, float] = (0.5, 1.0),
        resize_size: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        seed: int = 0,
        eval_offset: float | None = None,
        on_error: str = "raise",
        action_space: ActionSpace | None = None,
        verb_classes: ClassList | None = None,
        noun_classes: ClassList | None = None,
    ) -> None:
        if isinstance(segments, (str, Path)):
            segments = read_segments(segments, verb_classes=verb_classes, noun_classes=noun_classes)
        items = segment_list(segments)
        if not all(isinstance(s, Segment) for s in items):
            raise TypeError("segments must be Segment records (see evitvid.data.read_segments)")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        self.segments: list[Segment] = items
        if isinstance(videos, VideoSource):
            if source_options:
                raise TypeError("source_options apply only when videos is a path")
            self.source = videos
        else:
            self.source = make_source(videos, layout, **dict(source_options or {}))
        self.num_frames = int(num_frames)
        self.sampling = sampling
        if eval_offset is not None and train:
            raise ValueError("eval_offset applies to evaluation only (training samples at random)")
        self.sampler = get_sampler(sampling, **({"stride": stride} if sampling == "dense" else {}),
                                   **({} if eval_offset is None else {"offset": eval_offset}))
        self.train = bool(train)
        self.transform = build_transform(self.train, crop_size, flip=flip, scale=scale, resize_size=resize_size,
                                         mean=mean, std=std)
        self.seed = int(seed)
        self.epoch = 0
        self.on_error = on_error
        self.action_space = action_space
        self.skipped: list[SkippedSegment] = []

    def __len__(self) -> int:
        return len(self.segments)

    def __repr__(self) -> str:
        return (f"EK100Dataset({len(self)} segments, {self.source!r}, num_frames={self.num_frames}, "
                f"sampling={self.sampling!r}, train={self.train}, {self.transform!r}, on_error={self.on_error!r})")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's training randomness. Call before creating the epoch's iterator
        (workers copy the dataset when the iterator starts; with `persistent_workers=True`
        they keep the epoch they started with)."""
        self.epoch = int(epoch)

    def indices(self, index: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """The frame indices (in the source's numbering) that sample `index` reads."""
        start, stop = self.source.frame_range(self.segments[index])
        return self.sampler(start, stop, self.num_frames, rng)

    def frames(self, index: int, indices: Sequence[int], rng: np.random.Generator | None = None):
        """Frames `indices` of sample `index` (C x T x H x W), read and transformed as its clip is;
        in evaluation each frame alone, so any frames of a segment can be read together."""
        return self.transform(self.source.read(self.segments[index], indices), rng)

    def __getitem__(self, index: int) -> dict[str, Any] | SkippedSegment:
        segment = self.segments[index]
        rng = sample_rng(self.seed, self.epoch, index) if self.train else None
        try:
            video = self.frames(index, self.indices(index, rng), rng)
        except VideoError as exc:
            if self.on_error == "raise":
                raise
            return SkippedSegment(segment.narration_id, exc.path, exc.reason)
        action = -1
        if self.action_space is not None and segment.has_labels:
            action = self.action_space.get(segment.verb_class, segment.noun_class)
        return {
            "video": video,
            "verb": segment.verb_class,
            "noun": segment.noun_class,
            "action": action,
            "narration_id": segment.narration_id,
        }

    def collect_skipped(self, batch: Mapping[str, Any] | SkippedSegment | Iterable[SkippedSegment]) -> int:
        """Record the skipped segments of a batch (from `collate`) or item; returns how many."""
        if isinstance(batch, SkippedSegment):
            found = [batch]
        elif isinstance(batch, Mapping):
            found = list(batch.get("skipped", []))
        else:
            found = [s for s in batch if isinstance(s, SkippedSegment)]
        self.skipped.extend(found)
        return len(found)

    def end_epoch(self) -> list[SkippedSegment]:
        """Log and return the segments skipped since the last call, then forget them."""
        skipped, self.skipped = self.skipped, []
        if skipped:
            log.warning("epoch %d: skipped %d of %d segments:\n  %s", self.epoch, len(skipped), len(self),
                        "\n  ".join(map(str, skipped)))
        return skipped
