"""The bench's sections, each declared once: its work in the config, its rows and its columns.

A `Section` lists its rows (`cases`, one JSON-ready dict per row), measures one row (`row`)
and declares its `columns`: the terminal table (`report.format_results`), the book's tables
(`report.section_table`) and the fields every row carries (a test holds the rows to it) come
from that one declaration; `SECTIONS` and `only_sections` from the list of them.
`Section.rows` runs each row in this process or, when the config isolates it
(`BenchConfig.isolates` on the row's `largest_bytes`), alone in a fresh one; the row records
which.

The sections, in the order they run (every model and input in the config's `layout`, except
where a section compares layouts):

- inference: latency (median ms) and throughput (clips/s) at the paper's shape
  (3 x 16 x 224 x 224) and the embedded study's (3 x 4 x 64 x 64) for evitvid's 3D and
  frame-averaged B1/L1, timm's own 2D EfficientViT run on every frame (T folded into the
  batch, the reference doing the frame-averaged model's work) and torchvision's video models
  at their documented inputs (weights=None); with params, GMACs (`evitvid.models.flops.count_gmacs`,
  meta device where the model allows it, real tensors otherwise), achieved GFLOP/s =
  2 x GMACs / latency beside this machine's fp32 matmul peak (a large `torch.mm`, same
  process), and peak memory (`memory.peak_memory`);
- timm_ratio: evitvid's 2D B1/L1 against timm's on the same input and weights (interleaved
  runs: the ratio), in the bench's layout and in timm's default (contiguous);
- frames: latency and memory against frames (1 ... 32) for 3D and frame-averaged B1 (the
  paper's Fig. 3);
- attention: LiteMLA's ReLU linear attention against softmax attention
  (`F.scaled_dot_product_attention`) over T x H x W tokens with the same heads and head dim,
  until softmax's N x N matrix would exceed a memory budget (then it is skipped, and the row
  says so);
- train: a training step (forward, backward, AdamW step) as evitvid's trainer runs it
  (`Conv3d`'s CPU fast paths, fused AdamW) against PyTorch's kernels only and its default
  AdamW, same weights, interleaved: step time, clips/s and the speed-up;
- channels_last: channels-last (NDHWC/NHWC) against contiguous convolutions, inference and
  training, same weights;
- depthwise: one depthwise Conv3d's forward and backward through PyTorch's kernels against
  evitvid's `Conv3d` (its input gradient computed by a forward convolution);
- compile: `torch.compile` against eager for the 3D B1, inference, through
  `runtime.compile_for_inference` (`compile_s` is compiling, the first call and the check
  against eager; a failure is recorded with its reason);
- onnx: onnxruntime against PyTorch for the 3D B1 at the study shape;
- backends: each model of a group at one shape through every inference backend
  (`evitvid.inference.compile_model`): PyTorch eager (the bench's layout), onnxruntime fp32,
  OpenVINO fp32 and OpenVINO bf16 where the CPU has it (the two runtimes on the same ONNX
  file), all round-robin in one process; latency, ms per frame, GFLOP/s, the ratio to the
  same model's eager latency and the largest difference from its eager outputs. One row per
  (model, backend, precision); the input is contiguous, as a data loader gives it (the
  eager model converts it to its layout on entry, inside the timing).
"""
from __future__ import annotations

import copy

import functools
import math
import statistics
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from .config import MODEL_FLOATS_PER_PIXEL, BenchConfig
from .isolation import FreshProcessError, call_in_fresh_process
from .memory import peak_memory
from .models import _first_tensor, _train_step_fn, apply_layout, build_model, make_input, model_gmacs
from .timing import compare, median_ms, ratio, time_call

GB = 1024 ** 3

Case = dict[str, Any]  # what names one row: JSON-ready (it crosses to a fresh process)


