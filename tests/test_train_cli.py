"""`python -m evitvid train` and `eval`: defaults from a profile, flags over it, a run folder, the frames sweep."""
from __future__ import annotations

import json

import pytest

from evitvid.cli import main
from evitvid.study import load_profile
from conftest import PROFILES, tiny_copy


@pytest.fixture(scope="module")
def tiny(synth_tiny, tmp_path_factory) -> str:
    return str(tiny_copy(synth_tiny, tmp_path_factory))


@pytest.mark.slow  # trains and evaluates through the command line: about 10 s
def test_train_then_eval_from_the_command_line(tmp_path, tiny, capsys):
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"base: {PROFILES / 'cpu.yaml'}\nnum_frames: 2\ncrop_size: 32\nepochs: 1\nreversal_clips: 0\n")
    assert main(["train", "--name", "cli", "--model", "efficientvit_b0_3d", "--profile", str(profile), "--dataset",
                 tiny, "--batch-size", "4", "--max-val", "8", "--runs-root", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "cli"
    recorded = json.loads((run_dir / "params.json").read_text())
    assert recorded["model"] == "efficientvit_b0_3d" and recorded["batch_size"] == 4 and recorded["num_frames"] == 2
    assert recorded["pretrained"] is None and recorded["seed"] == 0  # random init; the profile's first seed
    cpu_lr = load_profile(PROFILES / "cpu.yaml").lr  # a rate per method: 3D from random init's
    assert recorded["lr"] == (cpu_lr["3d_random"] if isinstance(cpu_lr, dict) else cpu_lr)
    out = capsys.readouterr().out
    assert "cli: epoch=1" in out  # one line per epoch
    assert "verb_top1" in json.loads(out[out.index("{\n"):])
    assert main(["eval", str(run_dir), "--frames", "1", "2", "--positions", "2"]) == 0
    out = capsys.readouterr().out
    assert "frames" in out and "verb_top1" in out and "position" in out
    assert len(list((run_dir / "frames").glob("*.npz"))) == 4
    assert main(["eval", str(run_dir), "--frames", "2", "--positions", "2", "--average-positions"]) == 0
    assert "mean" in capsys.readouterr().out  # one multi-clip row, from the cached positions
    assert len(list((run_dir / "frames").glob("*.npz"))) == 4


def test_train_needs_a_model(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--name", "x", "--runs-root", str(tmp_path)])
    assert "--model" in capsys.readouterr().err


def test_an_unknown_key_in_the_profile_is_refused_in_one_line(tmp_path, tiny, capsys):
    profile = tmp_path / "profile.yaml"
    profile.write_text("epochz: 1\n")
    assert main(["train", "--name", "x", "--model", "efficientvit_b0_3d", "--profile", str(profile)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown key 'epochz'; valid:" in err and "epochs" in err
    profile.write_text("epochs: [1\n")
    assert main(["train", "--name", "x", "--model", "efficientvit_b0_3d", "--profile", str(profile)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not valid YAML" in err and "line 2" in err
    profile.write_text("epochs: 1\n")  # neither a base nor every parameter
    assert main(["train", "--name", "x", "--model", "efficientvit_b0_3d", "--profile", str(profile)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing: dataset, annotations_dir" in err and "base: cpu" in err


def test_eval_refuses_an_unfinished_run(tmp_path):
    with pytest.raises(SystemExit, match="not a finished run"):
        main(["eval", str(tmp_path)])


def _hold_lock(root, name, ready, release):
    from evitvid.runs import open_run
    open_run(root, name, {"first": "writer"})
    ready.set()
    release.wait(60)


def test_a_second_writer_is_refused_in_one_line(tmp_path, tiny, capsys):
    """Two `train --name G` at once: the second stops at once, naming the first's pid."""
    import multiprocessing
    root = tmp_path / "runs"
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    writer = context.Process(target=_hold_lock, args=(str(root), "g", ready, release))
    writer.start()
    try:
        assert ready.wait(60)
        (root / "g" / "params.json").unlink()  # the first writer holds the folder before its parameters land
        assert main(["train", "--name", "g", "--model", "efficientvit_b0_3d", "--dataset", tiny, "--num-frames", "2",
                     "--crop-size", "32", "--epochs", "1", "--batch-size", "4", "--runs-root", str(root)]) == 2
    finally:
        release.set()
        writer.join(30)
    err = capsys.readouterr().err
    assert f"being written by another process (pid {writer.pid})" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow  # a training step measured in a fresh process: about 8 s
def test_a_batch_that_does_not_fit_in_memory_is_refused_before_the_run_starts(tmp_path, tiny, capsys, monkeypatch):
    from evitvid.engine import memory
    monkeypatch.setattr(memory, "device_memory", lambda device: memory.DeviceMemory(20_000_000, 10 ** 9, "test"))
    assert main(["train", "--name", "big", "--model", "efficientvit_b0_3d", "--dataset", tiny, "--num-frames", "2",
                 "--crop-size", "32", "--epochs", "1", "--batch-size", "4", "--runs-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("python -m evitvid train: error: batch_size=4: one training step of 4 clips of 3 x 2 x 32 "
                          "x 32 needs about")
    assert "of clips the run keeps" in err  # the reversal probe's clips, beside the step
    assert not (tmp_path / "runs" / "big").exists()  # refused before the run folder: a smaller batch is not refused
