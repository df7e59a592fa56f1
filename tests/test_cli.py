"""The command line: dispatch, help, and bad input reported in one line."""
from __future__ import annotations

import subprocess
import sys

from evitvid.cli import COMMANDS, main


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "evitvid", "--help"], capture_output=True, text=True).stdout
    assert all(name in out for name in COMMANDS)


def test_command_help_comes_from_the_command():
    out = subprocess.run([sys.executable, "-m", "evitvid", "flops", "--help"], capture_output=True, text=True).stdout
    assert "--json" in out


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    bad = tmp_path / "EPIC_100_train.csv"
    bad.write_text("narration_id,participant_id\nP01_01_0,P01\n")
    assert main(["stats", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m evitvid stats: error: ") and str(bad) in err and "Traceback" not in err


def test_eval_of_a_crafted_run_folder_runs_nothing_and_says_so_in_one_line(tmp_path, capsys):
    """A run folder received from someone else: its checkpoint is read as tensors only, so a
    pickle that would run code on loading is refused in one line, and its code never runs."""
    import json
    import pickle

    import torch

    class Payload:  # what a crafted checkpoint.pt holds: loading it would call os.system
        def __reduce__(self):
            return (__import__("os").system, (f"touch {tmp_path / 'ran'}",))

    run = tmp_path / "run"
    run.mkdir()
    (run / "params.json").write_text(json.dumps({"model": "efficientvit_b0_3d", "data": {}, "crop_size": 32,
                                                 "max_val": None}))
    (run / "results.json").write_text("{}")
    torch.save({"model": Payload()}, run / "checkpoint.pt")  # as a training checkpoint is written
    assert main(["eval", str(run), "--frames", "1"]) == 2
    err = capsys.readouterr().err
    assert not (tmp_path / "ran").exists()
    assert err.startswith("python -m evitvid eval: error: ") and "checkpoint.pt" in err and len(err.splitlines()) == 1
    assert "could run code" in err
    (run / "checkpoint.pt").write_bytes(pickle.dumps({"model": Payload()}))  # a bare pickle: no checkpoint at all
    assert main(["eval", str(run), "--frames", "1"]) == 2
    assert not (tmp_path / "ran").exists() and "cannot be read as a checkpoint" in capsys.readouterr().err
