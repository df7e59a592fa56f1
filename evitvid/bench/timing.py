"""Timing calls, and how quiet and how fast the machine is.

Every figure is measured beside its alternative in the same process: warm-up calls first,
then the median of repeats; alternatives run round-robin (`compare`) so that drift in the
machine's load affects all alike, and a ratio is a ratio of medians.

Timings are only as good as the machine is quiet: with 2 cores and 2 threads, another busy
process makes OpenMP's threads wait on each other and latencies jump by 10x and more. The
share of the CPUs other processes used in the second before the run (`cpu_busy_fraction`,
from /proc/stat; the load average, also recorded, still counts processes that ended a minute
ago) is recorded, and the table warns when it was high. Achieved compute rates are set beside
this machine's fp32 matmul rate (`matmul_peak_gflops`).
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable, Optional, Sequence

import torch

BUSY_WARNING = 0.25  # share of the CPUs busy with other processes at the start that makes timings unreliable


def time_call(fn: Callable[[], Any], *, warmup: int = 1, repeats: int = 5, budget_s: float = math.inf) -> list[float]:
    """Seconds per call of `fn` after `warmup` calls; stops early once `budget_s` is spent
    (keeping at least min(3, repeats) samples)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s and len(times) >= min(3, repeats):
            break
    return times


def compare(fns: dict[str, Callable[[], Any]], *, warmup: int = 1, repeats: int = 5,
            budget_s: float = math.inf) -> dict[str, list[float]]:
    """Seconds per call of each function, run round-robin so that drift in the machine's load
    affects all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    for i in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s and i + 1 >= min(3, repeats):
            break
    return times


def ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Ratio of the medians of two lists of timings (> 1: the numerator is slower)."""
    return statistics.median(numerator) / statistics.median(denominator)


def median_ms(times: Sequence[float]) -> float:
    """The median of timings in seconds, in milliseconds."""
    return statistics.median(times) * 1e3


def cpu_busy_fraction(seconds: float = 1.0) -> Optional[float]:
    """The share of all CPUs' time spent busy over the next `seconds` (Linux's /proc/stat),
    while this process sleeps: what other processes use. None where /proc is missing."""
    def sample() -> Optional[tuple[int, int]]:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    first = sample()
    time.sleep(seconds)
    second = sample()
    if first is None or second is None or second[0] == first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return 1 - idle / total


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matmul rate (GFLOP/s): the median of `repeats` n x n x n `torch.mm`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = time_call(lambda: torch.mm(a, b), warmup=1, repeats=repeats)
    return 2 * n ** 3 / statistics.median(times) / 1e9
