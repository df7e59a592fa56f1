"""A synthetic EPIC-KITCHENS-100 stand-in, embedded: `python -m evitvid synth --preset NAME --out DIR`.

The study asks whether a model that sees frame order (the I3D-inflated 3D EfficientViT)
beats one that averages per-frame features, and whether image pretraining helps. EK100
itself (700 hours of video) cannot be trained on a 2-core CPU, so this package writes a small
data set with the *same files* EK100 has, so that the same loaders read both:

* the annotation CSVs with EK100's 15 columns, formats and row order
  (`EPIC_100_{train,validation}.csv`, the class files, `EPIC_100_video_info.csv`; `tables`);
* AVION's chunked video layout: `videos/P01/P01_01.MP4/0.MP4, 15.MP4, ...`, H.264 at 30 fps
  in 15-second chunks named by their start second (`encode`);
* `manifest.json`, written last and atomically: its presence with matching parameters means
  the folder is complete, and a rerun skips generation (`build`).

Content, built so that the study's questions have answers (`vocabulary`, `plan`):

* **Nouns** are real images: Fashion-MNIST items of five classes, from the t10k split only,
  tinted, on textured backgrounds that vary per video, with static and moving distractor items
  and camera jitter; the other five classes are the image pretraining's (`PRETRAINING_LABELS`).
* **Verbs** are motions of the item over the segment, most in pairs that are exact
  time-reversals of one motion (`REVERSE_PAIRS`), so that a model blind to frame order
  cannot beat chance within a pair. Four pairs differ by the clip's end states, two only by
  the direction of motion (`PAIR_KINDS`, `verb_kind`); `HFLIP_SWAP` lists the verbs a
  horizontal flip swaps.
* **Shape**: long-tailed class frequencies, segments of 10 annotation frames to several
  hundred, some crossing a chunk boundary, train/validation split by video, validation
  spanning the participants, some of them unseen in training.

Everything is a function of the seed and the `SynthConfig`, and the files are byte-identical
across runs, worker counts and processes. The modules, in pipeline order:

    vocabulary  the verb and noun classes, REVERSE_PAIRS, PAIR_KINDS, HFLIP_SWAP, PRETRAINING_LABELS
    config      SynthConfig, PRESETS, GENERATOR_VERSION
    timecode    EK100's timestamps and frame numbers (annotation_rate, seconds_to_frame)
    plan        plan_dataset: every random choice, drawn up front
    render      frames and ground-truth masks from a plan (render_video); render_still
    encode      integer RGB -> YUV 4:2:0, deterministic libx264, the chunk files
    tables      the five annotation CSVs
    build       generate: the cached folder, its manifest, the worker pool
"""
from __future__ import annotations

from .build import default_out_dir, generate, is_complete, read_manifest
from .config import GENERATOR_VERSION, PRESETS, SynthConfig, resolve_config
from .encode import chunk_paths, rgb_to_yuv420p, write_video
from .plan import DatasetPlan, Distractor, SegmentPlan, VideoPlan, plan_dataset
from .render import pose, render_still, render_video
from .tables import ANNOTATION_COLUMNS, annotation_tables, write_annotations
from .timecode import annotation_rate, format_timestamp, seconds_to_frame
from .vocabulary import (
    HFLIP_SWAP,
    NOUNS,
    PAIR_KINDS,
    PRETRAINING_LABELS,
    REVERSE_PAIRS,
    VERBS,
    NounSpec,
    VerbSpec,
    verb_kind,
)

__all__ = [
    "GENERATOR_VERSION",
    "ANNOTATION_COLUMNS",
    "VerbSpec",
    "NounSpec",
    "VERBS",
    "NOUNS",
    "REVERSE_PAIRS",
    "PAIR_KINDS",
    "verb_kind",
    "PRETRAINING_LABELS",
    "render_still",
    "rgb_to_yuv420p",
    "HFLIP_SWAP",
    "SynthConfig",
    "PRESETS",
    "Distractor",
    "SegmentPlan",
    "VideoPlan",
    "DatasetPlan",
    "resolve_config",
    "plan_dataset",
    "pose",
    "render_video",
    "chunk_paths",
    "annotation_tables",
    "write_annotations",
    "write_video",
    "generate",
    "read_manifest",
    "is_complete",
    "default_out_dir",
    "annotation_rate",
    "seconds_to_frame",
    "format_timestamp",
]
