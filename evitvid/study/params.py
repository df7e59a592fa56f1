"""The study's parameters, written once: a profile per setting, read by notebooks and commands.

A profile is a YAML file (the book's are in `book/params/`: `cpu.yaml`, the embedded dataset
on a 2-core CPU, what `make study` runs; `ek100.yaml`, the paper's setting on a GPU with the
real EPIC-KITCHENS-100) holding values for the fields of `StudyParams`. `cpu.yaml` names every
field and is the one place a value is written; another profile names `base: cpu` (a profile
in the same folder) and the values it changes. The caller says where profiles are: a YAML
path, or a name looked up in the folders it passes (`profiles`); the library knows no
repository. Paths a profile gives (runs, data, a recorded study) are relative to the file
that gives them, so a profile finds its folders from wherever it is read. The library's
training functions (`train_video`, `pretrain_images`, `TrainConfig`) have no defaults for
what a profile sets. Everything else derives from the
profile: a notebook's `parameters` cell lists the names it uses with `None` ("the
profile's value") and passes them to `notebook_parameters`; `python -m evitvid train
--profile NAME` takes its defaults from it; a run records the values it was trained with.

Unknown names are refused, naming the valid ones: in a profile, on the command line, and
among a notebook's variables (papermill only warns about a misspelt `-p` name).
"""
from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union, get_type_hints

import yaml

from .. import models as _models
from ..allocator import tune_malloc
from ..data.decoders import BACKENDS as DECODERS
from ..data.sampling import SAMPLERS
from ..engine.config import OPTIMIZERS
from ..models.inflate import INFLATIONS
from ..runtime import MEMORY_FORMATS, PRECISIONS

__all__ = ["StudyParams", "METHOD_NAMES", "PROTOCOL", "HEADS", "SPLITS", "PATH_FIELDS", "find_profile", "load_profile",
           "profile_values", "notebook_parameters", "ParameterError"]

# what `methods` may name (`evitvid.study.methods.study_methods` makes the methods of each)
METHOD_NAMES = ("frame_averaging", "frame_averaging_random", "tsm", "3d_random", "3d_inflated", "3d_paper_random",
                "3d_paper_inflated")
# the parameters `train_video` takes as its protocol: every method of a comparison trains with
# these (`training.training_params`), and `python -m evitvid train` has a flag for each
PROTOCOL = ("inflation_noise", "num_frames", "crop_size", "epochs", "batch_size", "lr", "weight_decay",
            "warmup_epochs", "label_smoothing", "precision", "max_train", "max_val", "val_every", "reversal_clips",
            "frame_cache", "optimizer", "lr_scaling_batch", "min_lr", "mixup_alpha", "cutmix_alpha", "mixup_prob",
            "mixup_switch_prob", "sampling", "clip_stride", "accum_steps", "grad_checkpointing", "head",
            "clip_grad_norm", "split", "tune_fraction")
# what a run trains and evaluates on: the training split and the validation split the verdicts
# read, or the tuning split (`evitvid.study.data.Splits.tuning`), which they never read
SPLITS = ("validation", "tune")
# what a video model classifies: verbs and nouns (two classifiers), or AVION's action classes
HEADS = ("verb_noun", "action")


class ParameterError(ValueError):
    """A parameter (or a profile) is wrong; the message names it and says what is valid."""


def _doc(text: str) -> Any:
    return field(metadata={"doc": text})


