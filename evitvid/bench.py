"""Model performance on this machine: `python -m evitvid bench [--preset light|full]`.

Measures what a user choosing a video model would compare, each number against an
alternative measured in the same process (warm-up first, medians of repeats, the thread
count recorded):

- inference latency (median ms) and throughput (clips/s) at the paper's shape
  (3 x 16 x 224 x 224) and the embedded study's (3 x 8 x 64 x 64) for evitvid's 3D and
  frame-averaged B1/L1, timm's own 2D EfficientViT run on every frame (T folded into the
  batch, the reference doing the frame-averaged model's work) and torchvision's video
  models at their documented inputs (weights=None); with params, GMACs
  (`evitvid.models.flops.count_gmacs`, meta device where the model allows it, real
  tensors otherwise), achieved GFLOP/s = 2 x GMACs / latency beside this machine's fp32
  matmul peak (a large `torch.mm`, same process), and peak memory;
- evitvid's 2D B1/L1 against timm's on the same input (interleaved runs: the ratio), in the
  bench's layout and in timm's default (contiguous);
- latency and memory against frames (1 ... 32) for 3D and frame-averaged B1 (the
  paper's Fig. 3), and LiteMLA's ReLU linear attention against softmax attention
  (`F.scaled_dot_product_attention`) over T x H x W tokens with the same heads and head
  dim, until softmax's N x N matrix would exceed a memory budget (then it is skipped,
  and the row says so);
- training time per clip (forward, backward, AdamW step) for 3D and frame-averaged B1;
- one depthwise Conv3d's forward and backward through PyTorch's kernels against evitvid's
  `Conv3d` (its input gradient computed by a forward convolution);
- channels-last (NDHWC/NHWC) against contiguous convolutions (inference and training);
  every other section runs all models in `--layout` (default channels-last, the layout
  evitvid's trainer and evaluation use on CPU);
- `torch.compile` against eager for the 3D B1, inference, through
  `runtime.compile_for_inference` (`compile_s` is compiling, the first call and the check
  against eager; a failure is recorded with its reason);
- onnxruntime against PyTorch for the 3D B1 at the study shape.

Peak memory is measured in a fresh subprocess per row: the RSS after building the model,
input and optimizer (`rss_base_mb`), then the peak RSS of one forward pass or training
step (`rss_peak_mb`, Linux's VmHWM, reset just before the pass through
/proc/self/clear_refs); `mem_mb` is the difference, the pass's own high-water mark
(activations, workspaces). tracemalloc does not see torch's allocations, and
`getrusage`'s ru_maxrss survives fork and exec (a child reports its parent's peak), so it
is only the fallback where /proc is missing.

Timings are only as good as the machine is quiet: with 2 cores and 2 threads, another busy
process makes OpenMP's threads wait on each other and latencies jump by 10x and more. The
share of the CPUs other processes used in the second before the run (from /proc/stat;
the load average, also recorded, still counts processes that ended a minute ago) is
recorded, and the table warns when it was high.

Presets: `smoke` (B0 at tiny shapes, one repeat: every section runs, in seconds), `light`
(the study shape, few repeats, a subset of the models; the book's Performance chapter;
2 minutes on 2 cores with `--compile`) and `full` (everything; 26 minutes on 2 cores).
Results: a table on stdout and `runs/bench/<time>/results.json` (or `--out DIR`), written
atomically.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PAPER_SHAPE", "STUDY_SHAPE", "TORCHVISION_INPUTS", "LAYOUTS", "PRESETS", "BenchConfig", "preset", "PerFrame", "apply_layout",
    "make_input", "build_model", "configured", "section_table", "headline", "header",
    "model_gmacs", "time_call", "compare", "ratio", "cpu_busy_fraction", "matmul_peak_gflops", "peak_memory",
    "softmax_bytes",
    "attention_scaling", "SECTIONS", "only_sections", "benchmark", "format_results",
]

PAPER_SHAPE: tuple[int, ...] = (3, 16, 224, 224)
STUDY_SHAPE: tuple[int, ...] = (3, 8, 64, 64)
# torchvision's documented inputs (weights meta and docs): R3D/R(2+1)D 16 x 112 x 112 crops;
# S3D 224 crops, at least 14 frames (evaluated on 128; 16 here to match the paper's clips);
# MViT-v2-S fixed at 16 x 224 x 224; Swin3D-T 224 crops of 32 frames.
TORCHVISION_INPUTS: dict[str, tuple[int, ...]] = {
    "r3d_18": (3, 16, 112, 112),
    "r2plus1d_18": (3, 16, 112, 112),
    "s3d": (3, 16, 224, 224),
    "mvit_v2_s": (3, 16, 224, 224),
    "swin3d_t": (3, 32, 224, 224),
}
BUSY_WARNING = 0.25  # share of the CPUs busy with other processes at the start that makes timings unreliable
GB = 1024 ** 3
MB = 1024 ** 2


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchConfig:
    """Everything a run measures. `preset()` gives the standard ones (smoke, light, full)."""

    preset: str = "light"
    threads: int = 2
    warmup: int = 1
    repeats: int = 5
    budget_s: float = 10.0  # stop repeating a call after this long (at least 3 samples if repeats >= 3)
    # (model key, input shape, batch sizes); keys are "evitvid:NAME", "timm-frames:NAME", "torchvision:NAME"
    inference: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()
    memory: bool = True
    memory_batches: tuple[int, ...] = (1,)
    timm_pairs: tuple[str, ...] = ("b1", "l1")
    timm_shapes: tuple[tuple[int, ...], ...] = ((8, 3, 64, 64),)  # full 2D input shapes, batch included
    frames: tuple[int, ...] = (1, 2, 4, 8, 16)
    frames_size: int = 64
    frames_models: tuple[str, ...] = ("efficientvit_b1_3d", "efficientvit_b1_frameavg")
    attn_frames: tuple[int, ...] = (1, 4, 16, 64)
    attn_tokens_per_frame: tuple[int, int] = (14, 14)  # B1 stage 3 at 224 x 224
    attn_heads: int = 16  # B1 stage 3: 128 channels / head dim 16 = 8 heads, x 2 for the 5x5 multi-scale branch
    attn_dim: int = 16
    attn_budget_gb: float = 8.0
    train: tuple[tuple[str, tuple[int, ...], int], ...] = ()  # (model, shape, batch)
    channels_last: tuple[tuple[str, tuple[int, ...], int], ...] = ()  # (model, shape, batch)
    compile: tuple[tuple[str, tuple[int, ...], int], ...] = ()  # (model, shape, batch)
    onnx: tuple[tuple[str, tuple[int, ...], int], ...] = ()  # (model, shape, batch)
    # 3D depthwise convolutions (channels, spatial kernel, frames, height = width, batch): forward and
    # backward through PyTorch's kernels against evitvid's Conv3d (input gradient by a forward conv)
    depthwise: tuple[tuple[int, int, int, int, int], ...] = ()
    matmul_n: int = 2048
    # every model's convolutions and input, in every section: "channels_last" (what evitvid's
    # trainer and evaluation use on CPU) or "contiguous"; the channels-last section compares both
    layout: str = "channels_last"


PRESETS = ("smoke", "light", "full")


def preset(name: str, threads: Optional[int] = None) -> BenchConfig:
    """The `smoke` (B0 at tiny shapes, one repeat: checks that every section runs, in seconds),
    `light` or `full` configuration."""
    threads = threads or torch.get_num_threads()
    b1_3d, b1_fa = "evitvid:efficientvit_b1_3d", "evitvid:efficientvit_b1_frameavg"
    if name == "smoke":
        b0_3d, b0_fa, tiny = "evitvid:efficientvit_b0_3d", "evitvid:efficientvit_b0_frameavg", (3, 2, 32, 32)
        return BenchConfig(
            preset="smoke", threads=threads, warmup=0, repeats=1, budget_s=1.0,
            inference=((b0_3d, tiny, (1,)), (b0_fa, tiny, (1,)), ("timm-frames:efficientvit_b0", tiny, (1,))),
            memory=False, timm_pairs=("b0",), timm_shapes=((1, 3, 32, 32),), frames=(1, 2), frames_size=32,
            frames_models=("efficientvit_b0_3d", "efficientvit_b0_frameavg"), attn_frames=(1, 2),
            attn_tokens_per_frame=(4, 4), attn_heads=2, attn_dim=4, train=((b0_3d, tiny, 1),),
            channels_last=((b0_3d, tiny, 1),), compile=(), onnx=((b0_3d, tiny, 1),),
            depthwise=((8, 3, 2, 8, 1),), matmul_n=256)
    if name == "light":
        s = STUDY_SHAPE
        return BenchConfig(
            preset="light", threads=threads, warmup=1, repeats=5, budget_s=4.0,
            inference=(
                (b1_3d, s, (1,)), (b1_fa, s, (1,)), ("timm-frames:efficientvit_b1", s, (1,)),
                ("evitvid:efficientvit_l1_3d", s, (1,)), ("evitvid:efficientvit_l1_frameavg", s, (1,)),
                ("timm-frames:efficientvit_l1", s, (1,)),
            ),
            memory=True, memory_batches=(1,),
            timm_pairs=("b1", "l1"), timm_shapes=((8, 3, 64, 64),),
            frames=(1, 2, 4, 8, 16, 32), frames_size=64,
            attn_frames=(1, 4, 16, 64), attn_budget_gb=8.0,
            train=((b1_3d, s, 1), (b1_fa, s, 1)),
            channels_last=((b1_3d, s, 8), (b1_fa, s, 8)),  # the study's training batch
            compile=(),
            onnx=((b1_3d, s, 1),),
            depthwise=((128, 3, 8, 16, 8), (384, 5, 8, 4, 8)),  # B1 at the study's shape: stage 1, stage 3's aggregation
        )
    if name == "full":
        inference = []
        for shape in (PAPER_SHAPE, STUDY_SHAPE):
            for size in ("b1", "l1"):
                for key in (f"evitvid:efficientvit_{size}_3d", f"evitvid:efficientvit_{size}_frameavg",
                            f"timm-frames:efficientvit_{size}"):
                    inference.append((key, shape, (1, 8)))
        inference += [(f"torchvision:{n}", shape, (1, 8)) for n, shape in TORCHVISION_INPUTS.items()]
        return BenchConfig(
            preset="full", threads=threads, warmup=1, repeats=10, budget_s=20.0,
            inference=tuple(inference), memory=True, memory_batches=(1, 8),
            timm_pairs=("b1", "l1"), timm_shapes=((1, 3, 224, 224), (8, 3, 224, 224), (8, 3, 64, 64)),
            frames=(1, 2, 4, 8, 16, 32), frames_size=224,
            attn_frames=(1, 2, 4, 8, 16, 32, 64, 128), attn_budget_gb=8.0,
            train=((b1_3d, STUDY_SHAPE, 8), (b1_fa, STUDY_SHAPE, 8), (b1_3d, PAPER_SHAPE, 1),
                   (b1_fa, PAPER_SHAPE, 1)),
            channels_last=((b1_3d, STUDY_SHAPE, 1), (b1_3d, STUDY_SHAPE, 8), (b1_3d, PAPER_SHAPE, 1),
                           (b1_fa, STUDY_SHAPE, 8), (b1_fa, PAPER_SHAPE, 1), ("timm-frames:efficientvit_b1", PAPER_SHAPE, 1),
                           ("torchvision:r3d_18", TORCHVISION_INPUTS["r3d_18"], 1)),
            compile=((b1_3d, STUDY_SHAPE, 1), (b1_3d, PAPER_SHAPE, 1)),
            onnx=((b1_3d, STUDY_SHAPE, 1), (b1_3d, STUDY_SHAPE, 8)),
            depthwise=((128, 3, 8, 16, 8), (384, 5, 8, 4, 8), (128, 3, 16, 56, 1), (384, 5, 16, 14, 1)),
        )
    raise ValueError(f"preset must be one of {PRESETS}, got {name!r}")


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------

class PerFrame(nn.Module):
    """An image classifier on every frame of B x C x T x H x W clips, logits averaged over time.

    The reference for frame averaging: the same trunk work (T folded into the batch); the
    only difference is where the average is taken (logits here, features in evitvid).
    """

    def __init__(self, image_model: nn.Module):
        super().__init__()
        self.image_model = image_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        logits = self.image_model(x.transpose(1, 2).reshape(B * T, C, H, W))
        return logits.reshape(B, T, -1).mean(dim=1)


LAYOUTS = ("channels_last", "contiguous")


def apply_layout(model: nn.Module, layout: str) -> nn.Module:
    """Any model's convolutions channels-last or contiguous (`runtime.set_memory_format`)."""
    from evitvid.runtime import set_memory_format
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return set_memory_format(model, layout, torch.device("cpu"))


