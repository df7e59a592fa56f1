"""Where the explorer's inputs come from: a profile's dataset and its finished runs.

`study_predictions` reads every finished run of every method of a profile (all seeds,
inflation variants included) into one `Predictions`. `missing_inputs` says, without making
anything, what is not there yet: `study.study_data` would generate a missing embedded
dataset and `study.finished_methods` would train a missing image pretraining (its
`pretrained="auto"` step), which is minutes of work a web page must not start silently.
`make explore` calls `check_inputs` before it starts the server.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from ..data import synth
from ..study import (DataPaths, StudyParams, finished_methods, load_profile, method_runs, pretraining_specs,
                     read_splits, study_data, study_methods)
from .predictions import Predictions

__all__ = ["study_predictions", "missing_inputs", "check_inputs"]

HINT = "run `make study` first (it generates the embedded dataset and trains every method)"


def study_predictions(params: StudyParams, data: Optional[DataPaths] = None) -> Predictions:
    """Every finished run of the profile's methods (all seeds), read once. Methods shown first:
    the profile's first method and its main inflated 3D method (the book's main comparison)."""
    data = data or study_data(params)
    methods = study_methods(params)
    runs = finished_methods(params, data=data)
    predictions = Predictions.from_runs(runs, read_splits(data), {k: m.label for k, m in methods.items()})
    main = [k for k, m in methods.items() if m.inflation and not m.ablation]
    shown = list(dict.fromkeys([next(iter(runs))] + [k for k in main if k in runs][:1]))
    predictions.default_methods = shown if len(shown) > 1 else list(runs)[:2]
    return predictions


def _missing_dataset(params: StudyParams) -> Optional[str]:
    if params.annotations_dir or params.videos_dir:
        for name in ("annotations_dir", "videos_dir"):
            if not Path(getattr(params, name)).is_dir():
                return f"{name}: {getattr(params, name)} is not a folder"
        return None
    if params.dataset.startswith("synth:"):
        preset = params.dataset.split(":", 1)[1]
        root = synth.default_out_dir(preset, data_root=params.data_root)
        if preset not in synth.PRESETS or not synth.is_complete(root, 0, synth.resolve_config(preset)):
            return f"the embedded dataset {root} is missing or incomplete"
        return None
    if not Path(params.dataset).is_dir():
        return f"dataset: {params.dataset} is not a folder"
    return None


def missing_inputs(params: StudyParams) -> list[str]:
    """One line per input of the explorer that does not exist yet (empty: ready). Reads only."""
    problem = _missing_dataset(params)
    if problem:
        return [problem]
    specs = pretraining_specs(params) + [spec for group in method_runs(params).values() for spec in group]
    return [f"{spec.label}: no finished run {spec.root / spec.name}" for spec in specs if not spec.complete]


def check_inputs(profile: Union[str, Path]) -> int:
    """For `make explore`: print what is missing and what to run for the profile (a YAML path);
    0 when the explorer can start."""
    try:
        params = load_profile(profile)
        missing = missing_inputs(params)
    except (ValueError, OSError) as exc:
        print(f"explorer: {exc}")
        return 2
    if missing:
        shown = missing[:5] + ([f"... and {len(missing) - 5} more"] if len(missing) > 5 else [])
        print(f"explorer: the {profile} profile's dataset or trained runs are not there yet; {HINT}:\n  "
              + "\n  ".join(shown))
        return 1
    return 0