@dataclass(frozen=True)
class StudyParams:
    """Every parameter of the study. None has a default here: its value is written once, in
    `book/params/cpu.yaml`, and other profiles change some of them (`load_profile`)."""

    # -- data ------------------------------------------------------------------------------
    dataset: str = _doc("'synth:PRESET' (the embedded dataset) or a folder with annotations/ and videos/")
    annotations_dir: Optional[str] = _doc("real EK100: the epic-kitchens-100-annotations folder")
    videos_dir: Optional[str] = _doc("real EK100: AVION's resized, chunked videos")
    decoder: str = _doc("what decodes the videos: auto (decord, PyAV for files decord cannot open), decord or pyav")
    runs_root: str = _doc("where run folders go")
    data_root: str = _doc("where the embedded dataset is generated (synth-PRESET) and its frame caches kept")
    frames_per_segment: int = _doc("frames a fixed-frames extraction takes per segment (the paper: 16)")
    # -- models and how they start -----------------------------------------------------------
    frame_averaging_models: tuple[str, ...] = _doc("the 2D-per-frame models")
    model_3d: str = _doc("the 3D model")
    model_3d_paper: str = _doc("the 3D model as the paper's code builds it (time strided, cubic kernels)")
    model_tsm: str = _doc("the frame model with the temporal shift module (TSM), the order-aware 2D baseline")
    pretrained: Union[str, dict, None] = _doc(
        "image weights: 'auto' (notebook 02's pretraining of each model's 2D backbone), a path or 'timm:NAME', "
        "or {model: checkpoint}")
    methods: tuple[str, ...] = _doc(
        "which methods to train: frame_averaging, frame_averaging_random, tsm (model_tsm, from image weights), "
        "3d_random, 3d_inflated (every inflation), 3d_paper_random, 3d_paper_inflated (model_3d_paper, I3D's mean "
        "inflation)")
    inflations: tuple[str, ...] = _doc(
        f"how 2D weights become 3D, the first one the main method ({', '.join(INFLATIONS)}; NAME_replicate: NAME "
        "with the end frames repeated as time padding)")
    inflation_noise: float = _doc("scale of the random taps of the asymmetric inflations")
    time_padding: str = _doc("the 3D model's time padding: zeros (I3D) or replicate")
    # -- one protocol for every method ---------------------------------------------------------
    split: str = _doc("what a run trains and evaluates on: validation (the training videos, then the validation "
                      "split the verdicts read) or tune (the training videos but the tuning ones, then the tuning "
                      "videos: what a tuning study chooses on)")
    tune_fraction: float = _doc("the tuning split: this share of the training videos, whole, evenly spaced in their "
                                "sorted ids (`Splits.tuning`); read with split: tune only")
    seeds: tuple[int, ...] = _doc("seeds: initialisation and data order")
    num_frames: int = _doc("frames per training clip")
    sampling: str = _doc("where a clip's frames come from: tsn (one in each of num_frames equal parts of the segment) "
                         "or dense (consecutive frames clip_stride apart, at a random place in training, centred in "
                         "evaluation)")
    clip_stride: int = _doc("dense sampling: frames between a clip's frames (shrunk to fit a short segment)")
    crop_size: int = _doc("training and evaluation crop (pixels)")
    epochs: int = _doc("epochs of every video model")
    batch_size: int = _doc("clips of one forward and backward pass, over every process")
    accum_steps: int = _doc("passes whose gradients one optimiser step sums: a step sees batch_size x accum_steps "
                            "clips (the global batch)")
    grad_checkpointing: bool = _doc("recompute each stage's activations in the backward pass (less memory, more "
                                    "time; batch norm updates its statistics in both passes)")
    optimizer: str = _doc(f"{' or '.join(OPTIMIZERS)} (momentum 0.9, AVION's); no weight decay on norms and biases")
    lr: Union[float, dict] = _doc("peak learning rate, after the warm-up (for a global batch of lr_scaling_batch "
                                  "when that is set): one for every method, or {method key: rate} naming each "
                                  "method of the profile (`methods.method_rates`)")
    lr_grid: tuple[float, ...] = _doc("a tuning study's learning rates (`split: tune`): every method trains at each "
                                      "of them and `lr` is not read; []: each method at its `lr`")
    lr_scaling_batch: Optional[int] = _doc("null: lr as given; N: lr and min_lr scaled by global batch / N "
                                           "(AVION: 128)")
    min_lr: float = _doc("learning rate at the end of the cosine decay")
    clip_grad_norm: Optional[float] = _doc("the gradients' global norm clipped to this before each step (null: "
                                           "never clipped, as AVION)")
    weight_decay: float = _doc("weight decay of the weights (not of norms and biases)")
    warmup_epochs: float = _doc("linear warm-up before the cosine decay")
    label_smoothing: float = _doc("label smoothing of every head (folded into the mixed targets with mixup)")
    mixup_alpha: float = _doc("mixup's Beta(alpha, alpha) (timm's Mixup); 0: no mixup")
    cutmix_alpha: float = _doc("CutMix's Beta(alpha, alpha), one H x W box in every frame of a clip; 0: no CutMix")
    mixup_prob: float = _doc("with mixup or CutMix on: the chance that a batch is mixed")
    mixup_switch_prob: float = _doc("with both on: the chance of CutMix rather than mixup for a batch")
    head: str = _doc("verb_noun (a verb and a noun classifier, their cross-entropies added) or action (AVION's: one "
                     "classifier over the (verb, noun) pairs of the train and validation files, verbs and nouns "
                     "scored by its marginals)")
    precision: str = _doc(f"{', '.join(PRECISIONS)}")
    memory_format: str = _doc(f"{', '.join(MEMORY_FORMATS)}")
    val_every: int = _doc("validate every N epochs and after the last (the learning curves show the validated "
                          "epochs)")
    reversal_clips: int = _doc("validation clips played backwards at every validation (0: none)")
    max_train: Optional[int] = _doc("first N training segments only (smoke runs)")
    max_val: Optional[int] = _doc("first N validation segments only (smoke runs)")
    num_workers: int = _doc("data-loader processes per run")
    frame_cache: bool = _doc("decode every segment frame once into a memory-mapped cache (the embedded set; not "
                             "for EK100's hundreds of GB)")
    parallel_runs: int = _doc("runs trained at once, each on its share of the cores (1: one at a time)")
    longer_budget: Optional[str] = _doc("a study of this profile's protocol at more epochs, recorded in the repository "
                                        "(`evitvid.study.recorded`), which the results chapter sets beside this one; "
                                        "null: none")
    tuning: Optional[str] = _doc("the tuning study `lr` was chosen from, recorded in the repository (`make "
                                 "study-tune`; `evitvid.study.recorded.tuned_rates`); null: none")
    motion_study: Optional[str] = _doc("the motion pairs studied where they can be learnt, recorded in the repository "
                                       "with its runs' logits (`make study-motion`), which the results chapter reads; "
                                       "null: none")
    controls_study: Optional[str] = _doc("notebook 03's inflation controls and the instruction-set check, recorded in "
                                         "the repository with their runs' logits (`make study-controls`), which "
                                         "notebooks 03 and 04 read; null: none")
    machine_check: bool = _doc("train the instruction-set check beside the methods (`plan.spread_run`: 3D random "
                               "init's seed 0 again, oneDNN one instruction set below this CPU's best); what the "
                               "controls study records")
    # -- image pretraining (the embedded study's stand-in for ImageNet) -------------------------
    pretrain_image_size: int = _doc("image size")
    pretrain_image_scale: Optional[int] = _doc("the video frame size whose item and texture sizes the images keep "
                                               "(null: the image size)")
    pretrain_epochs: int = _doc("epochs")
    pretrain_batch_size: int = _doc("batch")
    pretrain_lr: float = _doc("peak learning rate")
    pretrain_held_out: int = _doc("Fashion-MNIST train images held out for validation")
    pretrain_max_train: Optional[int] = _doc("first N training images only (smoke runs)")
    pretrain_views: Optional[int] = _doc("drawings of each image rendered once and shown in turn (null: a new "
                                         "one every epoch)")
    # -- evaluation -------------------------------------------------------------------------
    eval_frames: tuple[int, ...] = _doc("frames per segment for accuracy against frames (Fig. 2)")
    eval_positions: int = _doc("temporal positions averaged at each number of frames")
    confidence: float = _doc("confidence level of every interval")
    bootstrap_resamples: int = _doc("bootstrap resamples of each interval")
    # -- timing (Fig. 3) ---------------------------------------------------------------------
    time_models: tuple[str, ...] = _doc("models timed against frames")
    time_frames: tuple[int, ...] = _doc("frames per clip timed")
    time_crop_size: int = _doc("timing input size")
    # -- performance chapter -----------------------------------------------------------------
    bench_preset: str = _doc("smoke, light or full")
    bench_threads: int = _doc("threads (0: PyTorch's default)")
    bench_layout: str = _doc("channels_last or contiguous")
    bench_compile: bool = _doc("add the torch.compile section")
    bench_rerun: bool = _doc("measure again even when a finished run exists")
    # -- explorer ------------------------------------------------------------------------------
    gallery_size: int = _doc("segments in the book's static gallery")

    def __post_init__(self) -> None:
        for name in _LIST_FIELDS:  # lists from YAML or papermill become tuples
            object.__setattr__(self, name, _as_tuple(name, getattr(self, name)))
        for name, form in (("pretrained", "{model: checkpoint, ...}"), ("lr", "{method: rate, ...}")):
            value = getattr(self, name)
            if isinstance(value, str) and value.lstrip().startswith("{"):
                # papermill passes `-p pretrained '{"model": "path", ...}'` as text
                try:
                    object.__setattr__(self, name, yaml.safe_load(value))
                except yaml.YAMLError:
                    raise ParameterError(f"{name}={value!r}: not a mapping (write it as {form})") from None
        problems = self._problems()
        if problems:
            raise ParameterError("bad parameter(s): " + "; ".join(problems))

    def _problems(self) -> list[str]:
        out = []
        registered = set(_models.list_models())
        for name in ("frame_averaging_models", "time_models"):
            for m in getattr(self, name):
                if m not in registered:
                    out.append(f"{name}: unknown model {m!r} (see evitvid.list_models())")
        for name in ("model_3d", "model_3d_paper", "model_tsm"):
            if getattr(self, name) not in registered:
                out.append(f"{name}: unknown model {getattr(self, name)!r} (see evitvid.list_models())")
        for name in ("eval_frames", "time_frames", "seeds"):
            values = getattr(self, name)
            low = 0 if name == "seeds" else 1
            if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < low for v in values):
                out.append(f"{name}={list(values)!r}: must be a non-empty list of integers >= {low}")
        for name in ("num_frames", "crop_size", "epochs", "batch_size", "val_every", "parallel_runs",
                     "pretrain_image_size", "pretrain_epochs", "pretrain_batch_size", "pretrain_held_out",
                     "eval_positions", "bootstrap_resamples", "time_crop_size", "gallery_size", "frames_per_segment",
                     "clip_stride", "accum_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                out.append(f"{name}={value!r}: must be a positive integer")
        if isinstance(self.lr, Mapping):
            if not self.lr or not all(isinstance(k, str) and _number(v) and v > 0 for k, v in self.lr.items()):
                out.append(f"lr={dict(self.lr)!r}: every method's rate must be positive ({{method key: rate}}, "
                           "one for each method of the profile)")
        elif not _number(self.lr) or not self.lr > 0:
            out.append(f"lr={self.lr!r}: must be positive (or {{method key: rate}})")
        if not _number(self.pretrain_lr) or not self.pretrain_lr > 0:
            out.append(f"pretrain_lr={self.pretrain_lr!r}: must be positive")
        clip = self.clip_grad_norm
        if clip is not None and (not _number(clip) or clip <= 0):
            out.append(f"clip_grad_norm={clip!r}: must be positive or null")
        scaling = self.lr_scaling_batch
        if scaling is not None and (not isinstance(scaling, int) or isinstance(scaling, bool) or scaling <= 0):
            out.append(f"lr_scaling_batch={scaling!r}: must be a positive integer or null")
        grid = self.lr_grid
        if grid is None or not all(_number(r) and r > 0 for r in grid) or len(set(grid)) < len(grid):
            out.append(f"lr_grid={list(grid) if grid is not None else None!r}: must be a list of distinct positive "
                       "rates ([]: none, each method at its lr)")
        elif grid and self.split != "tune":
            out.append(f"lr_grid={list(grid)!r}: a grid of rates is chosen on the tuning split, never on validation "
                       "(set split: tune)")
        rates = [r for r in (self.lr.values() if isinstance(self.lr, Mapping) else [self.lr]) if _number(r)]
        rates += [r for r in grid or () if _number(r)]
        if not _number(self.min_lr) or not 0 <= self.min_lr <= min(rates, default=0):
            out.append(f"min_lr={self.min_lr!r}: must be a number from 0 to lr ({min(rates, default=self.lr)!r})")
        for name in ("mixup_alpha", "cutmix_alpha"):
            if not _number(getattr(self, name)) or getattr(self, name) < 0:
                out.append(f"{name}={getattr(self, name)!r}: must be a number >= 0 (0: off)")
        for name in ("mixup_prob", "mixup_switch_prob"):
            if not _number(getattr(self, name)) or not 0 <= getattr(self, name) <= 1:
                out.append(f"{name}={getattr(self, name)!r}: must be a probability (0 to 1)")
        if self.optimizer not in OPTIMIZERS:
            out.append(f"optimizer={self.optimizer!r}: one of {', '.join(OPTIMIZERS)}")
        if self.head not in HEADS:
            out.append(f"head={self.head!r}: one of {', '.join(HEADS)}")
        if self.sampling not in SAMPLERS:
            out.append(f"sampling={self.sampling!r}: one of {', '.join(SAMPLERS)}")
        for name in ("grad_checkpointing", "machine_check"):
            if not isinstance(getattr(self, name), bool):
                out.append(f"{name}={getattr(self, name)!r}: true or false")
        if self.machine_check is True and "3d_random" not in self.methods:
            out.append("machine_check: the instruction-set check trains 3d_random's seed 0 again; add 3d_random to "
                       "methods")
        for name in ("max_train", "max_val", "pretrain_max_train"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                out.append(f"{name}={value!r}: must be a positive integer or null")
        scale = self.pretrain_image_scale
        if scale is not None and (not isinstance(scale, int) or isinstance(scale, bool)
                                  or not isinstance(self.pretrain_image_size, int) or scale < self.pretrain_image_size):
            out.append(f"pretrain_image_scale={scale!r}: must be null or an integer >= pretrain_image_size "
                       f"({self.pretrain_image_size!r})")
        if not 0 < self.confidence < 1:
            out.append(f"confidence={self.confidence!r}: must be in (0, 1)")
        for m in self.methods:
            if m not in METHOD_NAMES:
                out.append(f"methods: unknown method {m!r}; valid: {', '.join(METHOD_NAMES)}")
        for i in self.inflations:
            if i.removesuffix("_replicate") not in INFLATIONS:
                out.append(f"inflations: unknown inflation {i!r}; valid: {', '.join(INFLATIONS)}, each also as "
                           "NAME_replicate")
        if not self.inflations:
            out.append("inflations: give at least one (the first is the main method)")
        if self.precision not in PRECISIONS:
            out.append(f"precision={self.precision!r}: one of {', '.join(PRECISIONS)}")
        if self.memory_format not in MEMORY_FORMATS:
            out.append(f"memory_format={self.memory_format!r}: one of {', '.join(MEMORY_FORMATS)}")
        if self.time_padding not in ("zeros", "replicate"):
            out.append(f"time_padding={self.time_padding!r}: zeros or replicate")
        if self.split not in SPLITS:
            out.append(f"split={self.split!r}: one of {', '.join(SPLITS)}")
        if not _number(self.tune_fraction) or not 0 < self.tune_fraction < 1:
            out.append(f"tune_fraction={self.tune_fraction!r}: must be a number between 0 and 1 (the share of the "
                       "training videos held out for tuning)")
        if self.decoder not in DECODERS:
            out.append(f"decoder={self.decoder!r}: one of {', '.join(DECODERS)}")
        if bool(self.annotations_dir) != bool(self.videos_dir):
            out.append("annotations_dir and videos_dir go together (got only one of them)")
        return out

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def replace(self, **changes: Any) -> "StudyParams":
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise ParameterError(_unknown_message(unknown, "parameter"))
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


def _number(value: Any) -> bool:
    """A real number (YAML reads `1e-6` as text: it wants `1.0e-6`)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _list_fields() -> tuple[str, ...]:
    hints = get_type_hints(StudyParams)
    return tuple(f.name for f in fields(StudyParams) if getattr(hints[f.name], "__origin__", None) is tuple)


def _as_tuple(name: str, value: Any) -> Any:
    """A list parameter as a tuple, from a list, a scalar (one item) or the text papermill passes
    for `-p seeds '[0, 1]'` (YAML: `[0, 1]`, or `0`)."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ParameterError(f"{name}={value!r}: not a list (write it as [a, b])") from None
    if value is None:
        return value
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _unknown_message(names: list[str], what: str) -> str:
    return (f"unknown {what}{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))}; valid: "
            f"{', '.join(StudyParams.names())}")


def find_profile(profile: Union[str, Path], profiles: Union[str, Path, Sequence[Union[str, Path]], None] = None
                 ) -> Path:
    """The file of `profile`: a YAML path as it is, or a name (`cpu`) looked up as NAME.yaml in
    the folders `profiles` (one or several, the first that has it); raises naming where it looked."""
    path = Path(profile)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ParameterError(f"profile {str(profile)!r}: {path} not found")
        return path
    folders = [] if profiles is None else [profiles] if isinstance(profiles, (str, Path)) else list(profiles)
    for folder in folders:
        if (Path(folder) / f"{profile}.yaml").is_file():
            return Path(folder) / f"{profile}.yaml"
    known = sorted({p.stem for folder in folders for p in Path(folder).glob("*.yaml")})
    looked = ", ".join(str(Path(f).resolve()) for f in folders) or "no profile folder was given"
    raise ParameterError(f"profile {str(profile)!r}: no {profile}.yaml in {looked} (profiles there: "
                         f"{', '.join(known) or 'none'}; or give a YAML path)")


# The parameters that are paths: a profile's own are relative to its file.
PATH_FIELDS = ("runs_root", "data_root", "annotations_dir", "videos_dir", "longer_budget", "tuning", "motion_study",
               "controls_study")


def _anchored(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`values` with every relative path resolved against `folder` (the dataset's too when it
    names a folder rather than `synth:PRESET`)."""
    out = dict(values)
    for key in PATH_FIELDS + ("dataset",):
        value = out.get(key)
        if isinstance(value, str) and value and not (key == "dataset" and value.startswith("synth:")):
            out[key] = str((folder / value).resolve()) if not Path(value).is_absolute() else value
    return out


def _read_profile(path: Path) -> dict[str, Any]:
    """A profile file's own values, checked: a mapping of known names (and `base`)."""
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParameterError(f"{path}:{where}: not valid YAML ({reason})") from None
    if not isinstance(values, Mapping):
        raise ParameterError(f"{path}: expected a mapping of parameter names to values, found {type(values).__name__}")
    unknown = sorted(set(values) - set(StudyParams.names()) - {"base"})
    if unknown:
        raise ParameterError(f"{path}: " + _unknown_message(unknown, "key"))
    return dict(values)


def profile_values(profile: Union[str, Path], profiles: Union[str, Path, Sequence[Union[str, Path]], None] = None
                   ) -> dict[str, Any]:
    """Every value a profile gives (`find_profile`): its own, over those of its `base` profile (a
    name in the same folder, or a YAML path relative to it), and so on, each file's paths
    resolved against its own folder. A profile without a base must name every parameter (as
    `cpu.yaml` does); the values are not checked here (`load_profile` does)."""
    chain: list[Path] = []
    values: dict[str, Any] = {}
    path = find_profile(profile, profiles)
    while path is not None:
        if path.resolve() in [c.resolve() for c in chain]:
            raise ParameterError(f"{chain[0]}: its bases form a loop ({' -> '.join(str(c) for c in chain + [path])})")
        chain.append(path)
        own = _read_profile(path)
        base = own.pop("base", None)
        values = {**_anchored(own, path.parent), **values}
        if base is not None:
            try:
                path = find_profile(path.parent / str(base) if Path(str(base)).suffix in (".yaml", ".yml") else
                                    str(base), path.parent)
            except ParameterError as exc:
                raise ParameterError(str(exc).replace(f"profile {str(base)!r}",
                                                      f"profile {str(base)!r} (the base of {path})", 1)) from None
        else:
            path = None
    missing = [n for n in StudyParams.names() if n not in values]
    if missing:
        raise ParameterError(f"{chain[-1]}: a profile without a base must name every parameter (or start from "
                             f"cpu.yaml's with `base: cpu`); missing: {', '.join(missing)}")
    return values


def load_profile(profile: Union[str, Path], *, profiles: Union[str, Path, Sequence[Union[str, Path]], None] = None,
                 **overrides: Any) -> StudyParams:
    """The parameters of a profile (a YAML path, or a name in the folders `profiles`:
    `profile_values`), with `overrides` (None means "the profile's value") applied; every
    name and value is checked. Paths among the overrides are taken as given (relative to the
    working directory)."""
    path = find_profile(profile, profiles)
    values = profile_values(path)
    unknown = sorted(set(overrides) - set(StudyParams.names()))
    if unknown:
        raise ParameterError(_unknown_message(unknown, "parameter"))
    merged = {**values, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return StudyParams(**merged)
    except ParameterError as exc:
        raise ParameterError(f"{path} with overrides {sorted(k for k, v in overrides.items() if v is not None)}: "
                             f"{exc}") from None


_LIST_FIELDS = _list_fields()
_NOT_PARAMETERS = {"In", "Out", "exit", "quit", "get_ipython", "profile"}


def notebook_parameters(profile: Union[str, Path], namespace: Mapping[str, Any], *,
                        profiles: Union[str, Path, Sequence[Union[str, Path]], None] = None) -> StudyParams:
    """A notebook's parameters: the profile (a YAML path, or a name in the folders `profiles`),
    overridden by the notebook's own variables that are not None. Call it right after the
    `parameters` cell with `globals()`: a variable that is not a parameter (a misspelt papermill
    `-p epochz 5`) is refused, naming the valid ones. Every notebook starts here, so this is
    also where its kernel tunes glibc's malloc (`evitvid.allocator`: large activations stay in
    the heap between passes)."""
    tune_malloc()
    names = set(StudyParams.names())
    given, unknown = {}, []
    for key, value in namespace.items():
        if key.startswith("_") or key in _NOT_PARAMETERS or isinstance(value, (types.ModuleType, type)) \
                or callable(value):
            continue
        if key in names:
            given[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise ParameterError(_unknown_message(sorted(unknown), "notebook parameter"))
    return load_profile(profile, profiles=profiles, **given)
