"""One folder per run: its parameters, metrics, predictions, figures and checkpoint.

Every experiment writes to `RUNS_ROOT/<name>/` (CONTRIBUTING.md, "Run folders"):

    params.json        the parameters the run was started with
    metrics.json       per-epoch metrics (written by the engine after every epoch)
    results.json       final results, written last: its presence means the run is complete
    checkpoint.pt      the engine's resumable checkpoint
    predictions.csv    per-segment predictions (narration_id, labels, top-5 verbs and nouns)
    figures/           figures made from the files above

Later notebooks read these files instead of training again. Starting a run whose folder
holds different parameters fails, naming what differs, rather than mixing two runs. One
process writes a run at a time: `open_run` takes an exclusive lock on the folder (an OS
file lock, released when the process ends, however it ends), and a second writer is
refused with the first one's process id. Paths a run records point inside the runs root
are written relative to it (`relative_to_root`), so a runs folder can be moved.

A training run's parameters hold `made_by` (`evitvid.provenance`: the code's digest, whether
the CPU kernels ran, the memory layout). A finished run that differs from a new one only
there is the same experiment computed otherwise: it is refused with `StaleRunError`, which
says how to train it again, or started afresh when the caller asks (`retrain_other_code`).
"""
from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from .atomic import remove_stale_temporaries, write_json_atomic

__all__ = ["Run", "RunMismatchError", "StaleRunError", "RunBusyError", "open_run", "find_run", "relative_to_root",
           "resolve_from_root"]


class RunMismatchError(ValueError):
    """A run folder exists with other parameters."""


class StaleRunError(RunMismatchError):
    """A run folder holds the same experiment computed by other code, kernels or memory layout."""


class RunBusyError(RuntimeError):
    """Another process is writing the run folder."""


def _jsonable(params: Mapping[str, Any]) -> dict:
    return json.loads(json.dumps(dict(params), default=str))


class _FolderLock:
    """An exclusive, non-blocking `flock` on `folder/.lock`, holding the owner's pid.

    One per folder and process (`_held`): flock locks belong to an open file, so a second
    open in the same process would refuse its own first one.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / ".lock"
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            owner = self._file.read().strip() or "unknown"
            self._file.close()
            raise RunBusyError(f"{folder} is being written by another process (pid {owner}): wait for it to "
                               f"finish, or choose another run name") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    @property
    def held(self) -> bool:
        return not self._file.closed

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
        _held.pop(self.folder.resolve(), None)


_held: dict[Path, _FolderLock] = {}


def _lock(folder: Path) -> _FolderLock:
    lock = _held.get(folder.resolve())
    if lock is None or not lock.held:
        lock = _held[folder.resolve()] = _FolderLock(folder)
    return lock


@dataclass(frozen=True)
class Run:
    dir: Path
    _lock: Optional[_FolderLock] = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def root(self) -> Path:
        return self.dir.parent

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
        """Write results.json, which marks the run complete, and release the folder."""
        write_json_atomic(self.dir / "results.json", _jsonable(results))
        self.close()

    def close(self) -> None:
        """Release the folder's lock (also released when the process ends)."""
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _other_code_only(old: Mapping[str, Any], new: Mapping[str, Any], diff: list[str]) -> bool:
    """Whether two runs' parameters differ only in what computed them (`made_by`; a run from
    before runs recorded it also in where its data was)."""
    if "made_by" not in diff:
        return False
    ignored = {"made_by"} | ({"data_root"} if "made_by" not in old else set())
    return not set(diff) - ignored


def open_run(root: Path | str, name: str, params: Mapping[str, Any], *, fresh: bool = False,
             lock: bool = True, retrain_other_code: bool = False) -> Run:
    """Create or reopen `root/name` for `params`; an existing folder must hold the same parameters.

    An unfinished run is locked for this process (`lock=False` for the other processes of a
    distributed run, which only read) and its temporaries left by killed writers are removed.
    `fresh=True` starts the folder afresh whatever it holds (for steps that train nothing).
    A folder whose parameters differ only in `made_by` raises `StaleRunError`, or, with
    `retrain_other_code`, starts afresh.
    """
    folder = Path(root) / name
    params = _jsonable(params)
    path = folder / "params.json"
    if path.exists() and not fresh:
        old = json.loads(path.read_text())
        if old != params:
            diff = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
            changes = ", ".join(f"{k}: {old.get(k)!r} -> {params.get(k)!r}" for k in diff)
            if not _other_code_only(old, params, diff):
                raise RunMismatchError(f"{folder} holds a run with other parameters ({changes}); choose another "
                                       f"run name or delete the folder")
            if not retrain_other_code:
                raise StaleRunError(f"{folder} was computed by other code, CPU kernels or memory layout ({changes}), "
                                    f"so its numbers are not what this code computes: delete the folder to train it "
                                    f"again, or retrain such runs (python -m evitvid study --retrain-stale)")
            fresh = True
        elif (folder / "results.json").exists():
            return Run(folder)
    folder.mkdir(parents=True, exist_ok=True)
    held = _lock(folder) if lock else None
    try:
        remove_stale_temporaries(folder)
        if fresh:
            for stale in ("results.json", "metrics.json", "checkpoint.pt"):
                (folder / stale).unlink(missing_ok=True)
        if fresh or not path.exists():
            write_json_atomic(path, params)
    except BaseException:
        if held is not None:
            held.release()
        raise
    return Run(folder, held)


def find_run(root: Path | str, name: str) -> Optional[Run]:
    run = Run(Path(root) / name)
    return run if (run.dir / "params.json").exists() else None


def relative_to_root(path: Path | str, root: Path | str) -> str:
    """`path` relative to the runs root when it lies inside it (as runs record it), else as given."""
    path, root = Path(path), Path(root)
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def resolve_from_root(path: Path | str, root: Path | str) -> Path:
    """A path a run recorded: relative ones are inside the runs root."""
    path = Path(path)
    return path if path.is_absolute() else Path(root) / path
