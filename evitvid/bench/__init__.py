"""Model performance on this machine: `python -m evitvid bench [--preset light|full]`.

Measures what a user choosing a video model would compare, each number against an
alternative measured in the same process (warm-up first, medians of repeats, the thread
count recorded): inference latency, throughput, GMACs and achieved GFLOP/s of evitvid's,
timm's and torchvision's video models; evitvid's 2D models against timm's; latency and memory
against frames; linear against softmax attention; training steps; one depthwise Conv3d;
channels-last against contiguous; `torch.compile` against eager; onnxruntime against PyTorch;
PyTorch eager, onnxruntime and OpenVINO (fp32, bf16) side by side (`evitvid.inference`).
Peak memory is measured in a fresh process per row, and rows whose activations are large run
in a fresh process of their own, so that no row's figures depend on the rows before it.

Modules, by job:

- `config`: `BenchConfig`, the presets (smoke, light, full) and `bench_config`, a preset with
  the command's options; which rows run in a fresh process (`isolate`) and why;
- `sections`: every section declared once (`Section`: its config fields, rows and columns),
  `SECTIONS`, `only_sections`;
- `models`: the models and inputs from their keys, in a memory layout, and their GMACs;
- `timing`: timing calls and comparing them, the machine's matmul peak and how busy it is;
- `memory`: peak memory of one forward pass or training step;
- `isolation`: one call in a fresh Python process (memory, and large rows);
- `report`: the terminal tables, the book's tables (`readable_table`, from `section_table`) and figures (`headline`,
  `backend_figures`).

glibc's malloc thresholds are raised (`evitvid.allocator.tune_malloc`) where the bench starts
and in each fresh process, unless `EVITVID_TUNE_MALLOC=0`; the results record which
(`malloc`, and `malloc_tuned` in the backends rows).

Results: a table on stdout and `runs/bench/<time>/results.json` (or `--out DIR`), written
atomically by the command (`evitvid.commands.bench`).
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from typing import Any, Callable

import torch

from ..allocator import tune_malloc
from .config import (ISOLATE, LARGE_ROW_BYTES, LAYOUTS, PAPER_MS_PER_FRAME, PAPER_SHAPE, PRESETS,
                     TORCHVISION_INPUTS, BenchConfig, bench_config)
from .isolation import FreshProcessError, call_in_fresh_process
from .memory import METHOD as MEMORY_METHOD
from .memory import peak_memory
from .models import PerFrame, apply_layout, build_model, make_input, model_gmacs
from .report import (backend_figures, book_table, format_results, header, headline, latency_by_frames,
                     readable_table, section_table)
from .sections import SECTIONS, Column, Section, attention_scaling, get_section, only_sections, softmax_bytes
from .timing import compare, cpu_busy_fraction, matmul_peak_gflops, ratio, time_call

__all__ = [
    "PAPER_SHAPE", "PAPER_MS_PER_FRAME", "TORCHVISION_INPUTS", "LAYOUTS", "ISOLATE",
    "LARGE_ROW_BYTES", "PRESETS",
    "BenchConfig", "bench_config", "PerFrame", "apply_layout", "make_input", "build_model", "model_gmacs",
    "time_call", "compare", "ratio", "cpu_busy_fraction", "matmul_peak_gflops", "peak_memory",
    "call_in_fresh_process", "FreshProcessError", "softmax_bytes", "attention_scaling", "Column", "Section",
    "SECTIONS", "get_section", "only_sections", "benchmark", "header", "format_results", "section_table",
    "readable_table", "book_table", "latency_by_frames", "headline",
    "backend_figures", "tune_malloc",
]


def benchmark(cfg: BenchConfig, *, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run every section of `cfg` (large rows in fresh processes, as `cfg.isolate` says); returns
    the results (JSON-ready)."""
    malloc = tune_malloc()  # before the first large tensor: the heap it shapes is this run's
    previous = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        start = time.perf_counter()
        torch.manual_seed(0)
        peak = matmul_peak_gflops(cfg.matmul_n)
        log(f"matmul peak {peak:.1f} GFLOP/s")
        results: dict[str, Any] = {
            "preset": cfg.preset,
            "threads": cfg.threads,
            "config": json.loads(json.dumps(asdict(cfg))),  # tuples as lists, as read back
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
            "memory_method": MEMORY_METHOD,
            "malloc": malloc,
            "isolation_method": ISOLATE[cfg.isolate],
            "load_average_start": list(os.getloadavg()),
            "cpu_busy_start": cpu_busy_fraction(),
            "matmul_peak_gflops": peak,
            "matmul_n": cfg.matmul_n,
        }
        for section in SECTIONS.values():
            results[section.key] = section.rows(cfg, peak, log)
        results["seconds"] = time.perf_counter() - start
        results["load_average_end"] = list(os.getloadavg())
        return results
    finally:
        torch.set_num_threads(previous)
