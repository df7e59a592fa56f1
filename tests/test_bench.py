"""The model benchmark's structure and arithmetic, from a micro run (tiny shapes, one repeat).

No timing thresholds: timings depend on the machine. What is tested is that every section
produces its rows with consistent units, that ratios are ratios of medians, that the
softmax memory budget skips exactly the rows it should, and that the command writes
its JSON.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch

from evitvid import bench
from evitvid.cli import main
from evitvid.models.layers import channels_last_format
from conftest import PROFILES

TINY = (3, 2, 32, 32)
# the study's clips and batch, as the book's profile gives them (the bench reads them from the caller)
_CPU = __import__("evitvid.study", fromlist=["load_profile"]).load_profile(PROFILES / "cpu.yaml")
STUDY_SHAPE, STUDY_BATCH = (3, _CPU.num_frames, _CPU.crop_size, _CPU.crop_size), _CPU.batch_size
STUDY = dict(study_shape=STUDY_SHAPE, study_batch=STUDY_BATCH)
B0_3D, B0_FA = "evitvid:efficientvit_b0_3d", "evitvid:efficientvit_b0_frameavg"


def micro_config(**kw) -> bench.BenchConfig:
    cfg = bench.BenchConfig(
        preset="micro", threads=1, warmup=0, repeats=1, memory=False,
        inference=((B0_3D, TINY, (1, 2)), ("timm-frames:efficientvit_b0", TINY, (1,))),
        timm_pairs=("b0",), timm_shapes=((1, 3, 32, 32),),
        frames=(1, 2), frames_size=32, frames_models=("efficientvit_b0_3d",),
        attn_frames=(1, 2), attn_tokens_per_frame=(4, 4), attn_heads=2, attn_dim=4, attn_budget_gb=1.0,
        train=((B0_FA, TINY, 2),), channels_last=((B0_3D, TINY, 1),), compile=(), onnx=(),
        depthwise=((4, 3, 2, 8, 1), (6, 5, 2, 4, 2)), matmul_n=64,
    )
    return replace(cfg, **kw)


@pytest.fixture(scope="module")
def micro_results():
    return bench.benchmark(micro_config())


def test_micro_run_has_every_section_with_consistent_units(micro_results):
    r = micro_results
    assert r["threads"] == 1 and r["matmul_peak_gflops"] > 0
    assert json.loads(json.dumps(r)) == r  # JSON-ready as is
    inf = r["inference"]
    assert [(x["model"], x["batch"]) for x in inf] == [(B0_3D, 1), (B0_3D, 2), ("timm-frames:efficientvit_b0", 1)]
    for x in inf:
        assert x["clips_per_s"] == pytest.approx(x["batch"] * 1e3 / x["latency_ms"])
        assert x["gflops"] == pytest.approx(2 * x["gmacs"] * x["batch"] / (x["latency_ms"] / 1e3))
        assert x["peak_fraction"] == pytest.approx(x["gflops"] / r["matmul_peak_gflops"])
        assert x["threads"] == 1
    assert inf[0]["gmacs"] == inf[1]["gmacs"]  # per clip, whatever the batch
    assert [x["frames"] for x in r["frames"]] == [1, 2]
    assert r["frames"][1]["gmacs"] > r["frames"][0]["gmacs"]
    assert [t["layout"] for t in r["timm_ratio"]] == ["channels_last", "contiguous"]
    for t in r["timm_ratio"]:
        assert t["ratio"] == pytest.approx(t["evitvid_ms"] / t["timm_ms"])
        assert t["max_abs_diff"] < 1e-4  # the same function, or the ratio would compare different work
    (tr,) = r["train"]
    assert tr["ms_per_clip"] == pytest.approx(tr["step_ms"] / 2)
    assert tr["clips_per_s"] == pytest.approx(2e3 / tr["step_ms"]) and tr["pytorch_step_ms"] > 0
    assert tr["speedup"] == pytest.approx(tr["pytorch_step_ms"] / tr["step_ms"])
    (cl,) = r["channels_last"]
    assert cl["max_abs_diff"] < 1e-4 and cl["train_cl_ms"] > 0
    assert cl["infer_cl_over_contiguous"] == pytest.approx(cl["infer_cl_ms"] / cl["infer_contiguous_ms"])
    assert {x["layout"] for x in inf} == {"channels_last"}
    dw = r["depthwise"]
    assert [x["input"] for x in dw] == [[1, 4, 2, 8, 8], [2, 6, 2, 4, 4]]
    for x in dw:
        assert x["max_abs_diff"] < 1e-4  # the same gradients, or the speed-up would compare different work
        assert x["speedup"] == pytest.approx(x["pytorch_ms"] / x["evitvid_ms"])
    table = bench.format_results(r)
    for title in ("Inference", "against timm", "against frames", "softmax", "Training", "Channels-last",
                  "layout channels_last", "Depthwise Conv3d"):
        assert title in table
    assert "1 threads" in table


@pytest.mark.parametrize("key, shape", [(B0_3D, TINY), ("timm-frames:efficientvit_b0", TINY),
                                        ("torchvision:r3d_18", (3, 2, 16, 16))])
def test_layouts_change_memory_not_results(key, shape):
    torch.manual_seed(0)
    base = bench.build_model(key, "contiguous")
    cl = bench.build_model(key, "channels_last")
    cl.load_state_dict(base.state_dict())
    convs = [m for m in cl.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    assert convs and all(m.weight.is_contiguous(memory_format=channels_last_format(m.weight.ndim)) for m in convs)
    assert any(not m.weight.is_contiguous() for m in convs)
    # a depthwise kernel (C x 1 x k x k [x k]) holds the same bytes in both layouts; its strides
    # still say which one, and oneDNN picks its kernels by them
    depthwise = [m.weight for m in convs if m.weight.shape[1] == 1 and m.weight.shape[-1] > 1]
    assert all(w.stride(1) == 1 for w in depthwise)
    assert all(w.stride(1) == w.stride(0) for w in bench.apply_layout(cl, "contiguous").parameters()
               if w.ndim > 3 and w.shape[1] == 1 and w.shape[-1] > 1)
    assert bench.make_input(2, shape, "contiguous").is_contiguous()
    assert bench.make_input(2, shape, "channels_last").is_contiguous(memory_format=torch.channels_last_3d)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        a, b = bench.models._first_tensor(base(x)), bench.models._first_tensor(
            cl(x.contiguous(memory_format=torch.channels_last_3d)))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="layout must be one of"):
        bench.apply_layout(base, "nhwc")


def test_headline_quotes_the_results(micro_results):
    h = bench.headline(micro_results)
    # the micro run has no B1 rows and no compile, onnx or backends section: said so, not invented
    assert h["gflops_3d"] == h["compile"] == h["onnx"] == "not measured"
    assert h["train"] == "not measured"  # its only training row is frame averaging
    tr = {**micro_results["train"][0], "model": B0_3D}
    assert bench.headline({**micro_results, "train": [tr]})["train"] == (
        f"{tr['step_ms']:.0f} ms a step for efficientvit_b0_3d at 3x2x32x32, batch 2 "
        f"({tr['clips_per_s']:.0f} clips/s), "
        f"{tr['speedup']:.2f}x faster than on PyTorch's kernels only ({tr['pytorch_step_ms']:.0f} ms)")
    assert h["backends"] == h["ms_per_frame"] == h["eager_over_timm"] == h["backends_model"] == "not measured"
    assert h["peak"] == f"{micro_results['matmul_peak_gflops']:.0f} GFLOP/s"
    low, high = sorted(x["speedup"] for x in micro_results["depthwise"])
    assert h["depthwise"] == f"{low:.1f}x to {high:.1f}x"
    assert "B0" in h["timm_ratio"] and "x" in h["attention"]
    full = dict(micro_results, inference=[dict(x, model="evitvid:efficientvit_b1_3d", gflops=12.0)
                                          for x in micro_results["inference"][:1]],
                compile=[{"status": "ok", "speedup": 1.25, "compile_s": 20.0, "input": [3, 8, 64, 64], "batch": 1}])
    h = bench.headline(full)
    assert h["gflops_3d"] == "12 GFLOP/s" and h["gflops_fa"] == "not measured"
    assert h["compile"].startswith("a speed-up of 1.25x over eager, after 20 s")


def test_busy_machine_is_measured_and_warned_about(micro_results):
    busy = bench.cpu_busy_fraction(0.2)
    assert busy is None or 0.0 <= busy <= 1.0
    assert "unreliable" not in bench.format_results(dict(micro_results, cpu_busy_start=0.05))
    busy_text = bench.format_results(dict(micro_results, cpu_busy_start=0.6))
    assert "timings unreliable: other processes used 60% of the CPUs" in busy_text
    assert "warning" not in busy_text.lower()  # the book prints it: a fact, not a log line


def test_ratio_is_a_ratio_of_medians():
    assert bench.ratio([1.0, 2.0, 9.0], [1.0, 1.0, 1.0]) == 2.0
    assert bench.ratio([3.0], [2.0]) == 1.5


def test_time_call_and_compare_count_calls():
    calls = []
    times = bench.time_call(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(times) == 3 and len(calls) == 5
    seen = []
    out = bench.compare({"a": lambda: seen.append("a"), "b": lambda: seen.append("b")}, warmup=1, repeats=2)
    assert seen == ["a", "b", "a", "b", "a", "b"]  # warm-up each, then round-robin
    assert {k: len(v) for k, v in out.items()} == {"a": 2, "b": 2}


def test_softmax_is_skipped_exactly_when_its_matrix_exceeds_the_budget():
    assert bench.softmax_bytes(1, 16, 196) == 16 * 196 * 196 * 4
    # 2 heads x 32 tokens: 8 KiB; 2 x 64 tokens: 32 KiB. A 16 KiB budget keeps the first only.
    rows = bench.attention_scaling((2, 4), (4, 4), heads=2, dim=4, budget_gb=16 * 1024 / bench.sections.GB,
                                   warmup=0, repeats=1)
    assert [r["tokens"] for r in rows] == [32, 64]
    assert rows[0]["softmax_skipped"] is None and rows[0]["softmax_ms"] > 0
    assert rows[1]["softmax_ms"] is None and "budget" in rows[1]["softmax_skipped"]
    assert rows[1]["linear_ms"] > 0  # the linear form runs regardless


def test_linear_attention_matches_the_module_it_benchmarks():
    """The benchmark times LiteMLA._attn; check it is normalised attention with ReLU weights."""
    from evitvid.models.efficientvit import LiteMLA
    from evitvid.models.layers import ConvSpec

    lite = LiteMLA(8, 8, dim=4, spec=ConvSpec(dims=3), norm_eps=1e-5)
    q, k, v = (torch.rand(1, 2, 10, 4) for _ in range(3))
    w = q @ k.transpose(-1, -2)
    expected = (w @ v) / (w.sum(-1, keepdim=True) + lite.eps)
    torch.testing.assert_close(lite._attn(q, k, v), expected, rtol=1e-5, atol=1e-6)


def test_peak_memory_subprocess_reports_rss():
    mem = bench.peak_memory(B0_3D, TINY, 1, threads=1)
    assert mem["rss_peak_mb"] >= mem["rss_base_mb"] > 0 and mem["mem_mb"] >= 0


def test_unknown_model_key_and_preset_raise():
    with pytest.raises(ValueError, match="model key"):
        bench.build_model("nope:efficientvit_b0")
    with pytest.raises(ValueError, match="preset"):
        bench.bench_config("medium", **STUDY)


def test_presets_cover_the_brief():
    light, full = bench.bench_config("light", **STUDY, threads=2), bench.bench_config("full", **STUDY, threads=2)
    assert {s for _, s, _ in light.inference} == {STUDY_SHAPE}
    assert all(b == (1,) for _, _, b in light.inference)
    keys = {k for k, _, _ in full.inference}
    assert {f"torchvision:{n}" for n in bench.TORCHVISION_INPUTS} <= keys
    assert {"timm-frames:efficientvit_b1", "evitvid:efficientvit_l1_3d"} <= keys
    assert full.frames == (1, 2, 4, 8, 16, 32) and full.threads == 2
    # the inference goals in one run: the 3D B1 and timm's B1 on the same 16 frames, batch 1
    assert any({"evitvid:efficientvit_b1_3d", "timm-frames:efficientvit_b1"} <= set(models) and
               shape == bench.PAPER_SHAPE and batch == 1 for models, shape, batch in full.backends)
    assert all(shape == STUDY_SHAPE for _, shape, _ in light.backends)
    # the study's training step is what the light preset times first: its model, clip and batch
    from evitvid.study import load_profile
    cpu = load_profile(PROFILES / "cpu.yaml")
    assert light.train[0] == (f"evitvid:{cpu.model_3d}", (3, cpu.num_frames, cpu.crop_size, cpu.crop_size),
                              cpu.batch_size) == ("evitvid:efficientvit_b0_3d", STUDY_SHAPE, STUDY_BATCH)


def test_command_writes_results_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.PRESETS, "light", lambda threads, shape, batch: micro_config(
        inference=((B0_3D, TINY, (1,)),), frames=(), train=(), channels_last=(), attn_frames=(1,)))
    assert main(["bench", "--out", str(tmp_path), "--no-memory", "--profile", str(PROFILES / "cpu.yaml")]) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["inference"][0]["model"] == B0_3D and data["threads"] == 1
    assert "Inference" in capsys.readouterr().out


def test_only_sections_empties_the_others():
    cfg = bench.only_sections(micro_config(), ["train", "attention"])
    assert cfg.train and cfg.attn_frames
    assert cfg.inference == cfg.frames == cfg.channels_last == cfg.timm_pairs == ()
    with pytest.raises(ValueError, match="valid"):
        bench.only_sections(cfg, ["nope"])


def test_bench_config_applies_the_command_options():
    cfg = bench.only_sections(bench.bench_config("light", **STUDY, threads=1, layout="contiguous", compile=True),
                              ["compile", "onnx"])
    assert cfg.layout == "contiguous" and cfg.threads == 1 and cfg.memory
    assert cfg.compile == (("evitvid:efficientvit_b1_3d", STUDY_SHAPE, 1),) and cfg.onnx
    assert cfg.inference == cfg.train == cfg.depthwise == cfg.backends == ()
    assert not bench.bench_config("smoke", **STUDY).memory
    assert not bench.bench_config("light", **STUDY, memory=False).memory
    with pytest.raises(ValueError, match="layout must be one of"):
        bench.bench_config("light", **STUDY, layout="nhwc")


def test_every_row_carries_its_sections_declared_columns(micro_results):
    for section in bench.SECTIONS.values():
        required = {c.key for c in section.columns if not c.optional}
        for row in micro_results[section.key]:
            assert required <= row.keys(), (section.name, required - row.keys())
            assert row["isolated"] is False  # tiny shapes: nothing is large
    table = bench.format_results(micro_results)
    for section in bench.SECTIONS.values():
        if micro_results[section.key]:
            assert section.title.format(threads=1) in table


def test_section_table_takes_the_declared_columns_or_a_subset(micro_results):
    train = bench.section_table(micro_results, "train")
    # no memory measured: its column is left out
    assert list(train.columns) == ["model", "input", "batch", "step_ms", "ms_per_clip", "clips_per_s",
                                   "pytorch_step_ms", "speedup"]
    assert train["input"].tolist() == ["3x2x32x32"]
    timm = bench.section_table(micro_results, "timm_ratio", ["model", "ratio", "nope"])
    assert list(timm.columns) == ["model", "ratio"] and len(timm) == 2
    assert bench.section_table(micro_results, "timm").equals(bench.section_table(micro_results, "timm_ratio"))
    assert bench.section_table(micro_results, "depthwise")["kernel"].tolist() == ["3x3x3", "3x5x5"]
    assert bench.section_table(micro_results, "compile").empty
    with pytest.raises(ValueError, match="valid"):
        bench.section_table(micro_results, "nope")


def test_readable_table_shows_the_declared_headers_and_formats(micro_results):
    train = bench.readable_table(micro_results, "train")
    assert list(train.columns) == ["model", "input", "B", "step ms", "ms/clip", "clips/s", "PyTorch ms", "speed-up"]
    row = micro_results["train"][0]
    assert train["input"].tolist() == ["3x2x32x32"] and train["step ms"].tolist() == [f"{row['step_ms']:.1f}"]
    timm = bench.readable_table(micro_results, "timm_ratio", ["model", "ratio"])
    assert list(timm.columns) == ["model", "evitvid / timm"] and len(timm) == 2
    assert all(not any(c.isidentifier() and "_" in c for c in bench.readable_table(micro_results, s.name).columns)
               for s in bench.SECTIONS.values())  # no raw field names reach the book


def test_config_survives_the_trip_to_a_fresh_process():
    cfg = micro_config(isolate="all")
    assert bench.BenchConfig.from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg


def test_isolation_rule_takes_the_large_rows():
    def isolated(cfg, name):
        s = bench.SECTIONS[name]
        return [c for c in s.cases(cfg) if cfg.isolates(s.largest_bytes(cfg, c))]

    cfg = bench.BenchConfig()
    assert cfg.isolate == "large" and cfg.isolates(bench.LARGE_ROW_BYTES)
    assert not cfg.isolates(bench.LARGE_ROW_BYTES - 1)
    assert replace(cfg, isolate="all").isolates(0) and not replace(cfg, isolate="none").isolates(2 ** 40)
    with pytest.raises(ValueError, match="isolate must be one of"):
        bench.bench_config("smoke", **STUDY, isolate="some")
    smoke = bench.bench_config("smoke", **STUDY, threads=1)
    assert not any(isolated(smoke, name) for name in bench.SECTIONS)  # the smoke preset stays in seconds
    assert bench.bench_config("smoke", **STUDY, threads=1, isolate="all").isolate == "all"
    full = bench.bench_config("full", **STUDY, threads=2)
    rows = isolated(full, "inference")
    assert all(c in rows for c in bench.SECTIONS["inference"].cases(full) if c["input"][1:] == [16, 224, 224])
    assert not any(c["input"] == list(STUDY_SHAPE) and c["batch"] == 1 for c in rows)
    assert [c["input"][1] for c in isolated(full, "frames")] == [8, 16, 32] * 2
    # softmax's N x N matrix reaches 32 MiB at 4 frames of 14 x 14 tokens; at 64 frames it is skipped
    assert [c["frames"] for c in isolated(full, "attention")] == [4, 8, 16, 32]


@pytest.mark.slow  # a fresh interpreter per section, a few seconds each
def test_isolated_rows_have_the_in_process_rows_fields(micro_results):
    """Every section's row, run in a fresh process (`isolate="all"`), has the same fields as in this one."""
    cfg = micro_config(isolate="all", layout="contiguous", inference=((B0_3D, TINY, (1,)),), frames=(2,),
                       attn_frames=(2,), depthwise=((4, 3, 2, 8, 1),))
    for section in bench.SECTIONS.values():
        if not micro_results[section.key]:
            continue
        (row,) = section.rows(cfg, micro_results["matmul_peak_gflops"])
        assert row["isolated"] is True and row["threads"] == 1 and row.get("layout", "contiguous") == "contiguous"
        assert row.keys() == micro_results[section.key][0].keys(), section.name
    with pytest.raises(bench.FreshProcessError, match="model key"):
        bench.SECTIONS["train"].rows(replace(cfg, train=(("nope:b0", TINY, 1),)), 1.0)


