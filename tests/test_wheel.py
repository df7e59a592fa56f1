"""The library stands alone: built as a wheel and installed outside the checkout, it answers
`--help`, builds a model and trains one epoch on a tiny generated set, every path given
explicitly (CONTRIBUTING.md, convention 13). Nothing of the checkout is on its path: the fresh
environment sees the wheel, and the pinned dependencies of the project's environment through a
path entry (not its editable install)."""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from conftest import PROFILES, REPO

pytestmark = pytest.mark.slow


def _run(python: Path, *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(python of a fresh environment with the evitvid wheel installed, a folder outside the checkout)."""
    place = tmp_path_factory.mktemp("elsewhere")
    source, wheels = place / "source", place / "wheels"  # a copy: building writes build/ beside the sources
    shutil.copytree(REPO / "evitvid", source / "evitvid", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(source)], check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("evitvid-*.whl"))
    env = place / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    # the dependencies, not the editable evitvid: a path entry's own .pth files are not read
    (purelib / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(purelib),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    return python, place


def test_the_wheel_is_what_runs_outside_the_checkout(installed):
    python, place = installed
    where = _run(python, "-c", "import evitvid; print(evitvid.__file__)", cwd=place)
    assert str(REPO) not in where and "site-packages" in where
    assert "train" in _run(python, "-m", "evitvid", "--help", cwd=place)
    out = _run(python, "-c", "import evitvid, torch; m = evitvid.create_model('efficientvit_b0_3d', num_verbs=3, "
                             "num_nouns=2); print(tuple(m(torch.randn(1, 3, 2, 32, 32)).verb.shape))", cwd=place)
    assert out.strip() == "(1, 3)"


def test_the_wheel_trains_an_epoch_with_explicit_paths(installed):
    python, place = installed
    data, runs = place / "data", place / "runs"
    _run(python, "-m", "evitvid", "synth", "--preset", "tiny", "--data-root", str(data), "--workers", "1",
         "--no-progress", cwd=place)
    values = yaml.safe_load((PROFILES / "cpu.yaml").read_text())  # every parameter named: a profile without a base
    values.update(dataset="synth:tiny", runs_root=str(runs), data_root=str(data), longer_budget=None, epochs=1,
                  num_frames=2, crop_size=32, batch_size=4, max_val=8, reversal_clips=0, frame_cache=False)
    profile = place / "tiny.yaml"
    profile.write_text(yaml.safe_dump(values))
    out = _run(python, "-m", "evitvid", "train", "--profile", str(profile), "--name", "wheel",
               "--model", "efficientvit_b0_3d", cwd=place)
    assert "verb_top1" in out
    run = runs / "wheel"
    assert (run / "results.json").is_file() and (run / "logits.npz").is_file()
    assert (data / "synth-tiny" / "annotations" / "EPIC_100_train.csv").is_file()
    assert not (REPO / "runs" / "wheel").exists()