def make_input(batch: int, shape: Sequence[int], layout: str) -> torch.Tensor:
    """A random batch in `layout` (clips NDHWC, images NHWC when channels-last)."""
    from evitvid.models.layers import channels_last_format
    x = torch.randn(batch, *shape)
    return x.contiguous(memory_format=channels_last_format(x.ndim)) if layout == "channels_last" else x


def build_model(key: str, layout: Optional[str] = None, **kwargs: Any) -> nn.Module:
    """A model in eval mode from its key: "evitvid:NAME", "timm-frames:NAME" (timm's 2D model per
    frame), "timm:NAME" (timm's 2D model) or "torchvision:NAME" (a video model, weights=None);
    its convolutions in `layout` when given."""
    source, _, name = key.partition(":")
    if source == "evitvid":
        from evitvid.models.registry import create_model
        model = create_model(name, **kwargs)
    elif source in ("timm", "timm-frames"):
        import timm
        model = timm.create_model(name, **kwargs)
        model = PerFrame(model) if source == "timm-frames" else model
    elif source == "torchvision":
        import torchvision.models.video as tvv
        model = getattr(tvv, name)(weights=None, **kwargs)
    else:
        raise ValueError(f"model key must start with evitvid:, timm:, timm-frames: or torchvision:, got {key!r}")
    return (apply_layout(model, layout) if layout else model).eval()


