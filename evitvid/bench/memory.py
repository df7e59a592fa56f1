"""Peak memory of one forward pass or training step, in a fresh process per row.

The child builds the model, input and optimizer and records its RSS (`rss_base_mb`), then
the peak RSS of one forward pass or training step (`rss_peak_mb`, Linux's VmHWM, reset just
before the pass through /proc/self/clear_refs); `mem_mb` is the difference, the pass's own
high-water mark (activations, workspaces). tracemalloc does not see torch's allocations, and
`getrusage`'s ru_maxrss survives fork and exec (a child reports its parent's peak), so it is
only the fallback where /proc is missing.
"""
from __future__ import annotations

import subprocess
import sys
from typing import Optional, Sequence

import torch

from .isolation import FreshProcessError, call_in_fresh_process
from .models import _loss, build_model, make_input

MB = 1024 ** 2
METHOD = ("a fresh subprocess per row: peak RSS (VmHWM, reset by /proc/self/clear_refs) during one forward pass "
          "or training step, minus RSS before it (model, input, optimizer built)")


def _proc_status_mb() -> Optional[dict[str, float]]:
    """VmRSS and VmHWM (peak RSS) of this process in MB, from /proc (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            return {k: int(v.split()[0]) / 1024 for k, v in (line.split(":", 1) for line in f)
                    if k in ("VmRSS", "VmHWM")}
    except OSError:
        return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux's /proc/self/clear_refs, value 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _memory_child(key: str, shape: list[int], batch: int, threads: int, mode: str, layout: str) -> dict:
    """The measurement, run in the fresh process."""
    import gc
    import resource

    torch.set_num_threads(threads)
    model = build_model(key, layout)
    x = make_input(batch, shape, layout)
    if mode == "train":
        model.train()
        opt = torch.optim.AdamW(model.parameters())
    gc.collect()
    # ru_maxrss is not enough on Linux: it is kept across fork and exec, so a child reports its
    # parent's peak. VmHWM belongs to the process's own address space and can be reset.
    status = _proc_status_mb() if _reset_peak_rss() else None
    if status is None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        base = rss / MB if sys.platform == "darwin" else rss / 1024
        method = "ru_maxrss"
    else:
        base, method = status["VmRSS"], "VmHWM after clear_refs"
    if mode == "train":
        _loss(model(x)).backward()
        opt.step()
    else:
        with torch.inference_mode():
            model(x)
    if method == "ru_maxrss":
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = rss / MB if sys.platform == "darwin" else rss / 1024
    else:
        peak = _proc_status_mb()["VmHWM"]
    return {"rss_base_mb": base, "rss_peak_mb": peak, "mem_mb": peak - base, "mem_method": method}


def peak_memory(key: str, shape: Sequence[int], batch: int, *, threads: int, mode: str = "inference",
                layout: str = "channels_last", timeout: float = 900) -> dict:
    """Max RSS of one forward pass (`mode="inference"`) or training step (`"train"`) in a fresh
    process; {"rss_base_mb", "rss_peak_mb", "mem_mb", "mem_method"} or {"mem_error": reason}."""
    try:
        return call_in_fresh_process(_memory_child, key, list(shape), batch, threads, mode, layout, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mem_error": f"timed out after {timeout:.0f} s"}
    except FreshProcessError as exc:
        return {"mem_error": str(exc)}
