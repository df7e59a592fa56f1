"""The results as text and tables: `header` (what was measured on what), `format_results`
(a Markdown table per section, the command's output), `section_table` (one section as a
DataFrame of its fields, for figures), `readable_table` (the same with the declared headers
and formats, the book's tables) and `headline` (the figures the book's Performance chapter
quotes). Tables take their columns from the sections' declarations (`sections.SECTIONS`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

from .config import ISOLATE, PAPER_MS_PER_FRAME, PAPER_SHAPE
from .models import model_title
from .sections import SECTIONS, Section, _shape_str, get_section
from .timing import BUSY_WARNING

if TYPE_CHECKING:
    import pandas as pd


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return ""
    cols = [header, *rows]
    widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))) + " |"

    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([f"\n{title}", line(header), sep, *map(line, rows)])


def _section_text(section: Section, results: dict[str, Any]) -> str:
    return _table(section.title.format(threads=results["threads"]), [c.header for c in section.columns],
                  [[c.text(r) for c in section.columns] for r in results.get(section.key, [])])


def header(results: dict[str, Any]) -> str:
    """What was measured on what: preset, threads, torch, matmul peak, layout, isolation; how
    many rows ran in a fresh process; how memory was allocated; and a line saying the timings
    are unreliable when other processes were using the CPUs at the start. Read as the book's
    Performance chapter prints it: facts about the measurement, no log or warning prefixes."""
    cfg = results["config"]
    lines = [f"evitvid bench, preset {results['preset']}, {results['threads']} threads, "
             f"torch {results['machine']['torch']}, fp32 matmul peak {results['matmul_peak_gflops']:.1f} GFLOP/s "
             f"(n={results['matmul_n']}), layout {cfg.get('layout', 'contiguous')}, "
             f"isolate {cfg.get('isolate', 'none')}"]
    rows = [r for s in SECTIONS.values() for r in results.get(s.key, [])]
    isolated = sum(bool(r.get("isolated")) for r in rows)
    if isolated:
        lines.append(f"isolation: {ISOLATE[cfg['isolate']]} ({isolated} of {len(rows)} rows)")
    malloc = results.get("malloc")
    if malloc is not None:
        lines.append("allocator: glibc malloc keeps freed activations (mmap and trim thresholds raised)"
                     if malloc.get("applied") else
                     f"allocator: glibc malloc as configured ({malloc.get('reason', 'not tuned')})")
    busy = results.get("cpu_busy_start")
    if busy is not None and busy >= BUSY_WARNING:
        lines.append(f"timings unreliable: other processes used {100 * busy:.0f}% of the CPUs at the start")
    return "\n".join(lines)


def format_results(results: dict[str, Any]) -> str:
    """The results as Markdown tables (one per section, its declared columns), after the `header`."""
    out = [header(results), *(_section_text(s, results) for s in SECTIONS.values()),
           f"\n{results['seconds']:.0f} s in all"]
    return "\n".join(s for s in out if s)


def section_table(results: dict[str, Any], section: str, columns: Sequence[str] = ()) -> "pd.DataFrame":
    """One section of the results (by its results key, e.g. "timm_ratio", or its name) as a
    table: its declared columns, or just `columns` (any of its rows' fields), those that the run
    has (memory columns exist only when memory was measured); shapes written as 3x8x64x64."""
    import pandas as pd
    declared = get_section(section)
    df = pd.DataFrame(results.get(declared.key, []))
    df = df[[c for c in (columns or [c.key for c in declared.columns]) if c in df]]
    for c in df.columns:
        if df[c].map(lambda v: isinstance(v, (list, tuple))).any():
            df[c] = df[c].map(lambda v: _shape_str(v) if isinstance(v, (list, tuple)) else v)
    return df


def readable_table(results: dict[str, Any], section: str, columns: Sequence[str] = ()) -> "pd.DataFrame":
    """`section_table` as a reader sees it: each declared column's header and its formatted
    text, as in the command's tables (shapes as 3x8x64x64, "-" where a row has no value);
    `columns` picks fields as in `section_table`. For display; figures take `section_table`."""
    import pandas as pd
    declared = get_section(section)
    rows = results.get(declared.key, [])
    keys = list(section_table(results, section, columns).columns)
    by_key = {c.key: c for c in declared.columns}
    chosen = [by_key[k] for k in keys if k in by_key]
    # models by the names readers use (the rows and the terminal keep their keys)
    text = [[model_title(r[c.key]) if c.key == "model" and c.key in r else c.text(r) for c in chosen] for r in rows]
    return pd.DataFrame(text, columns=[c.header for c in chosen])


def book_table(results: dict[str, Any], section: str, columns: Sequence[str] = ()):
    """`readable_table` as a page shows it: a Styler without the rows' integer index."""
    return readable_table(results, section, columns).style.hide(axis="index")


def latency_by_frames(results: dict[str, Any]) -> "pd.DataFrame":
    """The `frames` section as the book shows it: ms per clip, a row per number of frames, a
    column per model (by its title)."""
    frames = section_table(results, "frames")
    wide = frames.pivot(index="frames", columns="model", values="latency_ms").round(1)
    wide.columns = [model_title(c) for c in wide.columns]
    return wide


def headline(results: dict[str, Any]) -> dict[str, str]:
    """The figures the book's Performance chapter quotes, as text ("not measured" where a
    section did not run): the B1 models' compute rates, the layout, compile and ONNX
    ratios, the first 3D training step against PyTorch's kernels (`train`), softmax against
    linear attention, and the backends' figures (`backends`,
    `ms_per_frame`, `eager_over_timm`: the issue "Fast on CPU"'s goals)."""
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
    pairs = [f"{r['model'].split('_')[-1].upper()} {r['ratio']:.2f} "
             f"({r.get('layout', 'contiguous').replace('_', '-')}, {_shape_str(r['input'])})"
             for r in results.get("timm_ratio", [])]
    out["timm_ratio"] = ", ".join(pairs) or "not measured"
    train = next((r for r in results.get("train", []) if r.get("speedup") and r["model"].endswith("_3d")), None)
    out["train"] = ("not measured" if train is None else
                    f"{train['step_ms']:.0f} ms a step for {train['model'].partition(':')[2]} at "
                    f"{_shape_str(train['input'])}, batch {train['batch']} ({train['clips_per_s']:.0f} clips/s), "
                    f"{train['speedup']:.2f}x faster than on PyTorch's kernels only "
                    f"({train['pytorch_step_ms']:.0f} ms)")
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
                   f"PyTorch's latency" if onnx and onnx["status"] == "ok"
                   else (onnx or {}).get("status", "not measured"))
    timed = [r for r in results.get("attention", []) if r.get("softmax_over_linear")]
    skipped = [r for r in results.get("attention", []) if r.get("softmax_skipped")]
    out["attention"] = (f"softmax is {timed[-1]['softmax_over_linear']:.0f}x slower than linear attention at "
                        f"{timed[-1]['tokens']:,} tokens" if timed else "not measured")
    if skipped:
        out["attention"] += (f"; at {skipped[0]['tokens']:,} tokens its N x N matrix alone would take "
                             f"{skipped[0]['softmax_nn_gb']:.1f} GB")
    out.update(backend_figures(results))
    return out


