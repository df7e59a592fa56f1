"""The inference backends (`evitvid.inference`): each backend's outputs against PyTorch's on the
3D, frame-averaged and 2D B0 at tiny shapes, the dynamic batch, bf16, `evaluate_with_backend`
against `evaluate`, and the errors for what cannot run."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest
import torch

import evitvid
from evitvid.engine import evaluate
from evitvid.inference import (BACKENDS, BackendError, check_backend, check_precision, compile_model,
                               evaluate_with_backend, supported_precisions)
from evitvid.models import VideoLogits
from conftest import tiny_copy

VIDEO_SHAPE, IMAGE_SHAPE = (3, 4, 64, 64), (3, 64, 64)
MODELS = [("efficientvit_b0_3d", VIDEO_SHAPE), ("efficientvit_b0_frameavg", VIDEO_SHAPE),
          ("efficientvit_b0", IMAGE_SHAPE)]
# fp32: every backend computes the same graph in fp32; measured 4e-7 (torch's channels-last copy)
# to 2e-6 (OpenVINO) on these models, from the order of summation in the convolutions' kernels.
FP32_ATOL = 1e-4


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """compile_model(backend="torch", threads=1) sets torch's threads process-wide (as documented);
    restore them, or later tests run single-threaded, where PyTorch's 1x1 Conv3d returns
    contiguous outputs from channels-last weights (tests/test_models.py checks the layout)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _model(name: str, seed: int = 0) -> torch.nn.Module:
    """`name` at random initialisation with non-trivial batch-norm statistics (so that the
    backends' folded norms are checked too)."""
    torch.manual_seed(seed)
    model = evitvid.create_model(name).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def _heads(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, tuple) else [out]


def _max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(_heads(a), _heads(b)))


def _installed(backend: str) -> bool:
    try:
        check_backend(backend)
        return True
    except BackendError:
        return False


needs = {b: pytest.mark.skipif(not _installed(b), reason=f"{b} is not installed") for b in BACKENDS}
BACKEND_PARAMS = [pytest.param(b, marks=needs[b]) for b in BACKENDS]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("name, shape", MODELS)
def test_fp32_outputs_match_pytorch(name, shape, backend):
    model = _model(name)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        ref = model(x)
    compiled = compile_model(model, shape, backend, threads=1)
    out = compiled(x)
    assert type(out) is type(ref)  # VideoLogits for the video models, a tensor for the 2D one
    assert isinstance(out, VideoLogits) == (name != "efficientvit_b0")
    assert [h.shape for h in _heads(out)] == [h.shape for h in _heads(ref)]
    diff = _max_diff(out, ref)
    assert diff <= FP32_ATOL, f"{backend} fp32 differs from PyTorch by {diff:.2e}"
    assert compiled.backend == backend and compiled.precision == "fp32" and compiled.input_shape == shape


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_batch_is_dynamic(backend):
    """The last batch of an evaluation is smaller: one compiled model runs 3, then 1, then 3 again."""
    model = _model("efficientvit_b0_3d")
    compiled = compile_model(model, VIDEO_SHAPE, backend, threads=1)
    x = torch.randn(3, *VIDEO_SHAPE)
    with torch.no_grad():
        ref = model(x)
    for batch in (3, 1, 3):
        out = compiled(x[:batch])
        assert out.verb.shape == (batch, 97) and out.noun.shape == (batch, 300)
        assert _max_diff(out, VideoLogits(ref.verb[:batch], ref.noun[:batch])) <= FP32_ATOL


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_channels_last_input_and_the_model_left_as_it_was(backend):
    model = _model("efficientvit_b0_3d")
    compiled = compile_model(model, VIDEO_SHAPE, backend, threads=1)
    x = torch.randn(2, *VIDEO_SHAPE)
    with torch.no_grad():
        ref = model(x)
    assert _max_diff(compiled(x.contiguous(memory_format=torch.channels_last_3d)), ref) <= FP32_ATOL
    assert not model.channels_last and not model.training  # the torch backend runs a channels-last copy
    with pytest.raises(ValueError, match=r"compiled for inputs B x 3x4x64x64, got 2x3x2x64x64"):
        compiled(torch.randn(2, 3, 2, 64, 64))


# bf16 (8 significant bits, unit roundoff 2**-8 = 3.9e-3) against fp32: measured 4.2e-3 to 6.7e-3
# of the largest |logit| over these three models and four seeds (OpenVINO 2026.4, AVX512_BF16),
# the rounding of activations and weights to bf16 accumulating through the layers. The bound,
# 2e-2, is three times the largest measured; the floor, 1e-4 (fifty times fp32's 2e-6), fails
# if bf16 was not actually used.
BF16_REL_MAX, BF16_MIN = 2e-2, 1e-4


@pytest.mark.skipif(not _installed("openvino") or "bf16" not in supported_precisions("openvino"),
                    reason="OpenVINO's bf16 needs a CPU with AVX512_BF16 or AMX")
