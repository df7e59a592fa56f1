"""The methods the study compares, defined once, and the runs that train them.

A method is a model and how it starts: frame averaging from image-pretrained weights (the
paper's first method) or from random initialisation (the same comparison of
initialisations the paper makes for 3D), the 3D model from random initialisation, and
the 3D model inflated from image-pretrained weights, once per inflation of
`StudyParams.inflations` (the first, I3D's mean, is the paper's method; the others are the
ablation). Every method trains with the same protocol (epochs, schedule, batch,
augmentation) and the same seeds.

`method_runs` turns them into `RunSpec`s named by their parameters, each needing the image
pretraining it starts from (`pretraining_specs`); `train_methods` trains what is missing and
returns {method key: [Run per seed]}. `study_runs` lists every run the book reads (the
pretraining, every method and seed, the run that measures the spread between machines) in
the order that keeps the workers busy, and `train_study` trains them (`python -m evitvid study`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional, Sequence

import torch

from .. import models as _models
from .. import runtime
from ..runs import Run, relative_to_root
from .data import DataPaths, build_frame_caches, resolve_data
from .params import StudyParams
from .jobs import RunSpec, train_runs
from .training import (WEIGHTS_FILE, checkpoint_source, pretraining_params, pretraining_run, run_name, runs_root_of,
                       training_params)

__all__ = ["Method", "INFLATION_LABELS", "study_methods", "method_runs", "pretraining_specs", "train_methods",
           "study_data", "prepare_data", "spread_run", "machine_spread", "study_runs", "train_study",
           "finished_methods"]

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


def inflation_comparisons(methods: dict[str, Method]) -> list[tuple[str, str]]:
    """Each inflated 3D method against the 3D model from random initialisation, as (key a, key b)
    pairs (notebook 03's ablation); none without a random-init 3D method."""
    return [(key, "3d_random") for key, m in methods.items() if m.inflation is not None and "3d_random" in methods]


def study_data(params: StudyParams, *, generate: bool = True, workers: Optional[int] = None) -> DataPaths:
    """The profile's dataset (`resolve_data`: the embedded one generated on first use by `workers`
    processes; with `generate=False` only named, which is all a run's name needs)."""
    return resolve_data(params.dataset, annotations_dir=params.annotations_dir, videos_dir=params.videos_dir,
                        decoder=params.decoder, generate=generate, workers=workers)


def prepare_data(params: StudyParams, data: Optional[DataPaths] = None, cores: Optional[int] = None) -> DataPaths:
    """What the video runs read, made now on `cores` cores (default every one): the embedded
    dataset when it is not generated yet (unless `data` names another) and, with
    `params.frame_cache`, both splits' frame caches. `train_runs` calls it beside the image
    pretraining, which reads no video, on the cores the pretraining leaves."""
    threads = torch.get_num_threads()
    try:
        if cores:
            torch.set_num_threads(cores)  # the caches resize frames in this process when cores is 1
        data = data or study_data(params, workers=cores)
        if params.frame_cache:
            build_frame_caches(data, params.crop_size, workers=cores)
    finally:
        torch.set_num_threads(threads)
    return data


def _keys(params: StudyParams, keys: Optional[Sequence[str]]) -> list[str]:
    methods = study_methods(params)
    keys = list(methods) if keys is None else list(keys)
    unknown = [k for k in keys if k not in methods]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; this profile has: {', '.join(methods)}")
    return keys


def pretraining_specs(params: StudyParams, keys: Optional[Sequence[str]] = None) -> list[RunSpec]:
    """The image pretraining runs the methods `keys` start from (default: every method): one per
    2D backbone, none where `pretrained` names a real checkpoint."""
    methods = study_methods(params)
    out: dict[str, RunSpec] = {}
    for key in _keys(params, keys):
        method = methods[key]
        if method.pretrained and checkpoint_source(params.pretrained, method.model) == "auto":
            name, kwargs = pretraining_run(method.model, **pretraining_params(params))
            out[name] = RunSpec(name, dict(kwargs, runs_root=params.runs_root),
                                f"image pretraining ({kwargs['model']})", kind="pretraining")
    return list(out.values())


def method_runs(params: StudyParams, keys: Optional[Sequence[str]] = None, data: Optional[DataPaths] = None,
                environment: Optional[dict] = None) -> dict[str, list[RunSpec]]:
    """{method key: [RunSpec per seed]} for `keys` (default: every method of the profile);
    `environment`: variables set before torch starts, part of each run's parameters.

    Nothing trains here. An image-pretrained method with `pretrained="auto"` starts from its
    pretraining run's checkpoint, which its runs `need` (`pretraining_specs` lists them).
    """
    methods = study_methods(params)
    data = data or study_data(params, generate=False)
    root = runs_root_of(params.runs_root)
    out: dict[str, list[RunSpec]] = {}
    for key in _keys(params, keys):
        method = methods[key]
        pretrained, needs = None, ()
        if method.pretrained:
            pretrained = checkpoint_source(params.pretrained, method.model)
            if pretrained is None:
                raise ValueError(f"{method.label} starts from image weights: pretrained must name them "
                                 f"(auto, a checkpoint or timm:NAME), got None")
            if pretrained == "auto":  # the pretraining run's checkpoint, once that run is finished
                needs = (pretraining_run(method.model, **pretraining_params(params))[0],)
                pretrained = str(root / needs[0] / WEIGHTS_FILE)
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
            specs.append(RunSpec(name, kwargs, f"{method.label}, seed {seed}", needs=needs))
        out[key] = specs
    return out


def train_methods(params: StudyParams, keys: Optional[Sequence[str]] = None,
                  data: Optional[DataPaths] = None) -> dict[str, list[Run]]:
    """Train (or reuse) every seed of every method in `keys`, and the pretraining they start
    from; {method key: [Run per seed]}."""
    specs = method_runs(params, keys, data)
    flat = [s for group in specs.values() for s in group]
    trained = _train(params, pretraining_specs(params, keys) + flat, data)
    return {key: [trained[s.name] for s in group] for key, group in specs.items()}


def _train(params: StudyParams, specs: Sequence[RunSpec], data: Optional[DataPaths], log=print) -> dict[str, Run]:
    """`train_runs` in `_busy_order`; the data the video runs read is made once, before the first
    of them starts (`prepare_data`, beside the image pretraining), rather than in each worker."""
    return train_runs(_busy_order(specs), parallel=params.parallel_runs, log=log,
                      prepare=partial(prepare_data, params, data))


def _busy_order(specs: Sequence[RunSpec]) -> list[RunSpec]:
    """Runs that others need first, then the runs that need nothing, then the rest, each group in
    its own order: while the first ones train, the other workers have work that needs nothing."""
    needed = {n for s in specs for n in s.needs}
    return ([s for s in specs if s.name in needed] + [s for s in specs if s.name not in needed and not s.needs]
            + [s for s in specs if s.name not in needed and s.needs])


def spread_run(params: StudyParams, key: str = "3d_random", seed: int = 0, isa: Optional[str] = None,
               data: Optional[DataPaths] = None) -> tuple[RunSpec, RunSpec]:
    """(the run of method `key` and `seed` as the study trains it, the same run as another machine
    would compute it): oneDNN limited to the `isa` instruction set (ONEDNN_MAX_CPU_ISA; by default
    one step below this CPU's best, `runtime.lesser_instruction_set`), which changes the kernels
    and so the rounding of every convolution."""
    isa = isa or runtime.lesser_instruction_set()
    env = {"ONEDNN_MAX_CPU_ISA": isa}
    here = next(s for s in method_runs(params, [key], data)[key] if s.kwargs["seed"] == seed)
    other = next(s for s in method_runs(params, [key], data, environment=env)[key] if s.kwargs["seed"] == seed)
    return here, RunSpec(other.name, other.kwargs, f"{other.label}, oneDNN {isa}", needs=other.needs)


def machine_spread(params: StudyParams, key: str = "3d_random", seed: int = 0, isa: Optional[str] = None,
                   data: Optional[DataPaths] = None) -> tuple[Run, Run]:
    """Train (or reuse) both runs of `spread_run`; returns (the run as the study trained it, the other)."""
    here, other = spread_run(params, key, seed, isa, data)
    trained = _train(params, pretraining_specs(params, [key]) + [here, other], data)
    return trained[here.name], trained[other.name]


def study_runs(params: StudyParams, data: Optional[DataPaths] = None) -> list[RunSpec]:
    """Every run the book's notebooks read, in the order `train_runs` keeps the workers busy with:
    the pretraining, the runs that need nothing (random initialisation, the spread between
    machines), then the runs that start from the pretraining."""
    data = data or study_data(params, generate=False)
    flat = [s for group in method_runs(params, data=data).values() for s in group]
    if "3d_random" in study_methods(params):
        flat.append(spread_run(params, data=data)[1])
    return _busy_order(pretraining_specs(params) + flat)


def train_study(params: StudyParams, log=print) -> dict[str, Run]:
    """Train (or reuse) every run of `study_runs`, `params.parallel_runs` at a time: what `make
    study` does before the notebooks, which then read the runs; {name: Run}."""
    return _train(params, study_runs(params), None, log)


def finished_methods(params: StudyParams, keys: Optional[Sequence[str]] = None,
                     data: Optional[DataPaths] = None) -> dict[str, list[Run]]:
    """Like `train_methods`, but only reads: a missing run raises, naming the notebook that trains it."""
    specs = method_runs(params, keys, data)
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
