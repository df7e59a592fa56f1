"""Run folders: parameters recorded, mismatches refused, completion marked by results.json."""
from __future__ import annotations

from pathlib import Path

import pytest

from evitvid.runs import RunMismatchError, find_run, open_run


def test_reopen_with_same_params_and_refuse_other_params(tmp_path):
    run = open_run(tmp_path, "a", {"lr": 0.1, "model": "b1"})
    assert run.params == {"lr": 0.1, "model": "b1"} and not run.complete
    assert open_run(tmp_path, "a", {"model": "b1", "lr": 0.1}).dir == run.dir
    with pytest.raises(RunMismatchError, match=r"lr: 0.1 -> 0.2"):
        open_run(tmp_path, "a", {"lr": 0.2, "model": "b1"})
    run.write_results({"val": {"verb_top1": 0.5}})
    assert run.complete and run.results["val"]["verb_top1"] == 0.5
    assert find_run(tmp_path, "a").dir == run.dir and find_run(tmp_path, "b") is None


def test_fresh_clears_previous_results(tmp_path):
    run = open_run(tmp_path, "a", {"lr": 0.1})
    run.write_results({"x": 1})
    run = open_run(tmp_path, "a", {"lr": 0.2}, fresh=True)
    assert not run.complete and run.params == {"lr": 0.2}
    with pytest.raises(FileNotFoundError, match="no results.json"):
        run.results


def _hold_lock(root, name, ready, release):
    from evitvid.runs import open_run
    open_run(root, name, {"lr": 0.1})
    ready.set()
    release.wait(30)


def test_a_second_writer_is_refused_naming_the_first():
    import multiprocessing
    import tempfile

    from evitvid.runs import RunBusyError
    root = tempfile.mkdtemp()
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    writer = context.Process(target=_hold_lock, args=(root, "g", ready, release))
    writer.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RunBusyError, match=rf"being written by another process \(pid {writer.pid}\)"):
            open_run(root, "g", {"lr": 0.1})
    finally:
        release.set()
        writer.join(30)
    assert open_run(root, "g", {"lr": 0.1}).dir.name == "g"  # the lock died with its process


def test_the_same_process_may_reopen_its_run_and_results_release_it(tmp_path):
    run = open_run(tmp_path, "a", {"lr": 0.1})
    again = open_run(tmp_path, "a", {"lr": 0.1})  # e.g. a notebook cell run twice
    assert again.dir == run.dir
    run.write_results({"x": 1})
    assert open_run(tmp_path, "a", {"lr": 0.1}).complete


def test_temporaries_of_a_killed_writer_are_removed_when_the_run_reopens(tmp_path):
    import subprocess
    import sys
    run = open_run(tmp_path, "a", {"lr": 0.1})
    run.close()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = run.dir / f".checkpoint.pt.{dead}.tmp"
    stale.write_bytes(b"half a checkpoint")
    open_run(tmp_path, "a", {"lr": 0.1})
    assert not stale.exists()


def test_paths_inside_the_runs_root_are_recorded_relative(tmp_path):
    from evitvid.runs import relative_to_root, resolve_from_root
    inside = tmp_path / "02_pretrain" / "model.safetensors"
    assert relative_to_root(inside, tmp_path) == "02_pretrain/model.safetensors"
    assert resolve_from_root("02_pretrain/model.safetensors", tmp_path / "moved") == \
        tmp_path / "moved" / "02_pretrain" / "model.safetensors"
    assert relative_to_root("/elsewhere/model.safetensors", tmp_path) == "/elsewhere/model.safetensors"
    assert resolve_from_root("/elsewhere/model.safetensors", tmp_path) == Path("/elsewhere/model.safetensors")
