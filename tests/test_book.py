"""`jb build book` works from the root-level _config.yml/_toc.yml (through book/'s symlinks), without warnings."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_book_config_is_linked_and_never_executes():
    for name in ("_config.yml", "_toc.yml"):
        link = ROOT / "book" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"


@pytest.mark.slow
def test_book_builds_without_warnings(tmp_path):
    jb = Path(sys.executable).with_name("jb")
    if not jb.exists():
        jb = shutil.which("jb")
    assert jb, "jupyter-book is not installed"
    # Build a copy so the test never touches book/_build.
    shutil.copytree(ROOT / "book", tmp_path / "book", symlinks=False, ignore=shutil.ignore_patterns("_build"))
    result = subprocess.run([str(jb), "build", str(tmp_path / "book"), "--warningiserror", "--keep-going"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "book" / "_build" / "html" / "intro.html").exists()
