"""One folder per run: its parameters, metrics, predictions, figures and checkpoint.

Every experiment writes to `RUNS_ROOT/<name>/` (STYLE.md, convention 7):

    params.json        the parameters the run was started with
    metrics.json       per-epoch metrics (written by the engine after every epoch)
    results.json       final results, written last: its presence means the run is complete
    checkpoint.pt      the engine's resumable checkpoint
    predictions.csv    per-segment predictions (narration_id, labels, top-5 verbs and nouns)
    figures/           figures made from the files above

Later notebooks read these files instead of training again. Starting a run whose folder
holds different parameters fails, naming what differs, rather than mixing two runs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from .atomic import write_json_atomic


class RunMismatchError(ValueError):
    """A run folder exists with other parameters."""


def _jsonable(params: Mapping[str, Any]) -> dict:
    return json.loads(json.dumps(dict(params), default=str))


@dataclass(frozen=True)
class Run:
    dir: Path

    @property
    def params(self) -> dict:
        return json.loads((self.dir / "params.json").read_text())

    @property
    def complete(self) -> bool:
        return (self.dir / "results.json").exists()

    @property
    def results(self) -> dict:
        path = self.dir / "results.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: the run has not finished (no results.json)")
        return json.loads(path.read_text())

    @property
    def metrics(self) -> list[dict]:
        path = self.dir / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else []

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def figures(self) -> Path:
        path = self.dir / "figures"
        path.mkdir(exist_ok=True)
        return path

    def write_results(self, results: Mapping[str, Any]) -> None:
        write_json_atomic(self.dir / "results.json", _jsonable(results))


def open_run(root: Path | str, name: str, params: Mapping[str, Any], *, fresh: bool = False) -> Run:
    """Create or reopen `root/name` for `params`; an existing folder must hold the same parameters."""
    run = Run(Path(root) / name)
    params = _jsonable(params)
    path = run.dir / "params.json"
    if path.exists() and not fresh:
        old = json.loads(path.read_text())
        if old != params:
            diff = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
            raise RunMismatchError(
                f"{run.dir} holds a run with other parameters ({', '.join(f'{k}: {old.get(k)!r} -> {params.get(k)!r}' for k in diff)}); "
                f"choose another run name or delete the folder")
        return run
    run.dir.mkdir(parents=True, exist_ok=True)
    for stale in ("results.json", "metrics.json", "checkpoint.pt"):
        if fresh:
            (run.dir / stale).unlink(missing_ok=True)
    write_json_atomic(path, params)
    return run


def find_run(root: Path | str, name: str) -> Optional[Run]:
    run = Run(Path(root) / name)
    return run if (run.dir / "params.json").exists() else None
