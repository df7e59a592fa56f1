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