def backend_figures(results: dict[str, Any], model: Optional[str] = None,
                    reference: Optional[str] = None) -> dict[str, str]:
    """The backends section's figures for `model` (default: the 3D B1, else the first 3D model
    measured) at the paper's shape (else its first shape), batch 1: `backends_model`,
    `backends_shape`; `backends` (its fastest path against OpenVINO fp32 on the same graph);
    `ms_per_frame` (its fastest fp32 and bf16 paths, the paper's 11 ms per frame named as not comparable);
    `eager_over_timm` (its PyTorch eager latency over `reference`'s, timm's model of the same
    size on every frame by default, measured in the same process, round-robin)."""
    keys = ("backends_model", "backends_shape", "backends", "ms_per_frame", "eager_over_timm")
    missing = dict.fromkeys(keys, "not measured")
    all_rows = [r for r in results.get("backends", []) if r["batch"] == 1 and r.get("latency_ms") is not None]
    if model is None:
        models = [r["model"] for r in all_rows if r["model"].startswith("evitvid:") and r["model"].endswith("_3d")]
        model = "evitvid:efficientvit_b1_3d" if "evitvid:efficientvit_b1_3d" in models else next(iter(models), None)
    if model is None:
        return missing
    reference = reference or "timm-frames:" + model.partition(":")[2].removesuffix("_3d")
    rows = [r for r in all_rows if r["model"] == model]
    shapes = [r["input"] for r in rows]
    shape = list(PAPER_SHAPE) if list(PAPER_SHAPE) in shapes else (shapes[0] if shapes else None)
    timed = [r for r in rows if r["input"] == shape]
    if not timed:
        return missing
    out = dict(missing, backends_model=model.partition(":")[2], backends_shape=f"{_shape_str(shape)}, batch 1")

    def name(r: dict) -> str:
        return "PyTorch eager" if r["backend"] == "torch" else f"{r['backend']} {r['precision']}"

    fastest = min(timed, key=lambda r: r["latency_ms"])
    ov = next((r for r in timed if (r["backend"], r["precision"]) == ("openvino", "fp32")), None)
    out["backends"] = (f"{name(fastest)}, {fastest['latency_ms']:.0f} ms"
                       + (f", {fastest['latency_ms'] / ov['latency_ms']:.2f}x OpenVINO fp32's {ov['latency_ms']:.0f} ms"
                          if ov else " (OpenVINO fp32 not measured)"))
    per_frame = []
    for precision in ("fp32", "bf16"):
        best = min((r for r in timed if r["precision"] == precision), key=lambda r: r["latency_ms"], default=None)
        if best:
            per_frame.append(f"{best['ms_per_frame']:.1f} ms per frame in {precision} ({name(best)})")
    out["ms_per_frame"] = ", ".join(per_frame) + (f" (the paper's {PAPER_MS_PER_FRAME:g} ms is not comparable: a GPU, "
                                                   "224 x 224 images, decoding included)")
    eager = next((r for r in timed if r["backend"] == "torch"), None)
    ref = next((r for r in all_rows if r["model"] == reference and r["input"] == shape and r["backend"] == "torch"),
               None)
    if eager and ref:
        out["eager_over_timm"] = (f"{eager['latency_ms'] / ref['latency_ms']:.2f}x ({eager['latency_ms']:.0f} ms "
                                  f"against timm's {ref['latency_ms']:.0f} ms, PyTorch eager, "
                                  f"{eager.get('layout', 'contiguous').replace('_', '-')})")
    return out
