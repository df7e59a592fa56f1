"""C++ kernels for training on a CPU over channels-last tensors, built on first use.

PyTorch's CPU kernels for three of the models' training operations are far from what the
machine can do at the study's shapes (`python -m evitvid bench --only depthwise,train`):

- the depthwise convolution's weight gradient and its strided input gradient, in 3D and
  (as clips of one frame) 2D (`depthwise_weight_grad`, `depthwise_input_grad`, used by
  `evitvid.models.depthwise`);
- batch norm in training over channels-last activations, forward and backward
  (`batch_norm_forward`, `batch_norm_backward`, used by `evitvid.models.batchnorm`): PyTorch's
  channels-last backward ran 20-30x slower than its contiguous one with 8 channels.

`cpu_kernels.cpp` does the same arithmetic with channels as the contiguous innermost axis, so
every inner loop runs over adjacent values, on torch's own thread pool (`at::parallel_for`).
An earlier version of the depthwise kernels in numba ran on numba's pool beside torch's, and
each pool waited on the other's spinning threads after every call; a numba batch norm was
left out for that reason. Reductions are split into `SLICES` fixed slices of rows, each summed
on its own and then in order, so a result does not depend on the number of threads; batch
norm's sums are kept in double. Compiled for the machine's own vector instructions
(`-march=native`, the build named after the CPU's feature flags so that a shared cache never
hands one CPU another's build) but without FMA contraction or reassociation
(`-ffp-contract=off`, no fast-math): every value is the same sequence of IEEE operations
whatever the vector width, so a result does not depend on which vector instructions ran.

The extension is compiled once per machine by `torch.utils.cpp_extension` with ninja (pinned;
about 30 s; cached under `TORCH_EXTENSIONS_DIR`, by default `~/.cache/torch_extensions`). The
build is named after the source's content and flags too, and compiles a copy of the source kept
under that name (`_staged_source`): two checkouts on one machine share the build of the same
source, and one with another source builds beside it. Compiled from each checkout's own path,
ninja saw its command change at every switch and compiled again (30 s of two cores each time).
Where it cannot be built (no C++ compiler), or `EVITVID_CPU_KERNELS=0`, `available()` says
so once and the callers use PyTorch's kernels.
"""
from __future__ import annotations

import contextlib
import logging
import os
import types
from pathlib import Path
from typing import Iterator, Optional

import torch

__all__ = ["SLICES", "SOURCE", "available", "get", "cpu_fast_paths", "fast_paths_enabled", "rows_view",
           "channels_last_rows"]

_log = logging.getLogger(__name__)

SLICES = 16  # as in cpu_kernels.cpp (checked when it loads)
SOURCE = Path(__file__).with_name("cpu_kernels.cpp")
FLAGS = ["-O3", "-march=native", "-fopenmp", "-ffp-contract=off"]
_kernels: Optional[types.ModuleType] = None
_error: Optional[str] = None
_fast_paths = True  # off only inside `cpu_fast_paths(False)`


@contextlib.contextmanager
def cpu_fast_paths(enabled: bool) -> Iterator[None]:
    """Within the block, evitvid's CPU fast paths (these kernels, and `layers.Conv3d`'s direct
    oneDNN call for 3D convolutions) are taken (`enabled`, the default everywhere) or PyTorch's
    own kernels only: how the bench measures what the fast paths bring, on the same model in
    the same process. Not thread-safe (one module-level switch)."""
    global _fast_paths
    previous, _fast_paths = _fast_paths, bool(enabled)
    try:
        yield
    finally:
        _fast_paths = previous


def fast_paths_enabled() -> bool:
    return _fast_paths


def _cpu_signature() -> str:
    """8 hex digits naming this CPU's instruction set (its /proc/cpuinfo flags, else the machine type)."""
    import hashlib
    import platform
    flags = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            flags += next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return hashlib.sha256(flags.encode()).hexdigest()[:8]


