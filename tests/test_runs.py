"""Run folders: parameters recorded, mismatches refused, completion marked by results.json."""
from __future__ import annotations

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