BACKEND_KEYS = {("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")}


def test_backends_section_compares_every_backend_on_the_same_input(micro_results):
    cfg = micro_config(backends=(((B0_3D, "timm-frames:efficientvit_b0"), TINY, 1),))
    rows = bench.SECTIONS["backends"].rows(cfg, 100.0)
    assert [(r["model"], r["backend"], r["precision"]) for r in rows] == [
        (m, b, p) for m in (B0_3D, "timm-frames:efficientvit_b0") for b, p in
        (("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"))]
    for r in rows:
        assert r["malloc_tuned"] is bench.tune_malloc()["applied"] and r["isolated"] is False
        if r["status"] != "ok":  # only a precision this CPU lacks may be skipped, and it says why
            assert r["precision"] == "bf16" and r["status"].startswith("skipped: precision 'bf16'")
            continue
        eager = next(e for e in rows if e["model"] == r["model"] and e["backend"] == "torch")
        assert r["over_eager"] == pytest.approx(r["latency_ms"] / eager["latency_ms"])
        assert r["ms_per_frame"] == pytest.approx(r["latency_ms"] / TINY[1])
        assert r["gflops"] == pytest.approx(2 * r["gmacs"] / (r["latency_ms"] / 1e3))
        # fp32: the same function on every backend; bf16 rounds (tests/test_inference.py bounds it)
        assert r["max_abs_diff"] <= (1e-4 if r["precision"] == "fp32" else 0.1), r
    table = bench.format_results({**micro_results, "backends": rows})
    assert "Inference backends" in table and "openvino" in table