def _shape_str(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


@dataclass(frozen=True)
class Column:
    """One column of a section: the rows' field `key`, the terminal table's `header` and `fmt`,
    a format spec for the field's value ("-" when missing, shapes as 3x8x64x64) or a function
    of the whole row giving the text. `optional` fields are missing from some rows (memory not
    measured, a failed compile)."""

    key: str
    header: str
    fmt: Union[str, Callable[[dict], str]] = ""
    optional: bool = False

    def text(self, row: dict) -> str:
        if callable(self.fmt):
            return self.fmt(row)
        value = row.get(self.key)
        if value is None:
            return "-"
        return _shape_str(value) if isinstance(value, (list, tuple)) else format(value, self.fmt)


@dataclass(frozen=True)
class Section:
    """One section of the bench: `name` (as `--only` names it), `key` (its rows in the results),
    `title` (the terminal table's; "{threads}" is filled in), `columns`, `fields` (the config
    fields that hold its work), `cases` (the rows a config asks for), `row` (measures one:
    config, case, matmul peak in GFLOP/s -> the row, or a list of rows when one case measures
    several things side by side) and `largest_bytes` (an estimate of a row's largest tensor,
    for the isolation rule)."""

    name: str
    key: str
    title: str
    columns: tuple[Column, ...]
    fields: tuple[str, ...]
    cases: Callable[[BenchConfig], list[Case]]
    row: Callable[[BenchConfig, Case, float], Union[dict, list[dict]]]
    largest_bytes: Callable[[BenchConfig, Case], int]

    def rows(self, cfg: BenchConfig, peak_gflops: float, log: Callable[[str], None] = lambda s: None) -> list[dict]:
        """Every row of this section in `cfg`, each in this process or, where `cfg` isolates it,
        in a fresh one; each row says which (`isolated`)."""
        rows = []
        for case in self.cases(cfg):
            isolated = cfg.isolates(self.largest_bytes(cfg, case))
            label = f"{self.name}: " + ", ".join(f"{k} {_shape_str(v) if isinstance(v, list) else v}"
                                                 for k, v in case.items())
            log(label + (" (fresh process)" if isolated else ""))
            if isolated:
                try:
                    row = call_in_fresh_process(_fresh_process_row, self.name, asdict(cfg), case, peak_gflops)
                except FreshProcessError as exc:
                    raise FreshProcessError(f"{label}: {exc}") from exc
            else:
                row = self.row(cfg, case, peak_gflops)
            rows.extend({**r, "isolated": isolated} for r in (row if isinstance(row, list) else [row]))
        return rows


def _fresh_process_row(name: str, cfg: dict, case: Case, peak_gflops: float) -> Union[dict, list[dict]]:
    """`Section.rows`' isolated row (or rows), in its fresh process."""
    config = BenchConfig.from_dict(cfg)
    torch.set_num_threads(config.threads)
    torch.manual_seed(0)
    return SECTIONS[name].row(config, case, peak_gflops)


# ---------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _gmacs(key: str, shape: tuple[int, ...]) -> tuple[float, float, str]:
    return model_gmacs(key, shape)  # the same for every batch size and every row


def _model_cases(field: str) -> Callable[[BenchConfig], list[Case]]:
    """The rows of a section whose config field holds (model key, shape, batch) triples."""
    return lambda cfg: [{"model": k, "input": list(s), "batch": b} for k, s, b in getattr(cfg, field)]


def _activation_bytes(batch: int, dims: Sequence[int]) -> int:
    """A model's largest activation, estimated from its input's pixels (batch x frames x height
    x width, or batch x height x width)."""
    return batch * math.prod(dims) * MODEL_FLOATS_PER_PIXEL * 4


def _model_bytes(cfg: BenchConfig, case: Case) -> int:
    return _activation_bytes(case["batch"], case["input"][1:])


def _model_row(cfg: BenchConfig, case: Case) -> tuple[torch.nn.Module, torch.Tensor, dict[str, Any]]:
    """One row's model and input, in the bench's layout, and the fields that name the row."""
    key, shape, batch = case["model"], case["input"], case["batch"]
    row = {"model": key, "input": list(shape), "batch": batch, "threads": cfg.threads, "layout": cfg.layout}
    return build_model(key, cfg.layout), make_input(batch, shape, cfg.layout), row


def _inference_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> dict:
    key, shape, batch = case["model"], case["input"], case["batch"]
    params_m, gmacs, counted = _gmacs(key, tuple(shape))
    model, x, row = _model_row(cfg, case)
    with torch.inference_mode():
        times = time_call(lambda: model(x), warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
    lat = statistics.median(times)
    gflops = 2 * gmacs * batch / lat
    row.update(params_m=params_m, gmacs=gmacs, gmacs_counted_on=counted, latency_ms=lat * 1e3,
               clips_per_s=batch / lat, samples=len(times), gflops=gflops, peak_fraction=gflops / peak_gflops)
    if cfg.memory and batch in cfg.memory_batches:
        row.update(peak_memory(key, shape, batch, threads=cfg.threads, layout=cfg.layout))
    return row


def _timm_cases(cfg: BenchConfig) -> list[Case]:
    layouts = dict.fromkeys((cfg.layout, "contiguous"))  # the bench's layout, and timm's own default
    return [{"model": f"efficientvit_{size}", "layout": layout, "input": list(shape)}
            for size in cfg.timm_pairs for layout in layouts for shape in cfg.timm_shapes]


def _timm_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> dict:
    """evitvid's 2D model against timm's with the same weights, on the same input, interleaved."""
    name, layout, shape = case["model"], case["layout"], case["input"]
    ours = build_model(f"evitvid:{name}", layout)
    ref = build_model(f"timm:{name}", layout)
    ref.load_state_dict(ours.state_dict())
    x = make_input(shape[0], shape[1:], layout)
    with torch.inference_mode():
        err = (ours(x) - ref(x)).abs().max().item()
        t = compare({"evitvid": lambda: ours(x), "timm": lambda: ref(x)},
                    warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
    return {"model": name, "input": list(shape), "threads": cfg.threads, "layout": layout,
            "evitvid_ms": median_ms(t["evitvid"]), "timm_ms": median_ms(t["timm"]),
            "ratio": ratio(t["evitvid"], t["timm"]), "max_abs_diff": err}


def _frames_cases(cfg: BenchConfig) -> list[Case]:
    return [{"model": name, "input": [3, t, cfg.frames_size, cfg.frames_size]}
            for name in cfg.frames_models for t in cfg.frames]


def _frames_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> dict:
    name, shape = case["model"], case["input"]
    key = f"evitvid:{name}"
    model, x = build_model(key, cfg.layout), make_input(1, shape, cfg.layout)
    with torch.inference_mode():
        times = time_call(lambda: model(x), warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
    row = {"model": name, "frames": shape[1], "input": list(shape), "threads": cfg.threads,
           "latency_ms": median_ms(times), "gmacs": _gmacs(key, tuple(shape))[1]}
    if cfg.memory:
        row.update(peak_memory(key, shape, 1, threads=cfg.threads, layout=cfg.layout))
    return row


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
               "linear_ms": median_ms(times["linear"]), "softmax_nn_gb": nn_bytes / GB,
               "linear_state_kb": heads * dim * (dim + 1) * 4 / 1024}
        if skipped:
            row.update(softmax_ms=None, softmax_over_linear=None, softmax_skipped=skipped)
        else:
            row.update(softmax_ms=median_ms(times["softmax"]),
                       softmax_over_linear=ratio(times["softmax"], times["linear"]), softmax_skipped=None)
        rows.append(row)
    return rows


def _attention_bytes(cfg: BenchConfig, case: Case) -> int:
    """Softmax's N x N matrix where it runs, else a query's heads x N x dim."""
    n = case["frames"] * math.prod(cfg.attn_tokens_per_frame)
    scores = softmax_bytes(1, cfg.attn_heads, n)
    return max(4 * cfg.attn_heads * n * cfg.attn_dim, scores if scores <= cfg.attn_budget_gb * GB else 0)


def _attention_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> dict:
    (row,) = attention_scaling(
        (case["frames"],), cfg.attn_tokens_per_frame, heads=cfg.attn_heads, dim=cfg.attn_dim,
        budget_gb=cfg.attn_budget_gb, warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s,
        threads=cfg.threads)
    return row


def _train_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> dict:
    """evitvid's training step against the same step on PyTorch's kernels only (same weights,
    two copies so that neither optimiser's state touches the other's), interleaved."""
    model, x, row = _model_row(cfg, case)
    reference = copy.deepcopy(model)
    times = compare({"evitvid": _train_step_fn(model, x), "pytorch": _train_step_fn(reference, x, fast=False)},
                    warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
    step = median_ms(times["evitvid"])
    row.update(step_ms=step, ms_per_clip=step / case["batch"], clips_per_s=1e3 * case["batch"] / step,
               pytorch_step_ms=median_ms(times["pytorch"]), speedup=ratio(times["pytorch"], times["evitvid"]),
               samples=len(times["evitvid"]))
    if cfg.memory:
        row.update(peak_memory(case["model"], case["input"], case["batch"], threads=cfg.threads, mode="train",
                               layout=cfg.layout))
    return row


def _channels_last_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> dict:
    """Contiguous against channels-last (convolutions and input), same weights, interleaved."""
    key, shape, batch = case["model"], case["input"], case["batch"]
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
    return {"model": key, "input": list(shape), "batch": batch, "threads": cfg.threads,
            "infer_contiguous_ms": median_ms(inf["contiguous"]), "infer_cl_ms": median_ms(inf["channels_last"]),
            "infer_cl_over_contiguous": ratio(inf["channels_last"], inf["contiguous"]),
            "train_contiguous_ms": median_ms(train["contiguous"]), "train_cl_ms": median_ms(train["channels_last"]),
            "train_cl_over_contiguous": ratio(train["channels_last"], train["contiguous"]),
            "max_abs_diff": err}


def _depthwise_cases(cfg: BenchConfig) -> list[Case]:
    return [{"channels": c, "kernel": k, "frames": t, "size": s, "batch": b} for c, k, t, s, b in cfg.depthwise]


def _depthwise_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> dict:
    """One depthwise Conv3d, forward and backward: PyTorch's kernels against evitvid's `Conv3d`."""
    from evitvid.models.layers import Conv3d
    channels, k, frames, size, batch = (case[f] for f in ("channels", "kernel", "frames", "size", "batch"))
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
    return {"channels": channels, "kernel": [3, k, k], "input": [batch, channels, frames, size, size],
            "threads": cfg.threads, "layout": cfg.layout, "pytorch_ms": median_ms(t["pytorch"]),
            "evitvid_ms": median_ms(t["evitvid"]), "speedup": ratio(t["pytorch"], t["evitvid"]),
            "max_abs_diff": err}


def _compile_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> dict:
    """torch.compile through the library's own path (`runtime.compile_for_inference`, eager on failure)."""
    from evitvid.runtime import compile_for_inference
    model, x, row = _model_row(cfg, case)
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
        row.update(eager_ms=median_ms(t["eager"]), compiled_ms=median_ms(t["compiled"]),
                   speedup=ratio(t["eager"], t["compiled"]))
    return row


def _onnx_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> dict:
    from evitvid.inference import export_onnx, onnx_session, run_onnx
    model, x, row = _model_row(cfg, case)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, Path(tmp) / "model.onnx", case["input"])
            session = onnx_session(path, threads=cfg.threads)
        xn = x.contiguous().numpy()
        with torch.inference_mode():
            ref = _first_tensor(model(x)).numpy()
            err = float(abs(next(iter(run_onnx(session, xn).values())) - ref).max())
            t = compare({"pytorch": lambda: model(x), "onnxruntime": lambda: run_onnx(session, xn)},
                        warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
        row.update(pytorch_ms=median_ms(t["pytorch"]), onnxruntime_ms=median_ms(t["onnxruntime"]),
                   ort_over_pytorch=ratio(t["onnxruntime"], t["pytorch"]), max_abs_diff=err, status="ok")
    except Exception as exc:
        row.update(status=f"onnx failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return row


def _backends_cases(cfg: BenchConfig) -> list[Case]:
    return [{"models": list(models), "input": list(shape), "batch": batch} for models, shape, batch in cfg.backends]


def _backends_bytes(cfg: BenchConfig, case: Case) -> int:
    return _activation_bytes(case["batch"], case["input"][1:])


def _heads(out: Any) -> list[torch.Tensor]:
    return list(out) if isinstance(out, tuple) else [out]


def _failure(exc: Exception) -> str:
    return f"failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"


def _backends_row(cfg: BenchConfig, case: Case, peak_gflops: float) -> list[dict]:
    """Every model of the case through every backend, round-robin in this process: one row each."""
    from evitvid.allocator import malloc_status
    from evitvid.inference import BackendError, compile_model, export_onnx

    shape, batch = case["input"], case["batch"]
    frames = shape[1] if len(shape) == 4 else 1
    x = make_input(batch, shape, "contiguous")  # what a data loader gives every backend
    variants = [("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")]
    fns: dict[tuple[str, str, str], Callable[[], Any]] = {}
    rows: dict[tuple[str, str, str], dict] = {}
    refs: dict[str, list[torch.Tensor]] = {}
    with tempfile.TemporaryDirectory(prefix="evitvid-bench-") as tmp:
        for i, key in enumerate(case["models"]):
            gmacs = _gmacs(key, tuple(shape))[1]
            model = build_model(key, cfg.layout)
            with torch.inference_mode():
                refs[key] = [t.float() for t in _heads(model(x))]
            path, export_error = None, None
            try:
                path = export_onnx(model, Path(tmp) / f"model{i}.onnx", shape)
            except Exception as exc:  # recorded in the rows of the backends that needed it
                export_error = exc
            for backend, precision in variants:
                name = (key, backend, precision)
                rows[name] = {"model": key, "input": list(shape), "batch": batch, "threads": cfg.threads,
                              "layout": cfg.layout if backend == "torch" else "onnx", "backend": backend,
                              "precision": precision, "gmacs": gmacs, "status": "ok"}
                try:
                    if backend == "torch":
                        fns[name] = functools.partial(_eager_call, model, x)
                        continue
                    if export_error is not None:
                        raise export_error
                    compiled = compile_model(model, shape, backend, precision=precision, threads=cfg.threads,
                                             onnx_path=path)
                    out = [t.float() for t in _heads(compiled(x))]
                    rows[name]["max_abs_diff"] = max((a - b).abs().max().item() for a, b in zip(out, refs[key]))
                    fns[name] = functools.partial(compiled, x)
                except BackendError as exc:  # not installed, or a precision this CPU lacks: said, not timed
                    rows[name]["status"] = f"skipped: {exc}"
                except Exception as exc:
                    rows[name]["status"] = _failure(exc)
        times = compare(fns, warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget_s)
    malloc = malloc_status()["applied"]
    for name, row in rows.items():
        row["malloc_tuned"] = malloc
        if name not in times:
            continue
        lat = statistics.median(times[name])
        eager = times.get((name[0], "torch", "fp32"))
        gflops = 2 * row["gmacs"] * batch / lat
        row.update(latency_ms=lat * 1e3, ms_per_frame=lat * 1e3 / (batch * frames), gflops=gflops,
                   peak_fraction=gflops / peak_gflops, samples=len(times[name]),
                   over_eager=ratio(times[name], eager) if eager else None)
        if name[1] == "torch":
            row["max_abs_diff"] = 0.0
    return list(rows.values())


def _eager_call(model: torch.nn.Module, x: torch.Tensor) -> Any:
    with torch.inference_mode():
        return model(x)


# ---------------------------------------------------------------------------------------
# The declarations
# ---------------------------------------------------------------------------------------

def _memory_text(row: dict) -> str:
    if "mem_mb" in row:
        return f"{row['mem_mb']:.0f} ({row['rss_peak_mb']:.0f})"
    return row.get("mem_error", "-")[:30]


MODEL, INPUT, BATCH = Column("model", "model"), Column("input", "input"), Column("batch", "B")
MEMORY = Column("mem_mb", "memory MB", _memory_text, optional=True)  # MB above the built model, (peak RSS)
MAX_DIFF = Column("max_abs_diff", "max |diff|", ".1e")

INFERENCE = Section(
    "inference", "inference", "Inference ({threads} threads; memory: MB above the built model, (peak RSS))",
    columns=(MODEL, INPUT, BATCH, Column("params_m", "params M", ".2f"), Column("gmacs", "GMACs/clip", ".2f"),
             Column("latency_ms", "ms", ".1f"), Column("clips_per_s", "clips/s", ".2f"),
             Column("gflops", "GFLOP/s", ".1f"),
             Column("peak_fraction", "% peak", lambda r: format(100 * r["peak_fraction"], ".1f")), MEMORY),
    fields=("inference",),
    cases=lambda cfg: [{"model": k, "input": list(s), "batch": b} for k, s, batches in cfg.inference for b in batches],
    row=_inference_row, largest_bytes=_model_bytes)

TIMM = Section(
    "timm", "timm_ratio", "evitvid 2D against timm 2D, same weights and input ({threads} threads)",
    columns=(MODEL, INPUT, Column("layout", "layout", lambda r: r.get("layout", "contiguous")),
             Column("evitvid_ms", "evitvid ms", ".1f"), Column("timm_ms", "timm ms", ".1f"),
             Column("ratio", "evitvid / timm", ".3f"), MAX_DIFF),
    fields=("timm_pairs",), cases=_timm_cases, row=_timm_row,
    largest_bytes=lambda cfg, c: _activation_bytes(c["input"][0], c["input"][2:]))  # images, batch included

FRAMES = Section(
    "frames", "frames", "Latency and memory against frames, batch 1 ({threads} threads)",
    columns=(MODEL, Column("frames", "frames"), INPUT, Column("gmacs", "GMACs", ".2f"),
             Column("latency_ms", "ms", ".1f"), MEMORY),
    fields=("frames",), cases=_frames_cases, row=_frames_row,
    largest_bytes=lambda cfg, c: _activation_bytes(1, c["input"][1:]))

ATTENTION = Section(
    "attention", "attention",
    "ReLU linear attention (LiteMLA) against softmax attention (sdpa), B=1 ({threads} threads)",
    columns=(Column("frames", "frames"), Column("tokens", "tokens"), Column("heads", "heads"), Column("dim", "dim"),
             Column("linear_ms", "linear ms", ".2f"), Column("softmax_ms", "softmax ms", ".2f"),
             Column("softmax_over_linear", "softmax / linear", ".1f"), Column("softmax_nn_gb", "N x N GB", ".2f"),
             Column("softmax_skipped", "note",
                    lambda r: f"softmax skipped: {r['softmax_skipped']}" if r.get("softmax_skipped") else "")),
    fields=("attn_frames",), cases=lambda cfg: [{"frames": t} for t in cfg.attn_frames], row=_attention_row,
    largest_bytes=_attention_bytes)

TRAIN = Section(
    "train", "train", "Training: forward + backward + AdamW step, evitvid's against PyTorch's kernels only "
    "({threads} threads; speed-up: PyTorch's time over evitvid's)",
    columns=(MODEL, INPUT, BATCH, Column("step_ms", "step ms", ".1f"), Column("ms_per_clip", "ms/clip", ".1f"),
             Column("clips_per_s", "clips/s", ".1f"), Column("pytorch_step_ms", "PyTorch ms", ".1f"),
             Column("speedup", "speed-up", ".2f"), MEMORY),
    fields=("train",), cases=_model_cases("train"), row=_train_row, largest_bytes=_model_bytes)

CHANNELS_LAST = Section(
    "channels_last", "channels_last",
    "Channels-last (NDHWC/NHWC) against contiguous ({threads} threads; ratio < 1: channels-last faster)",
    columns=(MODEL, INPUT, BATCH, Column("infer_contiguous_ms", "infer ms", ".1f"),
             Column("infer_cl_ms", "infer cl ms", ".1f"),
             Column("infer_cl_over_contiguous", "infer cl / contiguous", ".3f"),
             Column("train_contiguous_ms", "train ms", ".1f"), Column("train_cl_ms", "train cl ms", ".1f"),
             Column("train_cl_over_contiguous", "train cl / contiguous", ".3f"), MAX_DIFF),
    fields=("channels_last",), cases=_model_cases("channels_last"), row=_channels_last_row,
    largest_bytes=_model_bytes)

DEPTHWISE = Section(
    "depthwise", "depthwise",
    "Depthwise Conv3d forward + backward: PyTorch against evitvid's Conv3d ({threads} threads)",
    columns=(INPUT, Column("kernel", "kernel"), Column("pytorch_ms", "pytorch ms", ".1f"),
             Column("evitvid_ms", "evitvid ms", ".1f"), Column("speedup", "speed-up", ".2f"), MAX_DIFF),
    fields=("depthwise",), cases=_depthwise_cases, row=_depthwise_row,
    # the input; its output and gradient are the same size
    largest_bytes=lambda cfg, c: 4 * c["batch"] * c["channels"] * c["frames"] * c["size"] ** 2)

COMPILE = Section(
    "compile", "compile", "torch.compile against eager, inference ({threads} threads)",
    columns=(MODEL, INPUT, BATCH, Column("compile_s", "compile s", ".1f"),
             Column("eager_ms", "eager ms", ".1f", optional=True),
             Column("compiled_ms", "compiled ms", ".1f", optional=True),
             Column("speedup", "speed-up", ".2f", optional=True), replace(MAX_DIFF, optional=True),
             Column("status", "status")),
    fields=("compile",), cases=_model_cases("compile"), row=_compile_row, largest_bytes=_model_bytes)

ONNX = Section(
    "onnx", "onnx", "onnxruntime against PyTorch, inference ({threads} threads)",
    columns=(MODEL, INPUT, BATCH, Column("pytorch_ms", "pytorch ms", ".1f", optional=True),
             Column("onnxruntime_ms", "onnxruntime ms", ".1f", optional=True),
             Column("ort_over_pytorch", "ort / pytorch", ".3f", optional=True), replace(MAX_DIFF, optional=True),
             Column("status", "status")),
    fields=("onnx",), cases=_model_cases("onnx"), row=_onnx_row, largest_bytes=_model_bytes)

BACKENDS = Section(
    "backends", "backends",
    "Inference backends: PyTorch eager, onnxruntime and OpenVINO on the same ONNX graph ({threads} threads; "
    "x eager: latency over the same model's eager latency)",
    columns=(MODEL, INPUT, BATCH, Column("backend", "backend"), Column("precision", "precision"),
             Column("latency_ms", "ms", ".1f", optional=True), Column("ms_per_frame", "ms/frame", ".2f", optional=True),
             Column("gflops", "GFLOP/s", ".1f", optional=True),
             Column("over_eager", "x eager", ".3f", optional=True), replace(MAX_DIFF, optional=True),
             Column("status", "status")),
    fields=("backends",), cases=_backends_cases, row=_backends_row, largest_bytes=_backends_bytes)

# every section by name, in the order they run and are reported
SECTIONS: dict[str, Section] = {s.name: s for s in (INFERENCE, TIMM, FRAMES, ATTENTION, TRAIN, CHANNELS_LAST,
                                                      DEPTHWISE, COMPILE, ONNX, BACKENDS)}


def get_section(name: str) -> Section:
    """A section by its name (as `--only` names it) or the key of its rows in the results."""
    found = SECTIONS.get(name) or next((s for s in SECTIONS.values() if s.key == name), None)
    if found is None:
        raise ValueError(f"unknown section {name!r}; valid: {', '.join(SECTIONS)}")
    return found


def only_sections(cfg: BenchConfig, sections: Sequence[str]) -> BenchConfig:
    """`cfg` with the work of every section not in `sections` removed."""
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    return replace(cfg, **{f: () for s in SECTIONS.values() if s.name not in sections for f in s.fields})
