"""The study at a longer budget, recorded in the repository: what `make study`'s budget trades.

`make study` trains every method for the epochs that fit its 45 minutes on 2 cores, which is
short of a plateau. The profile `cpu_long` (`book/params/cpu_long.yaml`: every method, the
same seeds and protocol, twice the epochs) is trained by `make study-long`, whose
last step, `python -m evitvid study --profile cpu_long --record book/recorded/cpu_long`,
writes what the results chapter needs from those runs into the repository:

- `learning_curves.csv`: every run's validation top-1 (and training loss) per epoch;
- `record.json`: the profile and its values, the runs by name, the commit, the machine, the
  training time and when it was recorded.

The results chapter reads it (`read_recorded`, through the profile's `longer_budget`) beside
the runs it trained itself and compares the two budgets (`curves.budget_comparison`): whether the
methods plateau with more epochs, and whether the differences behind the verdicts hold.

A record names its runs, and a run's name hashes its parameters, so a record made under
another protocol (another learning rate, another dataset) no longer matches its profile:
`recorded_runs_match` says so, and the test suite asks for a new record (CONTRIBUTING.md).
"""
from __future__ import annotations

import datetime
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import pandas as pd

from ..atomic import atomic_path, write_json_atomic
from .budget import training_span
from .methods import study_methods
from .params import StudyParams
from .plan import finished_methods, method_runs
from .results import learning_curves

__all__ = ["RECORD_FILE", "CURVES_FILE", "CURVE_COLUMNS", "RecordedStudy", "checkout_commit", "record_study",
           "read_recorded", "recorded_runs_match"]

RECORD_FILE = "record.json"
CURVES_FILE = "learning_curves.csv"
CURVE_COLUMNS = ("method", "seed", "epoch", "train_loss", "val_verb_top1", "val_noun_top1", "val_action_top1",
                 "epoch_seconds")


@dataclass(frozen=True)
class RecordedStudy:
    """A study's learning curves and where they come from, as `record_study` wrote them."""
    path: Path
    curves: pd.DataFrame
    about: dict

    @property
    def epochs(self) -> int:
        return int(self.about["params"]["epochs"])

    @property
    def location(self) -> str:
        """The folder, relative to the working directory when inside it (the book's folder for a
        notebook), else as an absolute path."""
        try:
            return str(self.path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(self.path.resolve())


def checkout_commit(folder: Union[str, Path]) -> Optional[str]:
    """The commit of the git checkout `folder` is in, `+changes` when tracked files differ from
    it; None outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout
    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = git("status", "--porcelain", "--untracked-files=no").strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changed else "")


def record_study(params: StudyParams, out: Union[str, Path], profile: str, *,
                 commit: Optional[str] = None) -> RecordedStudy:
    """Write the learning curves of `params`' finished method runs and their provenance to the
    folder `out` (each file atomically): the profile, its values (without the machine's
    folders), the runs, the code that trained them (`commit`, when the caller knows it:
    `checkout_commit`) and the machine. A missing run raises, naming the notebook that trains it."""
    methods = study_methods(params)
    runs = finished_methods(params)
    curves = learning_curves(runs, methods)
    curves = curves[[c for c in CURVE_COLUMNS if c in curves]]
    every = [r for group in runs.values() for r in group]
    minutes = training_span(every)
    about = {
        "profile": profile,
        "command": f"python -m evitvid study --profile {profile} --record {out}",
        "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "params": {k: v for k, v in params.as_dict().items() if k not in ("runs_root", "data_root")},
        "runs": {key: [r.name for r in group] for key, group in runs.items()},
        "training_minutes": None if minutes is None else round(minutes, 1),
        "environment": every[0].results.get("environment", {}),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / CURVES_FILE) as tmp:
        curves.to_csv(tmp, index=False, float_format="%.6g")
    write_json_atomic(out / RECORD_FILE, about)
    return read_recorded(out.resolve())


def read_recorded(path: Union[str, Path]) -> RecordedStudy:
    """A folder `record_study` wrote (a profile's `longer_budget`); a missing or malformed file is
    named."""
    path = Path(path)
    record, curves_file = path / RECORD_FILE, path / CURVES_FILE
    for f in (record, curves_file):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: no recorded study here (write one with `python -m evitvid study "
                                    f"--profile NAME --record {path}`)")
    try:
        about = json.loads(record.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{record}: not valid JSON ({exc})") from None
    missing = [k for k in ("params", "runs", "environment") if k not in about]
    if missing:
        raise ValueError(f"{record}: missing {', '.join(missing)}")
    curves = pd.read_csv(curves_file)
    absent = [c for c in ("method", "seed", "epoch", "val_verb_top1") if c not in curves]
    if absent:
        raise ValueError(f"{curves_file}: missing column(s) {', '.join(absent)}")
    return RecordedStudy(path, curves, about)


def recorded_runs_match(recorded: RecordedStudy, params: StudyParams) -> bool:
    """Whether `params` (the recorded profile as it reads today) names the runs the record was
    made of: the same methods, seeds and protocol."""
    names = {key: [s.name for s in group] for key, group in method_runs(params).items()}
    return names == recorded.about["runs"]


