"""`python -m evitvid train` and `eval`: parameters from flags and files, a run folder, the frames sweep."""
from __future__ import annotations

import json

import pytest

from evitvid.cli import main
from evitvid.data import synth


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("synth") / "tiny"
    synth.generate(root, "tiny", seed=0, workers=1, progress=False)
    return str(root)


def test_train_then_eval_from_the_command_line(tmp_path, tiny, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("model: efficientvit_b0_3d\nnum_frames: 2\ncrop_size: 32\nepochs: 1\nunrelated_key: 3\n")
    assert main(["train", "--name", "cli", "--params", str(params), "--dataset", tiny, "--batch-size", "4",
                 "--max-val", "8", "--runs-root", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "cli"
    recorded = json.loads((run_dir / "params.json").read_text())
    assert recorded["model"] == "efficientvit_b0_3d" and recorded["batch_size"] == 4 and recorded["num_frames"] == 2
    out = capsys.readouterr().out
    assert "cli: epoch=1" in out  # one line per epoch
    assert "verb_top1" in json.loads(out[out.index("{\n"):])
    assert main(["eval", str(run_dir), "--frames", "1", "2"]) == 0
    out = capsys.readouterr().out
    assert "frames" in out and "verb_top1" in out
    assert [r["frames"] for r in json.loads((run_dir / "frames.json").read_text())] == [1, 2]


def test_train_needs_a_model(tmp_path):
    with pytest.raises(SystemExit, match="--model is required"):
        main(["train", "--name", "x", "--runs-root", str(tmp_path)])


def test_eval_refuses_an_unfinished_run(tmp_path):
    with pytest.raises(SystemExit, match="not a finished run"):
        main(["eval", str(tmp_path)])