def _first_tensor(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def _loss(out: Any) -> torch.Tensor:
    """A training loss on random labels for any of the models' outputs (logits or verb/noun)."""
    outs = out if isinstance(out, tuple) else (out,)
    return sum(F.cross_entropy(o, torch.randint(o.shape[-1], (o.shape[0],))) for o in outs)


def model_gmacs(key: str, input_shape: Sequence[int]) -> tuple[float, float, str]:
    """(params in M, GMACs per clip, how counted): on the meta device, else on real tensors."""
    from evitvid.models.flops import count_gmacs, count_params
    try:
        with torch.device("meta"):
            model = build_model(key)
        return count_params(model) / 1e6, count_gmacs(model, input_shape), "meta"
    except Exception:  # e.g. a model calling .item() or building tensors from data in forward
        model = build_model(key)
        return count_params(model) / 1e6, count_gmacs(model, input_shape), "real tensors"


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------

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


def _ms(times: Sequence[float]) -> float:
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


# ---------------------------------------------------------------------------------------
# Memory (one subprocess per measurement)
# ---------------------------------------------------------------------------------------

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
    process; {"rss_base_mb", "rss_peak_mb", "mem_mb"} or {"mem_error": reason}."""
    code = ("import json, sys; from evitvid.bench import _memory_child; "
            "print(json.dumps(_memory_child(*json.loads(sys.argv[1]))))")
    arg = json.dumps([key, list(shape), batch, threads, mode, layout])
    try:
        proc = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mem_error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return {"mem_error": tail[0][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------

def _shape_str(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def _inference_rows(cfg: BenchConfig, peak: float, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for key, shape, batches in cfg.inference:
        params_m, gmacs, counted = model_gmacs(key, shape)
        model = build_model(key, cfg.layout)
        for batch in batches:
            log(f"inference {key} {_shape_str(shape)} batch {batch}")
            x = make_input(batch, shape, cfg.layout)
            with torch.inference_mode():
                times = time_call(lambda: model(x), warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
            lat = statistics.median(times)
            gflops = 2 * gmacs * batch / lat
            row = {"model": key, "input": list(shape), "batch": batch, "threads": cfg.threads, "layout": cfg.layout,
                   "params_m": params_m, "gmacs": gmacs, "gmacs_counted_on": counted,
                   "latency_ms": lat * 1e3, "clips_per_s": batch / lat, "samples": len(times),
                   "gflops": gflops, "peak_fraction": gflops / peak}
            if cfg.memory and batch in cfg.memory_batches:
                row.update(peak_memory(key, shape, batch, threads=cfg.threads, layout=cfg.layout))
            rows.append(row)
        del model
    return rows


def _timm_rows(cfg: BenchConfig, log: Callable[[str], None]) -> list[dict]:
    """evitvid's 2D models against timm's with the same weights, on the same input, interleaved."""
    rows = []
    layouts = dict.fromkeys((cfg.layout, "contiguous"))  # the bench's layout, and timm's own default
    for size, layout in ((size, layout) for size in cfg.timm_pairs for layout in layouts):
        ours = build_model(f"evitvid:efficientvit_{size}", layout)
        ref = build_model(f"timm:efficientvit_{size}", layout)
        ref.load_state_dict(ours.state_dict())
        for shape in cfg.timm_shapes:
            log(f"timm ratio {size} {_shape_str(shape)} {layout}")
            x = make_input(shape[0], shape[1:], layout)
            with torch.inference_mode():
                err = (ours(x) - ref(x)).abs().max().item()
                t = compare({"evitvid": lambda: ours(x), "timm": lambda: ref(x)},
                            warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
            rows.append({"model": f"efficientvit_{size}", "input": list(shape), "threads": cfg.threads,
                         "layout": layout, "evitvid_ms": _ms(t["evitvid"]), "timm_ms": _ms(t["timm"]),
                         "ratio": ratio(t["evitvid"], t["timm"]), "max_abs_diff": err})
    return rows


def _frames_rows(cfg: BenchConfig, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for name in cfg.frames_models:
        key = f"evitvid:{name}"
        model = build_model(key, cfg.layout)
        for t in cfg.frames:
            shape = (3, t, cfg.frames_size, cfg.frames_size)
            log(f"frames {name} {_shape_str(shape)}")
            x = make_input(1, shape, cfg.layout)
            with torch.inference_mode():
                times = time_call(lambda: model(x), warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
            row = {"model": name, "frames": t, "input": list(shape), "threads": cfg.threads,
                   "latency_ms": _ms(times), "gmacs": model_gmacs(key, shape)[1]}
            if cfg.memory:
                row.update(peak_memory(key, shape, 1, threads=cfg.threads, layout=cfg.layout))
            rows.append(row)
    return rows


def softmax_bytes(batch: int, heads: int, tokens: int, itemsize: int = 4) -> int:
    """Bytes of softmax attention's N x N score matrix (B x heads x N x N, materialised by the math path)."""
    return batch * heads * tokens * tokens * itemsize


def attention_scaling(frames: Sequence[int], tokens_per_frame: tuple[int, int] = (14, 14), *, heads: int = 16,
                      dim: int = 16, budget_gb: float = 8.0, warmup: int = 1, repeats: int = 5,
                      budget_s: float = math.inf, threads: Optional[int] = None) -> list[dict]:
    """LiteMLA's ReLU linear attention (the module's own `_attn`) against softmax attention
    (`F.scaled_dot_product_attention`) on B=1 x heads x N x dim, N = T x H x W tokens.

    Softmax is skipped, with the reason in the row, where its N x N matrix would exceed
    `budget_gb`; the linear form keeps a heads x dim x (dim + 1) state whatever N is.
    """
    from evitvid.models.efficientvit import LiteMLA
    from evitvid.models.layers import ConvSpec

    lite = LiteMLA(heads * dim, heads * dim, dim=dim, spec=ConvSpec(dims=3), norm_eps=1e-5)
    rows = []
    for t in frames:
        n = t * tokens_per_frame[0] * tokens_per_frame[1]
        q, k, v = (torch.randn(1, heads, n, dim) for _ in range(3))
        fns = {"linear": lambda: lite._attn(F.relu(q), F.relu(k), v)}
        nn_bytes = softmax_bytes(1, heads, n)
        skipped = None
        if nn_bytes > budget_gb * GB:
            skipped = f"N x N matrix {nn_bytes / GB:.1f} GB > budget {budget_gb:g} GB"
        else:
            fns["softmax"] = lambda: F.scaled_dot_product_attention(q, k, v)
        with torch.inference_mode():
            times = compare(fns, warmup=warmup, repeats=repeats, budget_s=budget_s)
        row = {"frames": t, "tokens": n, "heads": heads, "dim": dim, "threads": threads or torch.get_num_threads(),
               "linear_ms": _ms(times["linear"]), "softmax_nn_gb": nn_bytes / GB,
               "linear_state_kb": heads * dim * (dim + 1) * 4 / 1024}
        if skipped:
            row.update(softmax_ms=None, softmax_over_linear=None, softmax_skipped=skipped)
        else:
            row.update(softmax_ms=_ms(times["softmax"]), softmax_over_linear=ratio(times["softmax"], times["linear"]),
                       softmax_skipped=None)
        rows.append(row)
    return rows


def _train_step_fn(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        _loss(model(x)).backward()
        opt.step()
    return step


def _case(cfg: BenchConfig, section: str, key: str, shape: Sequence[int], batch: int,
          log: Callable[[str], None]) -> tuple[nn.Module, torch.Tensor, dict[str, Any]]:
    """One row's model and input, in the bench's layout, and the fields that name the row."""
    log(f"{section} {key} {_shape_str(shape)} batch {batch}")
    row = {"model": key, "input": list(shape), "batch": batch, "threads": cfg.threads, "layout": cfg.layout}
    return build_model(key, cfg.layout), make_input(batch, shape, cfg.layout), row


def _train_rows(cfg: BenchConfig, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for key, shape, batch in cfg.train:
        model, x, row = _case(cfg, "train", key, shape, batch, log)
        times = time_call(_train_step_fn(model, x), warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
        row.update(step_ms=_ms(times), ms_per_clip=_ms(times) / batch, samples=len(times))
        if cfg.memory:
            row.update(peak_memory(key, shape, batch, threads=cfg.threads, mode="train", layout=cfg.layout))
        rows.append(row)
    return rows


def _channels_last_rows(cfg: BenchConfig, log: Callable[[str], None]) -> list[dict]:
    """Contiguous against channels-last (convolutions and input), same weights, interleaved."""
    rows = []
    for key, shape, batch in cfg.channels_last:
        log(f"channels-last {key} {_shape_str(shape)} batch {batch}")
        base = build_model(key, "contiguous")
        other = build_model(key, "channels_last")
        other.load_state_dict(base.state_dict())
        x, xc = make_input(batch, shape, "contiguous"), make_input(batch, shape, "channels_last")
        with torch.inference_mode():
            err = (_first_tensor(base(x)) - _first_tensor(other(xc))).abs().max().item()
            inf = compare({"contiguous": lambda: base(x), "channels_last": lambda: other(xc)},
                          warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
        train = compare({"contiguous": _train_step_fn(base, x), "channels_last": _train_step_fn(other, xc)},
                        warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
        rows.append({"model": key, "input": list(shape), "batch": batch, "threads": cfg.threads,
                     "infer_contiguous_ms": _ms(inf["contiguous"]), "infer_cl_ms": _ms(inf["channels_last"]),
                     "infer_cl_over_contiguous": ratio(inf["channels_last"], inf["contiguous"]),
                     "train_contiguous_ms": _ms(train["contiguous"]), "train_cl_ms": _ms(train["channels_last"]),
                     "train_cl_over_contiguous": ratio(train["channels_last"], train["contiguous"]),
                     "max_abs_diff": err})
    return rows


def _depthwise_rows(cfg: BenchConfig, log: Callable[[str], None]) -> list[dict]:
    """One depthwise Conv3d, forward and backward: PyTorch's kernels against evitvid's `Conv3d`."""
    from evitvid.models.layers import Conv3d
    rows = []
    for channels, k, frames, size, batch in cfg.depthwise:
        log(f"depthwise {channels} channels {k}x{k} {frames}x{size}x{size} batch {batch}")
        conv = Conv3d(channels, channels, (3, k, k), padding=(1, k // 2, k // 2), groups=channels, bias=False)
        apply_layout(conv, cfg.layout)
        x = make_input(batch, (channels, frames, size, size), cfg.layout).requires_grad_()
        grad = torch.randn_like(conv(x))

        def step(fast: bool) -> torch.Tensor:
            y = conv(x) if fast else F.conv3d(x, conv.weight, None, 1, conv.padding, 1, channels)
            return torch.autograd.grad(y, (x, conv.weight), grad)

        err = max((a - b).abs().max().item() for a, b in zip(step(True), step(False)))
        t = compare({"pytorch": lambda: step(False), "evitvid": lambda: step(True)},
                    warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
        rows.append({"channels": channels, "kernel": [3, k, k], "input": [batch, channels, frames, size, size],
                     "threads": cfg.threads, "layout": cfg.layout, "pytorch_ms": _ms(t["pytorch"]),
                     "evitvid_ms": _ms(t["evitvid"]), "speedup": ratio(t["pytorch"], t["evitvid"]),
                     "max_abs_diff": err})
    return rows


def _compile_rows(cfg: BenchConfig, log: Callable[[str], None]) -> list[dict]:
    """torch.compile through the library's own path (`runtime.compile_for_inference`, eager on failure)."""
    from evitvid.runtime import compile_for_inference
    rows = []
    for key, shape, batch in cfg.compile:
        model, x, row = _case(cfg, "compile", key, shape, batch, log)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a failure is a result here, kept in the row
            compiled, status = compile_for_inference(model, x)
        row["compile_s"] = time.perf_counter() - start
        row["status"] = "ok" if status == "compiled" else f"compile failed, eager: {status.partition(': ')[2]}"
        if status == "compiled":
            with torch.inference_mode():
                row["max_abs_diff"] = (_first_tensor(compiled(x)) - _first_tensor(model(x))).abs().max().item()
                t = compare({"eager": lambda: model(x), "compiled": lambda: compiled(x)},
                            warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
            row.update(eager_ms=_ms(t["eager"]), compiled_ms=_ms(t["compiled"]), speedup=ratio(t["eager"], t["compiled"]))
        rows.append(row)
    return rows


def _onnx_rows(cfg: BenchConfig, log: Callable[[str], None]) -> list[dict]:
    from evitvid.export import export_onnx, onnx_session, run_onnx
    rows = []
    for key, shape, batch in cfg.onnx:
        model, x, row = _case(cfg, "onnxruntime", key, shape, batch, log)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = export_onnx(model, Path(tmp) / "model.onnx", shape)
                session = onnx_session(path, threads=cfg.threads)
            xn = x.contiguous().numpy()
            with torch.inference_mode():
                ref = _first_tensor(model(x)).numpy()
                err = float(abs(next(iter(run_onnx(session, xn).values())) - ref).max())
                t = compare({"pytorch": lambda: model(x), "onnxruntime": lambda: run_onnx(session, xn)},
                            warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
            row.update(pytorch_ms=_ms(t["pytorch"]), onnxruntime_ms=_ms(t["onnxruntime"]),
                       ort_over_pytorch=ratio(t["onnxruntime"], t["pytorch"]), max_abs_diff=err, status="ok")
        except Exception as exc:
            row.update(status=f"onnx failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        rows.append(row)
    return rows


def benchmark(cfg: BenchConfig, *, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run every section of `cfg` in this process; returns the results (JSON-ready)."""
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
            "memory_method": "a fresh subprocess per row: peak RSS (VmHWM, reset by /proc/self/clear_refs) during "
                             "one forward pass or training step, minus RSS before it (model, input, optimizer built)",
            "load_average_start": list(os.getloadavg()),
            "cpu_busy_start": cpu_busy_fraction(),
            "matmul_peak_gflops": peak,
            "matmul_n": cfg.matmul_n,
            "inference": _inference_rows(cfg, peak, log),
            "timm_ratio": _timm_rows(cfg, log),
            "frames": _frames_rows(cfg, log),
        }
        log("attention")
        results["attention"] = attention_scaling(
            cfg.attn_frames, cfg.attn_tokens_per_frame, heads=cfg.attn_heads, dim=cfg.attn_dim,
            budget_gb=cfg.attn_budget_gb, warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s,
            threads=cfg.threads)
        results["train"] = _train_rows(cfg, log)
        results["channels_last"] = _channels_last_rows(cfg, log)
        results["depthwise"] = _depthwise_rows(cfg, log)
        results["compile"] = _compile_rows(cfg, log)
        results["onnx"] = _onnx_rows(cfg, log)
        results["seconds"] = time.perf_counter() - start
        results["load_average_end"] = list(os.getloadavg())
        return results
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------

def _f(x: Any, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return ""
    cols = [header, *rows]
    widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                        for i, (c, w) in enumerate(zip(r, widths))) + " |"
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([f"\n{title}", line(header), sep, *map(line, rows)])


def header(results: dict[str, Any]) -> str:
    """What was measured on what: preset, threads, torch, matmul peak, layout; and a warning
    line when other processes were using the CPUs at the start."""
    lines = [f"evitvid bench, preset {results['preset']}, {results['threads']} threads, "
             f"torch {results['machine']['torch']}, fp32 matmul peak {results['matmul_peak_gflops']:.1f} GFLOP/s "
             f"(n={results['matmul_n']}), layout {results['config'].get('layout', 'contiguous')}"]
    busy = results.get("cpu_busy_start")
    if busy is not None and busy >= BUSY_WARNING:
        lines.append(f"WARNING: other processes used {100 * busy:.0f}% of the CPUs at the start: "
                     "timings are unreliable")
    return "\n".join(lines)


def format_results(results: dict[str, Any]) -> str:
    """The results as Markdown tables (one per section), after the `header`."""
    thr = results["threads"]
    out = [header(results)]
    mem = lambda r: r.get("mem_error", "")[:30] if "mem_mb" not in r else f"{r['mem_mb']:.0f} ({r['rss_peak_mb']:.0f})"
    out.append(_table(
        f"Inference ({thr} threads; memory: MB above the built model, (peak RSS))",
        ["model", "input", "B", "params M", "GMACs/clip", "ms", "clips/s", "GFLOP/s", "% peak", "memory MB"],
        [[r["model"], _shape_str(r["input"]), r["batch"], _f(r["params_m"], ".2f"), _f(r["gmacs"], ".2f"),
          _f(r["latency_ms"]), _f(r["clips_per_s"], ".2f"), _f(r["gflops"]), _f(100 * r["peak_fraction"]),
          mem(r) if ("mem_mb" in r or "mem_error" in r) else "-"] for r in results["inference"]]))
    out.append(_table(
        f"evitvid 2D against timm 2D, same weights and input ({thr} threads)",
        ["model", "input", "layout", "evitvid ms", "timm ms", "evitvid / timm", "max |diff|"],
        [[r["model"], _shape_str(r["input"]), r.get("layout", "contiguous"), _f(r["evitvid_ms"]), _f(r["timm_ms"]), _f(r["ratio"], ".3f"),
          _f(r["max_abs_diff"], ".1e")] for r in results["timm_ratio"]]))
    out.append(_table(
        f"Latency and memory against frames, batch 1 ({thr} threads)",
        ["model", "input", "GMACs", "ms", "memory MB"],
        [[r["model"], _shape_str(r["input"]), _f(r["gmacs"], ".2f"), _f(r["latency_ms"]),
          mem(r) if ("mem_mb" in r or "mem_error" in r) else "-"] for r in results["frames"]]))
    out.append(_table(
        f"ReLU linear attention (LiteMLA) against softmax attention (sdpa), B=1 ({thr} threads)",
        ["frames", "tokens", "heads x dim", "linear ms", "softmax ms", "softmax / linear", "N x N GB", "note"],
        [[r["frames"], r["tokens"], f"{r['heads']}x{r['dim']}", _f(r["linear_ms"], ".2f"), _f(r["softmax_ms"], ".2f"),
          _f(r["softmax_over_linear"], ".1f"), _f(r["softmax_nn_gb"], ".2f"),
          "softmax skipped: " + r["softmax_skipped"] if r["softmax_skipped"] else ""] for r in results["attention"]]))
    out.append(_table(
        f"Training: forward + backward + AdamW step ({thr} threads)",
        ["model", "input", "B", "step ms", "ms/clip", "memory MB"],
        [[r["model"], _shape_str(r["input"]), r["batch"], _f(r["step_ms"]), _f(r["ms_per_clip"]),
          mem(r) if ("mem_mb" in r or "mem_error" in r) else "-"] for r in results["train"]]))
    out.append(_table(
        f"Channels-last (NDHWC/NHWC) against contiguous ({thr} threads; ratio < 1: channels-last faster)",
        ["model", "input", "B", "infer ms", "infer cl ms", "ratio", "train ms", "train cl ms", "ratio"],
        [[r["model"], _shape_str(r["input"]), r["batch"], _f(r["infer_contiguous_ms"]), _f(r["infer_cl_ms"]),
          _f(r["infer_cl_over_contiguous"], ".3f"), _f(r["train_contiguous_ms"]), _f(r["train_cl_ms"]),
          _f(r["train_cl_over_contiguous"], ".3f")] for r in results["channels_last"]]))
    out.append(_table(
        f"Depthwise Conv3d forward + backward: PyTorch against evitvid's Conv3d ({thr} threads)",
        ["input", "kernel", "pytorch ms", "evitvid ms", "speed-up", "max |diff|"],
        [[_shape_str(r["input"]), _shape_str(r["kernel"]), _f(r["pytorch_ms"]), _f(r["evitvid_ms"]),
          _f(r["speedup"], ".2f"), _f(r["max_abs_diff"], ".1e")] for r in results.get("depthwise", [])]))
    out.append(_table(
        f"torch.compile against eager, inference ({thr} threads)",
        ["model", "input", "B", "compile s", "eager ms", "compiled ms", "speed-up", "status"],
        [[r["model"], _shape_str(r["input"]), r["batch"], _f(r.get("compile_s")), _f(r.get("eager_ms")),
          _f(r.get("compiled_ms")), _f(r.get("speedup"), ".2f"), r["status"]] for r in results["compile"]]))
    out.append(_table(
        f"onnxruntime against PyTorch, inference ({thr} threads)",
        ["model", "input", "B", "pytorch ms", "onnxruntime ms", "ort / pytorch", "max |diff|", "status"],
        [[r["model"], _shape_str(r["input"]), r["batch"], _f(r.get("pytorch_ms")), _f(r.get("onnxruntime_ms")),
          _f(r.get("ort_over_pytorch"), ".3f"), _f(r.get("max_abs_diff"), ".1e"), r["status"]]
         for r in results["onnx"]]))
    out.append(f"\n{results['seconds']:.0f} s in all")
    return "\n".join(s for s in out if s)


# section name -> the config fields that hold its work (emptied when the section is not run)
SECTIONS: dict[str, tuple[str, ...]] = {
    "inference": ("inference",), "timm": ("timm_pairs",), "frames": ("frames",), "attention": ("attn_frames",),
    "train": ("train",), "channels_last": ("channels_last",), "depthwise": ("depthwise",), "compile": ("compile",),
    "onnx": ("onnx",),
}


def only_sections(cfg: BenchConfig, sections: Sequence[str]) -> BenchConfig:
    """`cfg` with the work of every section not in `sections` removed."""
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    return replace(cfg, **{f: () for name, fields in SECTIONS.items() if name not in sections for f in fields})


def configured(name: str = "light", *, threads: Optional[int] = None, layout: str = "channels_last",
               compile: bool = False, memory: Optional[bool] = None, only: Sequence[str] = ()) -> BenchConfig:
    """A preset with the command's options applied (`compile` adds the 3D B1 at the study's
    shape to a preset without a compile section; `memory=False` skips the memory subprocesses;
    `only` keeps just those sections)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    cfg = replace(preset(name, threads), layout=layout)
    if memory is not None:
        cfg = replace(cfg, memory=memory)
    if compile and not cfg.compile:
        cfg = replace(cfg, compile=(("evitvid:efficientvit_b1_3d", STUDY_SHAPE, 1),))
    return only_sections(cfg, only) if only else cfg


def section_table(results: dict[str, Any], section: str, columns: Sequence[str] = ()) -> "pd.DataFrame":
    """One section of the results as a table (`input` shapes written as 3x8x64x64), with just
    those of `columns` that the run has (memory columns exist only when memory was measured)."""
    import pandas as pd
    df = pd.DataFrame(results.get(section, []))
    if "input" in df:
        df["input"] = df["input"].map(_shape_str)
    return df[[c for c in columns if c in df]] if columns else df


def headline(results: dict[str, Any]) -> dict[str, str]:
    """The figures the book's Performance chapter quotes, as text ("not measured" where a
    section did not run): the B1 models' compute rates, the layout, compile and ONNX
    ratios, and softmax against linear attention."""
    def first(section: str, **match: Any) -> Optional[dict]:
        return next((r for r in results.get(section, []) if all(r.get(k) == v for k, v in match.items())), None)

    out = {"machine": f"{results['threads']} threads, torch {results['machine']['torch']}",
           "peak": f"{results['matmul_peak_gflops']:.0f} GFLOP/s"}
    ref = first("inference", model="evitvid:efficientvit_b1_3d")
    for key, model in (("gflops_3d", "evitvid:efficientvit_b1_3d"), ("gflops_fa", "evitvid:efficientvit_b1_frameavg"),
                       ("gflops_timm", "timm-frames:efficientvit_b1")):
        row = ref and first("inference", model=model, input=ref["input"], batch=ref["batch"])
        out[key] = f"{row['gflops']:.0f} GFLOP/s" if row else "not measured"
    out["inference_shape"] = f"{_shape_str(ref['input'])}, batch {ref['batch']}" if ref else "not measured"
    pairs = [f"{r['model'].split('_')[-1].upper()} {r['ratio']:.2f} ({r.get('layout', 'contiguous').replace('_', '-')}, "
             f"{_shape_str(r['input'])})" for r in results.get("timm_ratio", [])]
    out["timm_ratio"] = ", ".join(pairs) or "not measured"
    cl = first("channels_last", model="evitvid:efficientvit_b1_3d")
    out["cl_3d"] = (f"a speed-up of {1 / cl['infer_cl_over_contiguous']:.2f}x for inference and "
                    f"{1 / cl['train_cl_over_contiguous']:.2f}x for training ({_shape_str(cl['input'])}, "
                    f"batch {cl['batch']})") if cl else "not measured"
    comp = first("compile")
    if comp is None:
        out["compile"] = "not measured"
    elif comp["status"] == "ok":
        out["compile"] = (f"a speed-up of {comp['speedup']:.2f}x over eager, after {comp['compile_s']:.0f} s of "
                          f"compiling ({_shape_str(comp['input'])}, batch {comp['batch']})")
    else:
        out["compile"] = comp["status"]
    speedups = sorted(r["speedup"] for r in results.get("depthwise", []))
    out["depthwise"] = ("not measured" if not speedups else f"{speedups[0]:.1f}x" if len(speedups) == 1
                        else f"{speedups[0]:.1f}x to {speedups[-1]:.1f}x")
    onnx = first("onnx")
    out["onnx"] = (f"outputs within {onnx['max_abs_diff']:.0e} of PyTorch's, at {onnx['ort_over_pytorch']:.2f}x "
                   f"PyTorch's latency" if onnx and onnx["status"] == "ok" else (onnx or {}).get("status", "not measured"))
    timed = [r for r in results.get("attention", []) if r.get("softmax_over_linear")]
    skipped = [r for r in results.get("attention", []) if r.get("softmax_skipped")]
    out["attention"] = (f"softmax is {timed[-1]['softmax_over_linear']:.0f}x slower than linear attention at "
                        f"{timed[-1]['tokens']:,} tokens" if timed else "not measured")
    if skipped:
        out["attention"] += (f"; at {skipped[0]['tokens']:,} tokens its N x N matrix alone would take "
                             f"{skipped[0]['softmax_nn_gb']:.1f} GB")
    return out