def test_headline_quotes_the_backend_goals():
    def row(model, backend, precision, ms, shape=bench.PAPER_SHAPE):
        return {"model": model, "input": list(shape), "batch": 1, "backend": backend, "precision": precision,
                "layout": "channels_last" if backend == "torch" else "onnx", "latency_ms": ms,
                "ms_per_frame": ms / shape[1], "status": "ok"}
    b1, timm = "evitvid:efficientvit_b1_3d", "timm-frames:efficientvit_b1"
    rows = [row(b1, "torch", "fp32", 440.0), row(b1, "onnxruntime", "fp32", 460.0), row(b1, "openvino", "fp32", 128.0),
            row(b1, "openvino", "bf16", 72.0), row(timm, "torch", "fp32", 300.0), row(timm, "openvino", "fp32", 96.0),
            row(b1, "openvino", "fp32", 9.0, STUDY_SHAPE)]
    h = bench.backend_figures({"backends": rows})
    assert h["backends_model"] == "efficientvit_b1_3d" and h["backends_shape"] == "3x16x224x224, batch 1"
    assert h["backends"] == "openvino bf16, 72 ms, 0.56x OpenVINO fp32's 128 ms"
    assert h["ms_per_frame"] == ("8.0 ms per frame in fp32 (openvino fp32), 4.5 ms per frame in bf16 (openvino bf16) "
                                 "(the paper's 11 ms is not comparable: a GPU, 224 x 224 images, decoding included)")
    assert h["eager_over_timm"] == "1.47x (440 ms against timm's 300 ms, PyTorch eager, channels-last)"
    assert bench.backend_figures({"backends": rows[-1:]})["backends_shape"] == "3x4x64x64, batch 1"


