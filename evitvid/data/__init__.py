"""EPIC-KITCHENS-100 data pipeline: annotation files -> sampled frame indices -> decoded clips -> batches.

`annotations` (typed EK100 rows), `sampling` (pure samplers), `video` (decoding in AVION's
chunked layout, whole videos or extracted frames), `transforms` (clip augmentation),
`datasets` (the torch Dataset), `stats`, `extract` and `bench` (the CLI commands `stats`,
`extract`, `bench-data`). The synthetic dataset lives in `evitvid.data.synth`.

The names below are imported on first use (PEP 562), so importing a light submodule such as
`evitvid.data.fashion_mnist` does not pull in decord and the video stack.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "evitvid.data.annotations": (
        "ActionSpace", "AnnotationError", "ClassEntry", "ClassList", "Segment", "VideoInfo", "avion_action_pairs",
        "frame_number_rate", "parse_timestamp", "read_classes", "read_segments", "read_video_info",
        "to_file_frames",
    ),
    "evitvid.data.batches": ("SkippedSegment", "collate"),
    "evitvid.data.datasets": ("EK100Dataset", "sample_rng"),
    "evitvid.data.hooks": ("EpochDataset", "EpochHooks"),
    "evitvid.data.sampling": ("dense_indices", "get_sampler", "tsn_indices"),
    "evitvid.data.stats": ("DatasetStats", "dataset_stats", "format_stats"),
    "evitvid.data.transforms": (
        "IMAGENET_MEAN", "IMAGENET_STD", "EvalTransform", "TrainTransform", "build_transform",
        "random_resized_crop_box",
    ),
    "evitvid.data.video": (
        "ChunkedVideos", "FrameFolders", "VideoError", "VideoNotFoundError", "VideoSource", "WholeVideos",
        "make_source", "read_frames",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
