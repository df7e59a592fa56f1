"""Where and how a model runs: device, precision, memory layout, torch.compile with a fallback."""
from __future__ import annotations

import shutil

import pytest
import torch

import evitvid
from evitvid.runtime import (autocast_dtype, compile_for_inference, lesser_instruction_set, resolve_device,
                             set_memory_format)


def make_model(seed: int = 0):
    torch.manual_seed(seed)
    return evitvid.create_model("efficientvit_b0_3d", num_verbs=2, num_nouns=3)


def test_autocast_dtype_and_device():
    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("bf16", cpu) == torch.bfloat16 and autocast_dtype("fp16", cpu) == torch.float16
    with pytest.raises(ValueError, match="'fp8'"):
        autocast_dtype("fp8", cpu)
    assert resolve_device("cpu") == cpu
    assert resolve_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_set_memory_format_auto_is_channels_last_on_cpu_only_for_evitvid_models():
    model = set_memory_format(make_model(), "auto", torch.device("cpu"))
    assert model.channels_last
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    assert set_memory_format(plain, "auto", torch.device("cpu"))[0].weight.is_contiguous()
    set_memory_format(plain, "channels_last", torch.device("cpu"))
    assert plain[0].weight.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="memory_format"):
        set_memory_format(plain, "nhwc", torch.device("cpu"))


def test_compile_for_inference_falls_back_to_eager_with_the_reason(monkeypatch):
    model = make_model().eval()
    x = torch.randn(1, 3, 2, 32, 32)

    def broken(m, **kw):
        raise RuntimeError("no C++ compiler\nlong details")
    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        out, status = compile_for_inference(model, x)
    assert out is model and status == "eager: RuntimeError: no C++ compiler"

    class Wrong(torch.nn.Module):  # "compiles" to something that computes another function
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            v = self.m(x)
            return type(v)(v.verb + 1, v.noun)
    monkeypatch.setattr(torch, "compile", lambda m, **kw: Wrong(m))
    with pytest.warns(RuntimeWarning, match="differ from eager"):
        out, status = compile_for_inference(model, x)
    assert out is model and "differ" in status


@pytest.mark.slow  # inductor compiles C++: about 35 s with a cold cache
@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="inductor needs a C++ compiler on CPU")
def test_compile_for_inference_compiles_and_agrees():
    model = make_model().eval()
    x = torch.randn(1, 3, 2, 32, 32)
    compiled, status = compile_for_inference(model, x)
    assert status == "compiled" and compiled is not model
    with torch.no_grad():
        torch.testing.assert_close(compiled(x).verb, model(x).verb, rtol=1e-4, atol=1e-4)


def test_lesser_instruction_set_is_one_step_below_the_cpus_best():
    assert lesser_instruction_set("AVX512") == "AVX2" and lesser_instruction_set("avx512_vnni") == "AVX2"
    assert lesser_instruction_set("AVX2") == "AVX" and lesser_instruction_set("DEFAULT") == "SSE41"


_MODEL_BYTES = """
import hashlib, torch
from evitvid import models
torch.manual_seed(0)
model = models.create_model("efficientvit_b0", num_classes=10)
logits = model(torch.randn(4, 3, 48, 48))
logits.sum().backward()
grads = torch.cat([p.grad.flatten() for p in model.parameters()])
print(hashlib.sha256(logits.detach().numpy().tobytes() + grads.numpy().tobytes()).hexdigest())
"""


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"), reason="an x86 CPU with AVX2")
def test_the_lesser_instruction_set_changes_the_model_and_the_cpus_own_does_not():
    """What a spread between machines measured on one machine needs: oneDNN limited to the
    CPU's own best instruction set computes the same bytes (so it stands in for no other
    machine), limited to `lesser_instruction_set()` it does not. The probe is a training step's
    arithmetic of the 2D model, not one convolution: on an AVX-512 Xeon a lone 3x3 convolution
    computes the same bytes under AVX2 (both kernels sum in the same order), the model does not."""
    import os
    import subprocess
    import sys

    def model_bytes(isa=None):
        env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
        env.update({"ONEDNN_MAX_CPU_ISA": isa} if isa else {})
        return subprocess.run([sys.executable, "-c", _MODEL_BYTES], env=env, capture_output=True, text=True,
                              check=True).stdout
    default = model_bytes()
    if torch.backends.cpu.get_cpu_capability() == "AVX2":  # (AVX-512 CPUs have several "own bests")
        assert model_bytes("AVX2") == default
    assert model_bytes(lesser_instruction_set()) != default