def test_malloc_tuning_is_recorded_idempotent_and_can_be_turned_off(micro_results, monkeypatch):
    from evitvid import allocator
    first = allocator.tune_malloc()
    assert allocator.tune_malloc() == first == micro_results["malloc"] == allocator.malloc_status()
    if first["applied"]:
        assert first["mmap_threshold"] == allocator.MMAP_THRESHOLD
        assert "allocator: glibc malloc keeps freed activations" in bench.format_results(micro_results)
    monkeypatch.setenv(allocator.OPT_OUT, "0")  # inherited by the fresh process, which tunes first thing
    child = bench.call_in_fresh_process(allocator.malloc_status)
    assert child == {"applied": False, "reason": f"{allocator.OPT_OUT}=0"}


def test_the_book_names_models_as_readers_do(micro_results):
    assert bench.models.model_title("evitvid:efficientvit_b1_3d") == "3D B1 (evitvid)"
    assert bench.models.model_title("timm-frames:efficientvit_b1") == "timm 2D B1 on each frame"
    assert bench.models.model_title("torchvision:r3d_18") == "torchvision r3d_18"
    assert bench.models.model_title("efficientvit_l1_frameavg") == "frame-averaged L1"
    shown = bench.readable_table(micro_results, "inference")["model"].tolist()
    assert shown[0] == "3D B0 (evitvid)" and not any(":" in m or "efficientvit_" in m for m in shown)
    html = bench.book_table(micro_results, "inference").to_html()
    assert "3D B0 (evitvid)" in html and ">0<" not in html  # no integer row index
