"""Every run the book reads, named by its parameters, and training them.

`method_runs` turns the methods (`evitvid.study.methods`) into `RunSpec`s named by their
parameters, each needing the image pretraining it starts from (`pretraining_specs`);
`train_methods` trains what is missing and returns {method key: [Run per seed]}.
`study_runs` lists every run the book reads (the pretraining, every method and seed, the run
that measures the spread between machines) in the order that keeps the workers busy, and
`train_study` trains them (`python -m evitvid study`). `finished_methods` only reads.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from .. import models as _models
from .. import runtime
from ..runs import Run, relative_to_root
from .data import DataPaths, build_frame_caches, resolve_data
from .jobs import RunSpec, train_runs
from .methods import method_rates, study_methods
from .params import StudyParams
from .training import (RECIPE, WEIGHTS_FILE, checkpoint_source, pretrain_images, pretraining_params, pretraining_run,
                       recipe_record, run_name, training_params)

__all__ = ["study_data", "prepare_data", "pretraining_specs", "method_runs", "train_methods", "spread_run",
           "machine_spread", "trains_check", "finished_spread", "study_runs", "train_study", "finished_methods",
           "pretraining_runs", "pretrained_checkpoint"]


def study_data(params: StudyParams, *, generate: bool = True, workers: Optional[int] = None) -> DataPaths:
    """The profile's dataset (`resolve_data`: the embedded one generated on first use by `workers`
    processes; with `generate=False` only named, which is all a run's name needs)."""
    return resolve_data(params.dataset, data_root=params.data_root, annotations_dir=params.annotations_dir,
                        videos_dir=params.videos_dir, decoder=params.decoder, generate=generate, workers=workers)


def prepare_data(params: StudyParams, data: Optional[DataPaths] = None, cores: Optional[int] = None) -> DataPaths:
    """What the video runs read, made now on `cores` cores (default every one): the embedded
    dataset when it is not generated yet (unless `data` names another) and, with
    `params.frame_cache`, the frame caches of the splits its runs read (the training split's and
    the validation or, with `split: tune`, the tuning split's). `train_runs` calls it beside the
    image pretraining, which reads no video, on the cores the pretraining leaves."""
    threads = torch.get_num_threads()
    try:
        if cores:
            torch.set_num_threads(cores)  # the caches resize frames in this process when cores is 1
        data = data or study_data(params, workers=cores)
        if params.frame_cache:
            build_frame_caches(data, params.crop_size, workers=cores,
                               tune_fraction=params.tune_fraction if params.split == "tune" else None)
    finally:
        torch.set_num_threads(threads)
    return data


def _keys(params: StudyParams, keys: Optional[Sequence[str]]) -> list[str]:
    methods = study_methods(params)
    if keys is not None and not list(keys):  # a notebook's methods, none in this profile
        raise ValueError(f"methods: this profile has none of the methods this step trains (it has "
                         f"{', '.join(methods)}); add one to `methods`, or run it with another profile")
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
            out[name] = RunSpec(name, dict(kwargs, runs_root=params.runs_root, memory_format=params.memory_format),
                                f"image pretraining ({kwargs['model']})", kind="pretraining")
    return list(out.values())


def method_runs(params: StudyParams, keys: Optional[Sequence[str]] = None, data: Optional[DataPaths] = None,
                environment: Optional[dict] = None) -> dict[str, list[RunSpec]]:
    """{method key: [RunSpec per seed]} for `keys` (default: every method of the profile), each
    method at its learning rate (`method_rates`; in a tuning study, a RunSpec per rate of
    `lr_grid` and seed, rate by rate); `environment`: variables set before torch starts, part of
    each run's parameters.

    Nothing trains here. An image-pretrained method with `pretrained="auto"` starts from its
    pretraining run's checkpoint, which its runs `need` (`pretraining_specs` lists them).
    """
    methods = study_methods(params)
    rates = method_rates(params)  # a mapping that misses a method, or names another, fails before anything
    data = data or study_data(params, generate=False)
    root = Path(params.runs_root)
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
        model_kwargs = ({"time_padding": method.time_padding or params.time_padding}
                        if _models.get_model_entry(method.model).kind == "3d" else {})
        specs = []
        for lr in rates[key]:
            protocol = training_params(params, lr=lr)
            # the name hashes the recipe's parameters only where they depart from the first runs' (recipe_record)
            named = {k: v for k, v in protocol.items() if k not in RECIPE}
            named.update(recipe_record(protocol))
            for seed in params.seeds:
                defining = dict(model=method.model, data=data.record, pretrained=relative_to_root(pretrained, root)
                                if pretrained else None, inflation=method.inflation or "mean", seed=seed,
                                **named, **model_kwargs,
                                **({"environment": dict(environment)} if environment else {}))
                rate = f"_lr{lr:g}" if params.lr_grid else ""  # a tuning study's runs say their rate
                name = run_name(f"{key}_{method.model.removeprefix('efficientvit_')}{rate}_seed{seed}", defining)
                kwargs = dict(defining, **protocol, pretrained=pretrained, runs_root=params.runs_root,
                              data_root=params.data_root, num_workers=params.num_workers,
                              memory_format=params.memory_format)
                label = f"{method.label}, lr {lr:g}, seed {seed}" if params.lr_grid else f"{method.label}, seed {seed}"
                specs.append(RunSpec(name, kwargs, label, needs=needs))
        out[key] = specs
    return out


