"""The methods the study compares, defined once, and the runs that train them.

A method is a model and how it starts: frame averaging from image-pretrained weights (the
paper's first method) or from random initialisation (the same comparison of
initialisations the paper makes for 3D), the 3D model from random initialisation, and
the 3D model inflated from image-pretrained weights, once per inflation of
`StudyParams.inflations` (the first, I3D's mean, is the paper's method; the others are the
ablation). Every method trains with the same protocol (epochs, schedule, batch,
augmentation) and the same seeds.

`method_runs` turns them into `RunSpec`s named by their parameters; `train_methods`
trains what is missing (in parallel) and returns {method key: [Run per seed]}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from .. import models as _models
from .. import runtime
from ..runs import Run, relative_to_root
from .data import DataPaths, resolve_data
from .params import StudyParams
from .training import (RunSpec, pretrained_checkpoint, pretraining_params, run_name, runs_root_of, train_runs,
                       training_params)

__all__ = ["Method", "INFLATION_LABELS", "study_methods", "method_runs", "train_methods", "study_data"]

INFLATION_LABELS = {"mean": "I3D mean", "mean_noise": "mean + zero-sum noise", "centre": "centre + small taps"}


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    model: str
    pretrained: bool
    inflation: Optional[str] = None
    ablation: bool = False  # an inflation variant, beside the main comparison


def _size(model: str) -> str:
    return model.removeprefix("efficientvit_").split("_")[0].upper()


def study_methods(params: StudyParams) -> dict[str, Method]:
    """{key: Method} in the order the book presents them."""
    out: dict[str, Method] = {}
    for i, fa in enumerate(params.frame_averaging_models):
        suffix = "" if i == 0 else f"_{_size(fa).lower()}"
        tag = "" if i == 0 else f" ({_size(fa)})"
        if "frame_averaging" in params.methods:
            out[f"frame_averaging{suffix}"] = Method(f"frame_averaging{suffix}", f"frame averaging{tag}", fa, True)
        if "frame_averaging_random" in params.methods:
            out[f"frame_averaging_random{suffix}"] = Method(f"frame_averaging_random{suffix}",
                                                            f"frame averaging{tag}, random init", fa, False)
    if "3d_random" in params.methods:
        out["3d_random"] = Method("3d_random", "3D, random init", params.model_3d, False)
    if "3d_inflated" in params.methods:
        for j, inflation in enumerate(params.inflations):
            label = "3D, inflated" + ("" if j == 0 else f" ({INFLATION_LABELS.get(inflation, inflation)})")
            out[f"3d_{inflation}"] = Method(f"3d_{inflation}", label, params.model_3d, True, inflation, ablation=j > 0)
    return out


def study_data(params: StudyParams) -> DataPaths:
    return resolve_data(params.dataset, annotations_dir=params.annotations_dir, videos_dir=params.videos_dir,
                        decoder=params.decoder)


def method_runs(params: StudyParams, keys: Optional[Sequence[str]] = None, data: Optional[DataPaths] = None,
                environment: Optional[dict] = None, train_pretraining: bool = True) -> dict[str, list[RunSpec]]:
    """{method key: [RunSpec per seed]} for `keys` (default: every method of the profile);
    `environment`: variables set before torch starts, part of each run's parameters.

    Image-pretrained methods need their checkpoint: with `pretrained="auto"` its pretraining
    run is trained here if missing (it is shared by every run that inflates or loads it), unless
    `train_pretraining=False` (then a missing one raises, naming notebook 02).
    """
    methods = study_methods(params)
    keys = list(methods) if keys is None else list(keys)
    unknown = [k for k in keys if k not in methods]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; this profile has: {', '.join(methods)}")
    data = data or study_data(params)
    root = runs_root_of(params.runs_root)
    out: dict[str, list[RunSpec]] = {}
    for key in keys:
        method = methods[key]
        pretrained = None
        if method.pretrained:
            pretrained = pretrained_checkpoint(params.pretrained, method.model, runs_root=params.runs_root,
                                               train=train_pretraining, **pretraining_params(params))
            if pretrained is None:
                raise ValueError(f"{method.label} starts from image weights: pretrained must name them "
                                 f"(auto, a checkpoint or timm:NAME), got None")
        model_kwargs = {"time_padding": params.time_padding} if _models.get_model_entry(method.model).kind == "3d" \
            else {}
        specs = []
        for seed in params.seeds:
            defining = dict(model=method.model, data=data.record, pretrained=relative_to_root(pretrained, root)
                            if pretrained else None, inflation=method.inflation or "mean", seed=seed,
                            **training_params(params), **model_kwargs,
                            **({"environment": dict(environment)} if environment else {}))
            name = run_name(f"{key}_{method.model.removeprefix('efficientvit_')}_seed{seed}", defining)
            kwargs = dict(defining, pretrained=pretrained, runs_root=params.runs_root, num_workers=params.num_workers,
                          memory_format=params.memory_format)
            specs.append(RunSpec(name, kwargs, f"{method.label}, seed {seed}"))
        out[key] = specs
    return out


def train_methods(params: StudyParams, keys: Optional[Sequence[str]] = None,
                  data: Optional[DataPaths] = None) -> dict[str, list[Run]]:
    """Train (or reuse) every seed of every method in `keys`; {method key: [Run per seed]}."""
    specs = method_runs(params, keys, data)
    flat = [s for group in specs.values() for s in group]
    trained = train_runs(flat, parallel=params.parallel_runs)
    return {key: [trained[s.name] for s in group] for key, group in specs.items()}


def machine_spread(params: StudyParams, key: str = "3d_random", seed: int = 0, isa: Optional[str] = None,
                   data: Optional[DataPaths] = None) -> tuple[Run, Run]:
    """The same run (method `key`, `seed`) here and as another machine would compute it: oneDNN
    limited to the `isa` instruction set (ONEDNN_MAX_CPU_ISA; by default one step below this CPU's
    best, `runtime.lesser_instruction_set`), which changes the kernels and so the rounding of
    every convolution. Returns (the run as the study trained it, the other)."""
    isa = isa or runtime.lesser_instruction_set()
    env = {"ONEDNN_MAX_CPU_ISA": isa}
    here = train_methods(params, [key], data)[key]
    other_spec = next(s for s in method_runs(params, [key], data, environment=env)[key] if s.kwargs["seed"] == seed)
    other = train_runs([RunSpec(other_spec.name, other_spec.kwargs, f"{other_spec.label}, oneDNN {isa}")],
                       environment=env)[other_spec.name]
    return next(r for r in here if r.params["seed"] == seed), other


def finished_methods(params: StudyParams, keys: Optional[Sequence[str]] = None,
                     data: Optional[DataPaths] = None) -> dict[str, list[Run]]:
    """Like `train_methods`, but only reads: a missing run raises, naming the notebook that trains it."""
    specs = method_runs(params, keys, data, train_pretraining=False)
    out = {}
    for key, group in specs.items():
        runs = []
        for spec in group:
            run = Run(runs_root_of(params.runs_root) / spec.name)
            if not run.complete:
                where = "01_frame_averaging" if key.startswith("frame_averaging") else "03_3d_inflated"
                raise FileNotFoundError(f"{spec.label}: no finished run {run.dir} for these parameters; run "
                                        f"notebook {where} first (or train_methods)")
            runs.append(run)
        out[key] = runs
    return out
