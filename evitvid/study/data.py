"""The study's data: where it is, its splits read once, their statistics, and clip datasets.

- `resolve_data`: the embedded synthetic dataset (`"synth:default"`, generated once into
  the caller's data root), a folder holding `annotations/` and `videos/`, or the real EK100 (annotation
  folder + AVION's chunked videos). `DataPaths.spec` is what a run records: the dataset as
  it was named, so that a moved repository still finds it.
- `read_splits`: both splits and both class files, read once (notebook 00 asks several
  questions of them; on EK100 a read takes seconds).
- `Splits.tuning`: the tuning split, whole training videos held out, on which a study chooses
  its learning rates and the like (the validation split the verdicts read never chooses).
- `clip_dataset`: an `EK100Dataset` on one split, in the study's transform.
- `missing_videos`: every video a split needs, checked before training starts.
- `action_pairs`, `action_record`: the action classes of an action-head model, and what a
  run records of them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from .. import models as _models
from ..data import EK100Dataset, avion_action_pairs, dataset_stats, read_classes, read_segments, synth
from ..data.decoders import check_backend
from ..data.frame_cache import FrameCache
from ..data.video import make_source

__all__ = ["DataPaths", "Splits", "resolve_data", "read_splits", "read_planned_splits", "class_names",
           "frame_cache_size", "build_frame_caches", "clip_dataset", "missing_videos", "action_pairs", "action_record",
           "dataset_summary", "class_counts", "segment_lengths"]


@dataclass(frozen=True)
class DataPaths:
    train_csv: Path
    val_csv: Path
    verb_classes: Path
    noun_classes: Path
    videos: Path
    layout: str = "chunked"
    decoder: str = "auto"  # evitvid.data.decoders: "auto" (decord, PyAV where decord fails), "decord", "pyav"
    spec: tuple[tuple[str, Any], ...] = ()  # how the dataset was named: (dataset, annotations_dir, videos_dir, ...)

    def check(self) -> "DataPaths":
        for name in ("train_csv", "val_csv", "verb_classes", "noun_classes", "videos"):
            path = getattr(self, name)
            if not Path(path).exists():
                raise FileNotFoundError(f"{name}: {path} does not exist")
        return self

    def source(self):
        """The `VideoSource` that reads these videos (layout and decoder as recorded)."""
        options = {} if self.layout == "frames" else {"backend": self.decoder}
        return make_source(self.videos, self.layout, **options)

    @property
    def record(self) -> dict[str, Any]:
        """What a run records about its data, and its name hashes: the spec that finds it again
        (`from_record`). Not the resolved files: their absolute paths would rename, and so
        retrain, every run of a checkout that moved or was cloned elsewhere."""
        return dict(self.spec)

    @classmethod
    def from_record(cls, record: dict, data_root: Optional[Path | str] = None) -> "DataPaths":
        """The data of a run's record: resolved again from its spec, the embedded dataset under
        `data_root` (a moved repository still works)."""
        spec = {k: v for k, v in record.items() if k != "files"}
        if "dataset" in spec:
            return resolve_data(spec["dataset"], data_root=data_root, annotations_dir=spec.get("annotations_dir"),
                                videos_dir=spec.get("videos_dir"), layout=spec.get("layout", "chunked"),
                                decoder=spec.get("decoder", "auto"), seed=spec.get("seed", 0))
        if "files" not in record:
            raise ValueError(f"a run's data record names no dataset (found {sorted(record)})")
        files = record["files"]  # the oldest records: the files themselves
        return cls(**{k: v if k in ("layout", "decoder") else Path(v) for k, v in files.items()})


def resolve_data(dataset: str = "synth:default", *, data_root: Optional[Path | str] = None,
                 annotations_dir: Optional[str] = None,
                 videos_dir: Optional[str] = None, layout: str = "chunked", decoder: str = "auto",
                 seed: int = 0, generate: bool = True, workers: Optional[int] = None) -> DataPaths:
    """Where the annotation CSVs and videos are.

    `dataset` is `"synth:PRESET"` (generated into `data_root/synth-PRESET` on first use, by
    `workers` processes, default one per core), or a folder holding `annotations/` and
    `videos/` as the synthetic set does. For the real EK100, pass `annotations_dir` (the
    epic-kitchens-100-annotations checkout) and `videos_dir` (AVION's resized chunks)
    instead. `decoder` reads the videos (`evitvid.data.decoders`: "auto", "decord" or
    "pyav"); it is part of the record, so runs that decode differently are different runs.

    `generate=False` names where a synthetic set goes without generating it (nor checking
    its files): enough for a run's record and so its name (`evitvid.study.jobs` generates it
    beside the image pretraining, which reads no video).
    """
    try:
        check_backend(decoder)
    except ValueError as exc:
        raise ValueError(f"decoder: {exc}") from None
    spec: dict[str, Any] = {"dataset": dataset, "annotations_dir": annotations_dir, "videos_dir": videos_dir,
                            "layout": layout, "decoder": decoder}
    if annotations_dir or videos_dir:
        if not (annotations_dir and videos_dir):
            raise ValueError("annotations_dir and videos_dir go together (got only one of them)")
        ann, videos = Path(annotations_dir), Path(videos_dir)
    elif dataset.startswith("synth:"):
        preset = dataset.split(":", 1)[1]
        if data_root is None:
            raise ValueError(f"dataset {dataset!r}: give data_root, the folder the embedded dataset is generated in")
        root = synth.generate(preset=preset, seed=seed, data_root=data_root, workers=workers) if generate else \
            synth.default_out_dir(preset, seed, data_root=data_root)
        ann, videos = root / "annotations", root / "videos"
        spec.update(generator_version=synth.GENERATOR_VERSION, seed=seed)
    else:
        root = Path(dataset)
        if not root.is_dir():
            raise FileNotFoundError(f"dataset: {root} is not a folder (nor 'synth:PRESET')")
        ann, videos = root / "annotations", root / "videos"
    paths = DataPaths(ann / "EPIC_100_train.csv", ann / "EPIC_100_validation.csv", ann / "EPIC_100_verb_classes.csv",
                      ann / "EPIC_100_noun_classes.csv", videos, layout, decoder, tuple(spec.items()))
    return paths if not generate and dataset.startswith("synth:") else paths.check()


@dataclass(frozen=True)
class Splits:
    """Both splits (lists of `Segment`, file order) and the class keys, read once."""
    train: list
    validation: list
    verbs: list[str]
    nouns: list[str]

    def split(self, name: str) -> list:
        return self.train if name == "train" else self.validation

    def tuning(self, fraction: float) -> "Splits":
        """The tuning split: `Splits` whose `validation` is a `fraction` of the training videos,
        whole, and whose `train` is the other training videos (the validation split is left out).

        The held-out videos are round(fraction x videos) of the training video ids sorted, at
        evenly spaced places (the middle of each 1/fraction stride: every fifth for 0.2, starting
        at the third): a function of the ids alone, the same on every machine and for every seed.
        EK100's ids (and the embedded set's) are `Pxx_yy`, sorted by participant, so the tuning
        videos span the participants rather than a few of them."""
        videos = sorted({s.video_id for s in self.train})
        n = round(fraction * len(videos)) if isinstance(fraction, (int, float)) and 0 < fraction < 1 else 0
        if not 0 < n < len(videos):
            raise ValueError(f"tune_fraction={fraction!r}: must be in (0, 1) and hold out at least one of the "
                             f"{len(videos)} training videos and keep another")
        held = {videos[int((i + 0.5) * len(videos) / n)] for i in range(n)}
        return Splits([s for s in self.train if s.video_id not in held], [s for s in self.train if s.video_id in held],
                      self.verbs, self.nouns)


def action_pairs(splits: Splits) -> list[tuple[int, int]]:
    """The action classes of a model with an action head: every (verb, noun) pair of both splits,
    in the order of the paper's code (`evitvid.data.avion_action_pairs`), whatever part of the
    splits a run trains on."""
    return avion_action_pairs(splits.train + splits.validation)


def action_record(pairs: list[tuple[int, int]]) -> dict[str, Any]:
    """What a run records of its action classes: how many, and a digest of the pairs in order
    (`load_trained` rebuilds them from the run's data and checks the digest)."""
    return {"classes": len(pairs), "sha1": hashlib.sha1(json.dumps([list(p) for p in pairs]).encode()).hexdigest()}


def class_names(path: Path) -> list[str]:
    return [c.key for c in read_classes(path)]


def read_splits(data: DataPaths) -> Splits:
    verbs, nouns = read_classes(data.verb_classes), read_classes(data.noun_classes)
    train, val = (list(read_segments(p, verb_classes=verbs, noun_classes=nouns).values())
                  for p in (data.train_csv, data.val_csv))
    return Splits(train, val, [c.key for c in verbs], [c.key for c in nouns])


def read_planned_splits(dataset: str, seed: int = 0) -> Splits:
    """The splits of the embedded dataset `"synth:PRESET"` from its plan alone (its annotation
    files written to a temporary folder, no video rendered): what `read_splits` reads from the
    generated set, in a second rather than minutes (a recorded study's chapter)."""
    if not dataset.startswith("synth:"):
        raise ValueError(f"dataset {dataset!r}: only the embedded dataset ('synth:PRESET') has a plan")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        synth.write_annotations(synth.plan_dataset(dataset.split(":", 1)[1], seed), tmp)
        (Path(tmp) / "videos").mkdir()  # a dataset folder's layout, its videos aside
        return read_splits(resolve_data(tmp))


def frame_cache_size(crop_size: int, train: bool) -> int:
    """The shorter side a frame cache keeps: the crop itself for evaluation (which resizes the
    whole frame to it, so cached and decoded clips are equal), a quarter more for training (whose
    random crops cover half the frame or more, so they are mostly shrunk to the crop)."""
    return crop_size if not train else int(round(crop_size * 1.25))


def _frame_cache(data: DataPaths, splits: Splits, split: str, crop_size: int, *, tune_fraction: Optional[float] = None,
                 workers: Optional[int] = None):
    """The `FrameCache` of every segment of `split` ("train" or "val") at the size the clips of
    `crop_size` read (`frame_cache_size`), under the dataset's `cache/` folder; built first (by
    `workers` processes, default one per core) when it is not there.

    With `tune_fraction` (`Splits.tuning`), "val" is the tuning videos' segments: a cache of its
    own (a cache is keyed by its segments), never the validation split's. "train" stays the
    whole training split's cache, which holds every frame of the tuning split's training videos
    too: a tuning run reads a part of it and builds no second copy."""
    train = split == "train"
    segments = (splits.train if train else splits.tuning(tune_fraction).validation if tune_fraction else
                splits.validation)
    return FrameCache.open_or_build(data.source(), segments, data.videos.parent / "cache",
                                    frame_cache_size(crop_size, train), identity=dict(data.spec), workers=workers,
                                    log=print)


def build_frame_caches(data: DataPaths, crop_size: int, *, tune_fraction: Optional[float] = None,
                       workers: Optional[int] = None) -> None:
    """The frame caches `clip_dataset(..., frame_cache=True)` reads, built now by `workers`
    processes (default one per core) rather than on first use: the training split's and the
    validation split's, or with `tune_fraction` the tuning split's instead of the validation one's."""
    splits = read_splits(data)
    for split in ("train", "val"):
        _frame_cache(data, splits, split, crop_size, tune_fraction=tune_fraction, workers=workers)


def clip_dataset(data: DataPaths, split: str, *, num_frames: int, crop_size: int, train: bool, seed: int = 0,
                 limit: Optional[int] = None, segments: Optional[list] = None, model_cfg: Optional[dict] = None,
                 sampling: str = "tsn", clip_stride: int = 2, sampling_offset: Optional[float] = None,
                 frame_cache: bool = False, tune_fraction: Optional[float] = None):
    """An `EK100Dataset` on one split ("train" or "val"); `limit` keeps the first segments (a
    smoke run); `sampling` is "tsn" (one frame in each of `num_frames` parts of the segment) or
    "dense" (consecutive frames `clip_stride` apart; `evitvid.data.sampling`); `sampling_offset`
    places the evaluation frames: TSN's within their parts, the dense clip within the segment
    (0.5: midpoints, the centred clip).
    No flip: it would turn move-left into move-right and clockwise into anticlockwise.

    `tune_fraction` carves the tuning split from the training videos (`Splits.tuning`): "train"
    is then the training videos but the tuning ones, "val" the tuning videos.

    `frame_cache=True` reads the split's frames from a `FrameCache` (decoded once, built on
    first use under the dataset's `cache/` folder, `frame_cache_size` for its resolution)."""
    splits = read_splits(data)
    carved = splits.tuning(tune_fraction) if tune_fraction else splits
    everything = carved.split("train" if split == "train" else "validation")
    segments = everything if segments is None else segments
    if limit:
        segments = segments[:limit]
    videos: Any = (_frame_cache(data, splits, split, crop_size, tune_fraction=tune_fraction) if frame_cache else
                   data.source())
    cfg = model_cfg or _models.EfficientVit.default_cfg
    return EK100Dataset(segments, videos, num_frames=num_frames, sampling=sampling, stride=clip_stride, train=train,
                        crop_size=crop_size, flip=False, mean=cfg["mean"], std=cfg["std"], seed=seed,
                        eval_offset=sampling_offset)


def missing_videos(data: DataPaths, segments: list) -> list[str]:
    """The files that `segments` need and that do not exist (`VideoSource.needed_paths`: a
    video, the chunks a segment lies in, an extracted segment's manifest), one stat each."""
    source = data.source()
    seen, missing = set(), []
    for seg in segments:
        for path in source.needed_paths(seg):
            if path in seen:
                continue
            seen.add(path)
            if not path.exists():
                missing.append(str(path))
    return missing


def dataset_summary(splits: Splits, frames_per_segment: int = 16) -> pd.DataFrame:
    """The paper's dataset statistics per split (segments, videos, shortest/longest/mean length
    in frames and seconds, classes present, images a fixed-frames extraction would write)."""
    rows = {}
    for split in ("train", "validation"):
        row = asdict(dataset_stats(splits.split(split)))
        row["images_extracted"] = frames_per_segment * row["segments"]
        rows[split] = row
    return pd.DataFrame(rows).dropna(how="all")


def class_counts(splits: Splits) -> pd.DataFrame:
    """Segments per verb and noun class and split (columns: kind, class, split, segments)."""
    rows = []
    for split in ("train", "validation"):
        segments = splits.split(split)
        for kind, names, attr in (("verb", splits.verbs, "verb_class"), ("noun", splits.nouns, "noun_class")):
            counts = pd.Series([getattr(s, attr) for s in segments]).value_counts()
            rows += [{"kind": kind, "class": names[i], "split": split, "segments": int(n)} for i, n in counts.items()]
    return pd.DataFrame(rows)


def segment_lengths(splits: Splits) -> pd.DataFrame:
    return pd.DataFrame([{"split": split, "seconds": s.duration, "frames": s.num_frames}
                         for split in ("train", "validation") for s in splits.split(split)])