@pytest.mark.parametrize("name, shape", MODELS)
def test_openvino_bf16_is_close_to_fp32(name, shape):
    model = _model(name)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        ref = model(x)
    diff = _max_diff(compile_model(model, shape, "openvino", precision="bf16", threads=1)(x), ref)
    scale = max(h.abs().max().item() for h in _heads(ref))
    message = (f"{name}: OpenVINO bf16 differs from PyTorch fp32 by {diff:.2e} "
               f"({diff / scale:.2e} of max |logit| {scale:.2f})")
    assert BF16_MIN < diff <= BF16_REL_MAX * scale, message


def test_bad_backends_and_precisions_are_refused_in_one_line(monkeypatch):
    model = _model("efficientvit_b0")
    with pytest.raises(ValueError, match=r"backend must be one of torch, onnxruntime, openvino; got 'tensorrt'"):
        compile_model(model, IMAGE_SHAPE, "tensorrt")
    with pytest.raises(ValueError, match=r"precision must be one of fp32, bf16, fp16; got 'int8'"):
        compile_model(model, IMAGE_SHAPE, "torch", precision="int8")
    for backend in ("torch", "onnxruntime"):
        with pytest.raises(ValueError, match=rf"backend '{backend}' runs fp32 only"):
            check_precision(backend, "bf16")
    if _installed("openvino"):
        missing = [p for p in ("bf16", "fp16") if p not in supported_precisions("openvino")]
        for precision in missing:  # e.g. fp16 without AVX512_FP16 or AMX-FP16
            with pytest.raises(ValueError, match=rf"precision '{precision}': this CPU's OPTIMIZATION_CAPABILITIES"):
                compile_model(model, IMAGE_SHAPE, "openvino", precision=precision)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(ValueError, match=r"backend 'openvino' needs the 'openvino' package, which is not installed"):
        check_backend("openvino")
    assert check_backend("torch") == "torch"


# Two OpenVINO models freed in the order they were compiled, then a signal: OpenVINO alone leaves
# the thread's alternate signal stack unmapped and the kernel kills the process with SIGSEGV
# (evitvid/inference/signal_stack.py), so this runs in a child interpreter and checks its exit.
_SIGNAL_AFTER_OPENVINO = textwrap.dedent("""
    import faulthandler, gc, os, signal
    import torch, evitvid
    from evitvid.inference import compile_model
    from evitvid.inference.signal_stack import signal_stack
    faulthandler.enable()  # as pytest does: the main thread gets Python's alternate stack
    before = signal_stack()
    assert before is not None and not before.disabled, before
    received = []
    signal.signal(signal.SIGUSR1, lambda *_: received.append(True))  # SA_ONSTACK, as every Python handler
    model = evitvid.create_model("efficientvit_b0_3d").eval()
    first = compile_model(model, (3, 4, 32, 32), "openvino")
    second = compile_model(model, (3, 4, 32, 32), "openvino")
    first(torch.randn(1, 3, 4, 32, 32)); second(torch.randn(2, 3, 4, 32, 32))
    del first; gc.collect()
    del second; gc.collect()
    assert signal_stack() == before, (signal_stack(), before)
    os.kill(os.getpid(), signal.SIGUSR1)
    assert received == [True]
    print("signal delivered")
""")


@pytest.mark.slow  # OpenVINO in a fresh interpreter, several models compiled: about 8 s
@needs["openvino"]
def test_openvino_models_freed_in_any_order_leave_the_signal_stack_usable():
    result = subprocess.run([sys.executable, "-c", _SIGNAL_AFTER_OPENVINO], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and "signal delivered" in result.stdout, (result.returncode, result.stderr[-2000:])


@pytest.fixture(scope="module")
def tiny_val(synth_tiny, tmp_path_factory):
    from evitvid import study
    root = tiny_copy(synth_tiny, tmp_path_factory)
    data = study.resolve_data(str(root))
    splits = study.read_splits(data)
    val = study.clip_dataset(data, "val", num_frames=4, crop_size=32, train=False)
    return val, len(splits.verbs), len(splits.nouns)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_evaluate_with_backend_gives_evaluates_metrics(tiny_val, backend):
    val, verbs, nouns = tiny_val
    torch.manual_seed(0)
    model = evitvid.create_model("efficientvit_b0_3d", num_verbs=verbs, num_nouns=nouns).eval()
    batch_size = 4
    assert len(val) % batch_size  # the last batch is smaller: the batch axis is dynamic
    want = evaluate(model, val, torch.device("cpu"), batch_size, progress=False)
    got = evaluate_with_backend(model, val, backend, batch_size=batch_size)
    assert got.narration_ids == want.narration_ids
    for head in ("verb", "noun"):
        assert (got.logits[head] - want.logits[head]).abs().max().item() <= FP32_ATOL
        assert torch.equal(got.targets[head], want.targets[head])
    assert got.metrics == pytest.approx(want.metrics, abs=0)