def _cpp_extension() -> types.ModuleType:
    """`torch.utils.cpp_extension`, imported without the warning of its CUDA probe.

    Importing it looks for a CUDA toolkit and, when it finds one (`nvcc` on the PATH) on a
    machine without a CUDA runtime, logs "No CUDA runtime is found" at WARNING on stderr: on
    such a CPU machine every training run, bench and notebook that loads these kernels printed
    it. They are C++ for the CPU and never use the toolkit; torch's other warnings from the
    module (those of `load`) are left as they are.
    """
    import importlib
    probe = logging.getLogger("torch.utils.cpp_extension")
    level = probe.level
    probe.setLevel(logging.ERROR)
    try:
        return importlib.import_module("torch.utils.cpp_extension")  # probes on the first import only
    finally:
        probe.setLevel(level)


def _staged_source(cpp_extension: types.ModuleType) -> tuple[str, Path]:
    """(extension name, the source to compile): the name holds this CPU's signature and a digest
    of the source and flags; the source is a copy written once under the build root, named by
    that digest, so that every checkout with this source compiles the same file."""
    import hashlib
    from ..atomic import write_bytes_atomic
    code = SOURCE.read_bytes()
    digest = hashlib.sha256(code + "\0".join(FLAGS).encode()).hexdigest()[:8]
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root()  # as torch's own
    staged = Path(root) / "evitvid_sources" / f"cpu_kernels_{digest}.cpp"
    if not staged.is_file() or staged.read_bytes() != code:  # left alone otherwise: its age keeps ninja's build
        staged.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(staged, code)
    return f"evitvid_cpu_kernels_{_cpu_signature()}_{digest}", staged


def _build() -> types.ModuleType:
    import sysconfig
    cpp_extension = _cpp_extension()
    scripts = sysconfig.get_path("scripts")  # where pip put ninja (pinned), also when the venv is not activated
    if scripts and scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([scripts, os.environ.get("PATH", "")])
    _log.info("loading evitvid's C++ CPU kernels (compiled on first use on a machine, about 30 s)")
    name, source = _staged_source(cpp_extension)
    module = cpp_extension.load(name=name, sources=[str(source)], extra_cflags=FLAGS, extra_ldflags=["-fopenmp"],
                                verbose=False)
    if module.SLICES != SLICES:
        raise RuntimeError(f"cpu_kernels.cpp sums {module.SLICES} slices, kernels.py expects {SLICES}")
    return module


def available() -> bool:
    """Whether the kernels can run here (built or loaded from the cache, not switched off)."""
    global _kernels, _error
    if _kernels is None and _error is None:
        if os.environ.get("EVITVID_CPU_KERNELS", "1") == "0":
            _error = "EVITVID_CPU_KERNELS=0"
        else:
            try:
                _kernels = _build()
            except Exception as exc:  # no compiler, or a broken toolchain: PyTorch's kernels, said once
                _error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[-1][:300]}"
        if _error:
            _log.warning("evitvid's C++ CPU kernels are not used (%s); training runs PyTorch's kernels only", _error)
    return _kernels is not None


def get() -> types.ModuleType:
    if not available():
        raise RuntimeError(f"evitvid's C++ CPU kernels are not available: {_error}")
    return _kernels


def rows_view(t: torch.Tensor) -> Optional[torch.Tensor]:
    """A channels-last CPU tensor (N x C x [T x] H x W) as the contiguous N x [T x] H x W x C
    tensor sharing its memory, else None."""
    if t.device.type != "cpu" or t.ndim not in (4, 5):
        return None
    fmt = torch.channels_last if t.ndim == 4 else torch.channels_last_3d
    if not t.is_contiguous(memory_format=fmt):
        return None
    return t.permute(0, *range(2, t.ndim), 1)


def channels_last_rows(t: torch.Tensor) -> Optional[torch.Tensor]:
    """`rows_view` flattened to rows x channels (a view), else None."""
    v = rows_view(t)
    return None if v is None else v.reshape(-1, t.shape[1])


def rows_of(t: torch.Tensor) -> torch.Tensor:
    """A 4D or 5D CPU tensor in any layout as rows x channels: `channels_last_rows` when it is
    channels-last, else that of a channels-last copy (a gradient that arrives contiguous, or as
    a channel slice of a wider one)."""
    rows = channels_last_rows(t)
    if rows is None:
        fmt = torch.channels_last if t.ndim == 4 else torch.channels_last_3d
        rows = channels_last_rows(t.contiguous(memory_format=fmt))
    return rows
