"""Files written whole or not at all: a killed process leaves the old file or the new one.

Everything that must survive an interrupted run (checkpoints, run folders' JSON,
predictions, extracted frames, the embedded dataset's annotations) is written to a
temporary name beside its destination, `.NAME.PID.tmp`, and moved into place with
`os.replace`. A process killed mid-write leaves its temporary behind; `remove_stale_temporaries`
deletes those of processes that are gone (run folders call it when a run resumes).
"""
from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "write_bytes_atomic", "write_json_atomic", "torch_save_atomic",
           "remove_stale_temporaries"]

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


@contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside `path` to write to; moved onto `path` when the block ends
    without an error (after an fsync when asked), removed otherwise."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes, *, fsync: bool = False) -> None:
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """`obj` as indented JSON, fsynced: run folders' parameters, metrics and results."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode(), fsync=True)


def torch_save_atomic(path: str | Path, obj: Any) -> None:
    """`torch.save(obj)` to `path`, fsynced: checkpoints."""
    import torch

    with atomic_path(path, fsync=True) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries in `folder` left by processes that no longer run; returns them.

    A live process's temporary (another writer, or this process) is kept.
    """
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        m = _TEMPORARY.match(path.name)
        if m and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
