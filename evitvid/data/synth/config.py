"""Every generation parameter: `SynthConfig`, its `PRESETS`, and `GENERATOR_VERSION`.

The data set is a function of (`GENERATOR_VERSION`, seed, `SynthConfig`) alone: the three
are the key under which a generated folder is reused (`build.is_complete`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["GENERATOR_VERSION", "SynthConfig", "PRESETS", "resolve_config"]

# Bump when a change to planning, rendering or encoding changes the output: cached folders regenerate.
# 2: YUV by rgb_to_yuv420p, libx264 without mbtree (deterministic bytes)
# 3: five nouns (the other five Fashion-MNIST classes are the image pretraining's); the motion pairs
#    turn 135-170 degrees or slide 45-60 % of the frame with the camera following, their first and
#    last frames alike; a static distractor in every scene, the others moving and turning over the
#    segment; the default preset has 200 shorter videos of 20 participants (50 validation videos,
#    one participant unseen)
GENERATOR_VERSION = 3


@dataclass(frozen=True)
class SynthConfig:
    """Every generation parameter (the seed aside). Times in seconds; lengths relative to `size`."""

    num_participants: int = 20
    num_videos: int = 200            # round-robin over the participants
    segments_per_video: int = 10     # mean; each video draws 0.6x to 1.4x this
    val_fraction: float = 0.25       # of the videos
    val_unseen_participants: int = 1  # participants whose videos are all validation (EK100's unseen ones)
    size: int = 112                  # frame height and width (pixels, even)
    segment_median: float = 1.8      # segment length: log-normal median (s) ...
    segment_sigma: float = 0.6       # ... and log-sd, clipped to [min_segment_frames, segment_max]
    segment_max: float = 8.0
    min_segment_frames: int = 10     # annotation frames (at 60 or 50 per second)
    gap_min: float = 0.2             # pause before each segment and after the last (s)
    gap_max: float = 1.2
    verb_zipf: float = 1.0           # Zipf exponents of the class frequencies
    noun_zipf: float = 1.0
    motion_first: bool = False       # the motion pairs' verbs take the most frequent ranks (else table order)
    fps_50_fraction: float = 0.25    # videos "recorded" at 50 fps, the rest at 59.94
    max_distractors: int = 4          # other items in the scene: one static, the rest moving or static
    jitter: float = 0.03             # camera shake amplitude (fraction of size)
    fps: int = 30                    # of the written files (AVION's resized videos)
    chunk_seconds: int = 15          # AVION's chunk length
    crf: int = 20                    # libx264 quality

    def __post_init__(self) -> None:
        checks = [
            (self.num_videos >= 1, "num_videos must be >= 1"),
            (self.num_participants >= 1, "num_participants must be >= 1"),
            (self.segments_per_video >= 1, "segments_per_video must be >= 1"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.val_unseen_participants >= 0, "val_unseen_participants must be >= 0"),
            (self.val_unseen_participants == 0 or (self.num_videos >= 2 and self.val_fraction > 0
                                                   and self.val_unseen_participants
                                                   < min(self.num_participants, self.num_videos)),
             "val_unseen_participants needs a validation split and fewer than the participants (some must "
             "train): lower it or set it to 0"),
            (self.size >= 32 and self.size % 2 == 0, "size must be even and >= 32 (H.264 4:2:0)"),
            (self.segment_median > 0 and self.segment_sigma >= 0, "segment_median > 0, segment_sigma >= 0"),
            (self.segment_max * 50 >= self.min_segment_frames + 1, "segment_max too short for min_segment_frames"),
            (self.min_segment_frames >= 1, "min_segment_frames must be >= 1"),
            (0 < self.gap_min <= self.gap_max, "need 0 < gap_min <= gap_max"),
            (0 <= self.fps_50_fraction <= 1, "fps_50_fraction must be in [0, 1]"),
            (self.max_distractors >= 0, "max_distractors must be >= 0"),
            (0 <= self.jitter <= 0.1, "jitter must be in [0, 0.1]"),
            (self.fps >= 1 and self.chunk_seconds >= 1, "fps and chunk_seconds must be >= 1"),
            (0 <= self.crf <= 51, "crf must be in [0, 51]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SynthConfig: {message} ({self})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, SynthConfig] = {
    # For tests: ~40 segments, 4 videos of 2-3 chunks, 64x64; writes in a few seconds.
    "tiny": SynthConfig(num_participants=2, num_videos=4, segments_per_video=10, val_unseen_participants=0, size=64),
    # For the book: ~1,500 train / ~500 validation segments, 112x112, in 200 videos of about 30 s
    # (10 per participant): 50 validation videos, the 10 of one unseen participant and 40 drawn at
    # random from the other 19, so that an interval can resample videos as well as segments.
    "default": SynthConfig(),
    # The default set with the motion pairs the most frequent verbs (about 60 % of the segments
    # rather than 20 %): the study of the pairs that need a direction of motion (make study-motion).
    "motion": SynthConfig(motion_first=True),
}


def resolve_config(preset: str = "tiny", **overrides: Any) -> SynthConfig:
    """The preset's `SynthConfig` with `overrides` applied; unknown names raise `TypeError`."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    names = {f.name for f in dataclasses.fields(SynthConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown synth parameter(s) {unknown}; valid: {sorted(names)}")
    return dataclasses.replace(PRESETS[preset], **overrides)
