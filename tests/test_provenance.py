"""What made a run (`evitvid.provenance`) and what a run folder does with it (`evitvid.runs`)."""
from __future__ import annotations

import json

import pytest
import torch

from evitvid import provenance
from evitvid.models import kernels
from evitvid.runs import RunMismatchError, StaleRunError, open_run


def test_the_code_digest_reads_code_not_docstrings_or_comments(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""Module doc."""\ndef f(x):\n    """Doc."""\n    return x + 1  # why\n')
    b.write_text('"""Another doc, wrapped\ndifferently."""\n\n\ndef f(x):\n    return (x\n            + 1)\n')
    c.write_text('"""Module doc."""\ndef f(x):\n    """Doc."""\n    return x + 2\n')
    assert provenance._code(a) == provenance._code(b) != provenance._code(c)


def test_the_training_code_is_the_closure_of_its_imports():
    files = {p.relative_to(p.parents[1]).as_posix() if p.parent.name != "evitvid" else p.name
             for p in provenance.source_files("evitvid.study.training")}
    assert {"study/training.py", "study/data.py", "engine/trainer.py", "models/efficientvit.py",
            "models/cpu_kernels.cpp"} <= files
    assert not {"study/chapters.py", "study/verdicts.py", "plots.py"} & files  # the book's text is not training
    assert len(provenance.source_digest("evitvid.study.training")) == 16


def test_made_by_records_the_kernels_and_the_layout():
    cpu = torch.device("cpu")
    assert provenance.made_by("evitvid.study.training", memory_format="contiguous", device=cpu)["cpu_kernels"] is False
    assert provenance.made_by("evitvid.study.training", memory_format="auto", device=cpu)["memory_format"] == \
        "channels_last"
    with kernels.cpu_fast_paths(False):
        assert provenance.made_by("evitvid.study.training", memory_format="auto", device=cpu)["cpu_kernels"] is False


def test_a_run_made_by_other_code_is_refused_or_started_afresh(tmp_path):
    params = {"model": "m", "seed": 0, "made_by": {"code": "aaaa", "cpu_kernels": True, "memory_format": "x"}}
    run = open_run(tmp_path, "r", params)
    run.write_results({"val": 1})
    run.close()
    other = dict(params, made_by=dict(params["made_by"], code="bbbb"))
    with pytest.raises(StaleRunError, match=r"computed by other code.*code.*--retrain-stale"):
        open_run(tmp_path, "r", other)
    with pytest.raises(RunMismatchError, match="other parameters"):  # another experiment altogether
        open_run(tmp_path, "r", dict(other, seed=1))
    again = open_run(tmp_path, "r", other, retrain_other_code=True)
    assert not again.complete and json.loads((tmp_path / "r" / "params.json").read_text())["made_by"]["code"] == "bbbb"
    again.close()
