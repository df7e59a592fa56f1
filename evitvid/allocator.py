"""glibc's malloc thresholds for large tensors: `tune_malloc`.

glibc serves an allocation at or above its mmap threshold (dynamic, at most 32 MiB on
64-bit) with a fresh `mmap` and gives it back with `munmap` when freed, so every forward pass
page-faults its large activations in again (at 16 x 224 x 224 the 3D B1's largest ones are
tens of MB); and it gives the top of the heap back to the kernel once more than the trim
threshold is free there. `tune_malloc` raises both thresholds with `mallopt` (through
ctypes), so that freed activations stay in the heap and the next pass reuses them. The cost:
the process keeps its peak heap until it exits.

It pays at the paper's clip size (3 x 16 x 224 x 224), whose activations are above glibc's
default mmap threshold; at the study's small clips they are below it and nothing changes.
`python -m evitvid bench --preset full --only backends`, run with and without
`EVITVID_TUNE_MALLOC=0`, measures it; OpenVINO manages its own memory.

Linux with glibc only; a no-op elsewhere (macOS, musl, Windows), and a no-op when the
environment already sets glibc's malloc (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`,
or a `glibc.malloc` tunable in `GLIBC_TUNABLES`) or opts out with `EVITVID_TUNE_MALLOC=0`
(how the bench measures without it). Idempotent: the first call decides, later ones return
its status. Called where the command line starts (`evitvid.cli.main`), where the bench
starts (`evitvid.bench.benchmark`) and in the bench's fresh processes
(`evitvid.bench.isolation`); a notebook or the study calls `evitvid.allocator.tune_malloc()`.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
from typing import Any, Optional

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "OPT_OUT", "tune_malloc", "malloc_status", "release_free_memory"]

# mallopt's parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# mallopt takes an int: 1 GiB for mmap (a larger allocation is still a fresh mapping, as it
# is only in runs far beyond the paper's shape) and the largest int for trimming.
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1
OPT_OUT = "EVITVID_TUNE_MALLOC"  # "0": leave glibc's defaults
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_status: Optional[dict[str, Any]] = None


def _skip_reason() -> Optional[str]:
    if os.environ.get(OPT_OUT, "").strip().lower() in ("0", "false", "no", "off"):
        return f"{OPT_OUT}={os.environ[OPT_OUT]}"
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return f"not glibc ({sys.platform}, {platform.libc_ver()[0] or 'unknown libc'})"
    set_by_env = [v for v in _ENV if v in os.environ]
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        set_by_env.append("GLIBC_TUNABLES")
    if set_by_env:
        return f"left to the environment ({', '.join(set_by_env)})"
    return None


def tune_malloc() -> dict[str, Any]:
    """Raise glibc's mmap and trim thresholds (once per process); returns what was done:
    {"applied": bool, "mmap_threshold", "trim_threshold" (when applied), "reason" (when not)}."""
    global _status
    if _status is not None:
        return dict(_status)
    reason = _skip_reason()
    if reason is None:
        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = (libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(MMAP_THRESHOLD)) == 1
                  and libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(TRIM_THRESHOLD)) == 1)
            reason = None if ok else "mallopt refused the values"
        except (OSError, AttributeError) as exc:
            reason = f"mallopt unavailable: {exc}"
    _status = ({"applied": True, "mmap_threshold": MMAP_THRESHOLD, "trim_threshold": TRIM_THRESHOLD}
               if reason is None else {"applied": False, "reason": reason})
    return dict(_status)


def malloc_status() -> dict[str, Any]:
    """What `tune_malloc` did in this process, or {"applied": False, "reason": "not called"}."""
    return dict(_status) if _status is not None else {"applied": False, "reason": "not called"}


def release_free_memory() -> bool:
    """Give the pages of freed heap memory back to the kernel (glibc's `malloc_trim(0)`, every
    arena), so that memory allocated next is paged in afresh and shows in the RSS: what a
    measurement of a step's peak RSS needs (`evitvid.engine.memory`), since the tuned heap
    keeps what was freed. Returns whether anything was given back; False where not glibc."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