def train_methods(params: StudyParams, keys: Optional[Sequence[str]] = None, data: Optional[DataPaths] = None,
                  stale: str = "refuse") -> dict[str, list[Run]]:
    """Train (or reuse) every seed of every method in `keys`, and the pretraining they start
    from; {method key: [Run per seed]}. `stale`: what to do with a finished run that other code
    computed (`training.train_video`)."""
    specs = method_runs(params, keys, data)
    flat = [s for group in specs.values() for s in group]
    trained = _train(params, pretraining_specs(params, keys) + flat, data, stale=stale)
    return {key: [trained[s.name] for s in group] for key, group in specs.items()}


def _train(params: StudyParams, specs: Sequence[RunSpec], data: Optional[DataPaths],
           log: Callable[[str], None] = print, stale: str = "refuse") -> dict[str, Run]:
    """`train_runs` in `_busy_order`; the data the video runs read is made once, before the first
    of them starts (`prepare_data`, beside the image pretraining), rather than in each worker."""
    return train_runs(_busy_order(specs), parallel=params.parallel_runs, log=log,
                      prepare=partial(prepare_data, params, data), stale=stale)


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


def trains_check(params: StudyParams) -> bool:
    """Whether the profile's study trains the instruction-set check (`spread_run`): when its
    `machine_check` asks, and never in a tuning study (`split: tune`)."""
    return params.machine_check and params.split == "validation"


def finished_spread(params: StudyParams, data: Optional[DataPaths] = None) -> tuple[Run, Run]:
    """Like `machine_spread`, but only reads: a run of the pair that this code did not finish
    raises, naming it."""
    here, other = (_finished(params, spec, "train it first", "python -m evitvid study with machine_check: true")
                   for spec in spread_run(params, data=data))
    return here, other


def study_runs(params: StudyParams, data: Optional[DataPaths] = None) -> list[RunSpec]:
    """Every run the profile's notebooks read, in the order `train_runs` keeps the workers busy
    with: the pretraining, the runs that need nothing (random initialisation, the instruction-set
    check when `machine_check` asks for it), then the runs that start from the pretraining. A
    tuning study (`split: tune`), which the book does not read, trains no check."""
    data = data or study_data(params, generate=False)
    flat = [s for group in method_runs(params, data=data).values() for s in group]
    if trains_check(params):
        flat.append(spread_run(params, data=data)[1])
    return _busy_order(pretraining_specs(params) + flat)


def train_study(params: StudyParams, log: Callable[[str], None] = print, stale: str = "refuse") -> dict[str, Run]:
    """Train (or reuse) every run of `study_runs`, `params.parallel_runs` at a time: what `make
    study` does before the notebooks, which then read the runs; {name: Run}. `stale="retrain"`
    trains again the finished runs that other code computed."""
    return _train(params, study_runs(params), None, log, stale)


def finished_methods(params: StudyParams, keys: Optional[Sequence[str]] = None,
                     data: Optional[DataPaths] = None) -> dict[str, list[Run]]:
    """Like `train_methods`, but only reads: a missing run raises, naming the notebook that trains it."""
    def trains(key: str) -> str:
        return f"run notebook {'01_frame_averaging' if key.startswith('frame_averaging') else '03_3d_inflated'} first"
    return {key: [_finished(params, spec, trains(key), "or train_methods") for spec in group]
            for key, group in method_runs(params, keys, data).items()}


def _finished(params: StudyParams, spec: RunSpec, trains: str, otherwise: str) -> Run:
    """The run of `spec` under `params.runs_root`, finished by this code; otherwise raises,
    naming the run, whether it is missing or another computation's, and what trains it (`trains`,
    or `otherwise` for a missing run)."""
    run = Run(Path(params.runs_root) / spec.name)
    if spec.complete:
        return run
    if run.complete:
        raise FileNotFoundError(f"{spec.label}: the run {run.dir} was computed by other code, CPU kernels or memory "
                                f"layout; {trains} (it refuses the old run, naming what differs) or python -m evitvid "
                                f"study --retrain-stale")
    raise FileNotFoundError(f"{spec.label}: no finished run {run.dir} for these parameters; {trains} ({otherwise})")


def pretraining_runs(params) -> dict[str, Optional[Run]]:
    """{2D image model: its pretraining run} for every image-pretrained method of the profile,
    trained here if missing; None where `pretrained` names a real checkpoint instead (nothing is
    pretrained here)."""
    out: dict[str, Optional[Run]] = {_models.get_model_entry(method.model).image_model: None
                                     for method in study_methods(params).values() if method.pretrained}
    for spec in pretraining_specs(params):
        out[spec.kwargs["model"]] = pretrain_images(spec.name, **spec.kwargs)
    return out


def pretrained_checkpoint(pretrained: Optional[str | dict], model: str, *, runs_root: Path | str,
                          threads: Optional[int] = None, **pretraining: Any) -> Optional[str]:
    """`pretrained` as `train_video` takes it (`checkpoint_source`). "auto" means the embedded
    study's stand-in for ImageNet, the checkpoint of `pretraining_run`: trained now if it is not
    in `runs_root` yet, reused otherwise. (The study's lists of runs train it as a run of their
    own, before the runs that need it: `study_runs`.)"""
    source = checkpoint_source(pretrained, model)
    if source != "auto":
        return source
    name, kwargs = pretraining_run(model, **pretraining)
    pretrain_images(name, runs_root=runs_root, threads=threads, **kwargs)
    return str(Path(runs_root) / name / WEIGHTS_FILE)
