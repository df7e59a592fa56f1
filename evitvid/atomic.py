"""Files written whole or not at all: a killed process leaves the old file or the new one.

Everything that must survive an interrupted run (checkpoints, run folders' JSON,
predictions, extracted frames, the embedded dataset's annotations) is written to a
temporary name beside its destination and moved into place with `os.replace`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "write_bytes_atomic"]


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
