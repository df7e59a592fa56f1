"""Atomic writes: the old file or the new one, never half; temporaries of dead writers removed."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from evitvid.atomic import (atomic_path, remove_stale_temporaries, torch_save_atomic, write_bytes_atomic,
                            write_json_atomic)


def test_torch_save_atomic_keeps_the_old_file_when_a_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    torch_save_atomic(path, {"epoch": 1})

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        torch_save_atomic(path, {"epoch": 2})
    monkeypatch.undo()
    assert torch.load(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["checkpoint.pt"]  # no temporary left behind


def test_write_bytes_and_json_replace_whole_files(tmp_path):
    path = tmp_path / "results.json"
    write_json_atomic(path, {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'
    write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["results.json"]


def test_a_failed_block_leaves_the_destination_alone(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that has just exited
    stale = tmp_path / f".checkpoint.pt.{dead}.tmp"
    mine = tmp_path / f".checkpoint.pt.{os.getpid()}.tmp"
    parent = tmp_path / f".metrics.json.{os.getppid()}.tmp"  # a live process's
    other = tmp_path / "notes.tmp"
    for p in (stale, mine, parent, other):
        p.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and mine.exists() and parent.exists() and other.exists()
