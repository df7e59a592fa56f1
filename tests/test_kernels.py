"""evitvid.models.kernels: how the C++ kernels are built and loaded (their arithmetic is tested
with their callers, tests/test_depthwise.py and tests/test_batchnorm.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import sys
from evitvid.models import kernels
cpp_extension = kernels._cpp_extension()
print("-- imported --", file=sys.stderr, flush=True)
cpp_extension._find_cuda_home()  # the probe itself, called again: it still warns here
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CUDA probe warns only where there is no CUDA runtime")
def test_loading_the_kernels_prints_no_cuda_warning_on_a_cpu_machine(tmp_path):
    """torch.utils.cpp_extension looks for a CUDA toolkit when it is imported and warns when it
    finds one (here a stand-in nvcc on the PATH) without a CUDA runtime; the CPU kernels never
    use it, and the import they make says nothing."""
    nvcc = tmp_path / "cuda" / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text("#!/bin/sh\nexit 1\n")
    nvcc.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH")}
    env["PATH"] = os.pathsep.join([str(nvcc.parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    on_import, after = result.stderr.split("-- imported --")
    assert "No CUDA runtime" not in on_import, on_import
    assert "No CUDA runtime" in after, after  # the stand-in toolkit was found: the first check could fail


def test_checkouts_with_the_same_source_share_one_build(tmp_path, monkeypatch):
    """The build is named after the source's content and compiles a copy kept under that name:
    the same source in two checkouts is one build (compiled from each checkout's own path, ninja
    saw a new command at every switch and compiled again), another source is another build."""
    from evitvid.models import kernels
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    cpp_extension = kernels._cpp_extension()
    staged = []
    for checkout, extra in (("a", ""), ("b", ""), ("c", "// changed\n")):
        source = tmp_path / checkout / "cpu_kernels.cpp"
        source.parent.mkdir()
        source.write_text(kernels.SOURCE.read_text() + extra)
        monkeypatch.setattr(kernels, "SOURCE", source)
        staged.append(kernels._staged_source(cpp_extension))
    (name_a, path_a), (name_b, path_b), (name_c, path_c) = staged
    assert (name_a, path_a) == (name_b, path_b) and path_a.is_relative_to(tmp_path / "cache")
    assert path_a.read_text() == kernels.SOURCE.read_text().removesuffix("// changed\n")
    assert name_c != name_a and path_c != path_a and path_c.read_text().endswith("// changed\n")
    assert name_a.startswith(f"evitvid_cpu_kernels_{kernels._cpu_signature()}_") and name_a.isidentifier()
