"""Where and how a model runs: device, precision, memory layout, seeding and `torch.compile`.

Shared by training (`evitvid.engine`), evaluation, the study and the bench, so that each
of them takes the same decisions the same way:

- `resolve_device`: CUDA when present (the process's own GPU under torchrun), else the CPU.
- `autocast_dtype`: the mixed-precision dtype a precision name means on a device.
- `set_memory_format`: channels-last (NHWC/NDHWC) or contiguous convolutions; "auto" is
  channels-last on CPU, where oneDNN's depthwise and pointwise convolutions run faster.
- `compile_for_inference`: `torch.compile` checked against eager, eager with the reason
  when compiling fails.
- `seed_everything`: Python's, NumPy's and torch's global generators.
- `set_threads`: the threads of torch's kernels (evitvid's C++ kernels run on the same pool).
- `environment`: what a run records about where it ran (CPU, threads, library versions).
"""
from __future__ import annotations

import logging
import os
import platform
import random
import warnings
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from .models.layers import set_conv_layout

__all__ = ["PRECISIONS", "MEMORY_FORMATS", "resolve_device", "autocast_dtype", "set_memory_format",
           "compile_for_inference", "seed_everything", "set_threads", "environment"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def resolve_device(name: str = "auto") -> torch.device:
    """`"auto"`: this process's GPU under torchrun, any GPU otherwise, else the CPU; or `name` itself."""
    if name == "auto":
        if dist.is_available() and dist.is_initialized() and torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of `precision` on `device`, or None for fp32.

    "auto" is bf16 on a GPU that supports it, else fp16 on CUDA, and fp32 on the CPU.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def set_memory_format(model: nn.Module, memory_format: str, device: torch.device) -> nn.Module:
    """Lay out a model's activations channels-last or contiguous.

    "auto" is channels-last on CPU, where oneDNN's depthwise and pointwise convolutions run
    faster end to end (`python -m evitvid bench --only channels_last`), and leaves the model
    as built elsewhere (not measured on CUDA here); it applies to evitvid's models only.
    An explicit "channels_last" or "contiguous" applies to any model: evitvid's through
    `set_channels_last` (inputs converted on entry), others' convolution weights through
    `set_conv_layout`.
    """
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}")
    own = hasattr(model, "set_channels_last")
    if memory_format == "auto":
        return model.set_channels_last(True) if own and device.type == "cpu" else model
    channels_last = memory_format == "channels_last"
    return model.set_channels_last(channels_last) if own else set_conv_layout(model, channels_last)


def compile_for_inference(model: nn.Module, example: torch.Tensor, *, atol: float = 1e-3) -> tuple[nn.Module, str]:
    """`torch.compile(model)` checked on `example` against eager; on any failure the eager model.

    Returns (model to call, status): "compiled", or "eager: <reason>" with a warning when
    compiling fails (inductor needs a C++ compiler on CPU) or the outputs differ by more
    than `atol`. Compiling is paid here, on the first call; other input shapes compile
    again on their first call. Compile time and speed-up: `python -m evitvid bench --only
    compile --compile`. Training is not compiled: on CPU the compiled training step was
    slower than the eager one with the fast depthwise backward when this was written.
    """
    def heads(out) -> list[torch.Tensor]:
        return [out] if isinstance(out, torch.Tensor) else list(out)

    # inductor's C++ toolchain check warns that a CPU-only machine has no CUDA runtime: noise here
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        compiled = torch.compile(model)
        with torch.no_grad():
            got, want = heads(compiled(example)), heads(model(example))
        diff = max((a.float() - b.float()).abs().max().item() for a, b in zip(got, want))
        if diff > atol:
            raise RuntimeError(f"compiled outputs differ from eager by {diff:.2e} (> {atol:g})")
        return compiled, "compiled"
    except Exception as exc:  # a fallback, by design: compiling is an optimisation, never a requirement
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        warnings.warn(f"torch.compile failed, running eager: {reason}", RuntimeWarning, stacklevel=2)
        return model, f"eager: {reason}"
    finally:
        quiet.setLevel(level)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(threads: Optional[int]) -> int:
    """Run torch's kernels (and evitvid's C++ ones, `evitvid.models.kernels`, on the same
    pool) on `threads` threads; None leaves them. Returns the count in force."""
    if threads:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def lesser_instruction_set(capability: Optional[str] = None) -> str:
    """The oneDNN instruction set (a `ONEDNN_MAX_CPU_ISA` value) one step below the best this CPU
    runs (`capability`: PyTorch's `torch.backends.cpu.get_cpu_capability()`, e.g. "AVX512",
    "AVX2"): what a run limited to it computes stands in for another machine's rounding.

    Limiting oneDNN to the CPU's own best (AVX2 on an AVX2 machine) changes nothing, to the
    last bit; one step below changes the kernels and the model's bytes (AVX2 -> AVX: no fused
    multiply-add; AVX-512 -> AVX2: other blockings, though a lone 3x3 convolution can still sum
    in the same order). On CPUs oneDNN does not limit this way (not x86) the result may still be
    the same bytes, so a caller should check that the two runs differ before reading their
    difference as a spread (`study.same_computation`).
    """
    cap = (capability or torch.backends.cpu.get_cpu_capability()).upper()
    if cap.startswith("AVX512"):
        return "AVX2"
    if cap == "AVX2":
        return "AVX"
    return "SSE41"


def environment() -> dict:
    """Where this process runs: CPU model, cores, threads, the best instruction set PyTorch
    found and the one oneDNN may use, device, Python and the versions of the libraries that
    change a result."""
    from importlib import metadata

    versions = {}
    for name in ("evitvid", "torch", "torchvision", "numpy", "timm", "av", "decord", "scipy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"cpu": _cpu_model(), "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
            "device": str(resolve_device()),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "python": platform.python_version(), "platform": platform.platform(), "versions": versions}
