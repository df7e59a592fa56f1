"""The project's set-up files agree with each other: conda's environment.yml, pyproject.toml, constraints.txt."""
from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + [p for group in project["optional-dependencies"].values() for p in group]


def test_every_dependency_is_pinned_exactly():
    loose = [p for p in _pyproject_pins() if "==" not in p]
    assert not loose, f"pyproject.toml dependencies without an exact pin: {loose}"


def test_environment_yml_repeats_the_pyproject_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert sorted(pip) == sorted(_pyproject_pins())


def test_constraints_agree_with_the_pins():
    locked = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            locked[name.lower().replace("_", "-")] = version
    for pin in _pyproject_pins():
        name, version = pin.split("==")
        assert locked.get(name.lower().replace("_", "-")) == version, f"constraints.txt disagrees on {pin}"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
