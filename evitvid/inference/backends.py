"""One model, three CPU inference backends behind one call: `compile_model`.

- "torch": PyTorch eager on a copy of the model, channels-last where `runtime.set_memory_format`
  puts evitvid's models on CPU (what `evaluate` and the bench run), under `inference_mode`.
- "onnxruntime": the ONNX export (`evitvid.inference.export`) in an onnxruntime CPU session.
- "openvino": the same ONNX export read by OpenVINO's ONNX frontend (`Core.read_model`) and
  compiled for "CPU". The ONNX file is the source rather than `openvino.convert_model(model)`
  on the PyTorch module: the export is the graph onnxruntime runs and the tests check (one
  graph for both backends, so the bench compares runtimes, not conversions), it takes 1-2 s
  where `convert_model`'s tracing took 7 s on the 3D B1 at 16 x 224 x 224, and both gave
  outputs within 1e-6 of PyTorch's.

Precision: every backend runs fp32 by default. OpenVINO also runs bf16 or fp16
(`INFERENCE_PRECISION_HINT`) when asked and when the CPU reports it in
`OPTIMIZATION_CAPABILITIES` ("BF16": AVX512_BF16 or AMX; "FP16": AVX512_FP16 or AMX-FP16);
asking for one the CPU lacks is an error, never a silent fp32. OpenVINO's own default on a
bf16-capable CPU is bf16, so fp32 is always set explicitly. PyTorch and onnxruntime run
fp32 only here.

The compiled model (`CompiledModel`) is called like the PyTorch model: a B x C x [T x] H x W
tensor in, a `VideoLogits` (verb, noun) out for video models and a logits tensor for 2D
ones. Time and space are fixed at compile time (`input_shape`), the batch is not: the
last, smaller batch of an evaluation runs as is (the ONNX graph's dynamic batch axis, kept
by both runtimes).
"""
from __future__ import annotations

import copy
import importlib.util
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from ..models import VideoLogits
from .export import export_onnx, onnx_session, output_names
from .signal_stack import keep_signal_stack

__all__ = ["BACKENDS", "PRECISIONS", "BackendError", "check_backend", "check_precision", "supported_precisions",
           "compile_model", "CompiledModel", "openvino_capabilities"]

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
# backend -> the Python package it needs (the pinned version is in pyproject.toml)
_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
# evitvid's precision names -> OpenVINO's INFERENCE_PRECISION_HINT and OPTIMIZATION_CAPABILITIES names
_OV_HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_OV_CAPABILITY = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16"}


class BackendError(ValueError):
    """A backend or precision that cannot run here: an unknown name, a package that is not
    installed, a precision the backend or the CPU does not have. A `ValueError`, so that the
    command line prints it as one line."""


def check_backend(name: str) -> str:
    """`name` when it is a backend whose package is installed; else a one-line `BackendError`."""
    if name not in BACKENDS:
        raise BackendError(f"backend must be one of {', '.join(BACKENDS)}; got {name!r}")
    package = _PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise BackendError(f"backend {name!r} needs the {package!r} package, which is not installed "
                           f"(pip install -c constraints.txt {package})")
    return name


def openvino_capabilities() -> tuple[str, ...]:
    """The CPU's `OPTIMIZATION_CAPABILITIES` as OpenVINO reports them (e.g. FP32, BF16, INT8)."""
    import openvino as ov
    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def supported_precisions(backend: str) -> tuple[str, ...]:
    """The precisions `backend` runs on this machine: fp32 everywhere; OpenVINO's bf16 and fp16
    where the CPU reports them."""
    check_backend(backend)
    if backend != "openvino":
        return ("fp32",)
    caps = set(openvino_capabilities())
    return tuple(p for p in PRECISIONS if p == "fp32" or _OV_CAPABILITY[p] in caps)


def check_precision(backend: str, precision: str) -> str:
    """`precision` when `backend` runs it on this CPU; else a one-line `BackendError` that says
    what it does run."""
    if precision not in PRECISIONS:
        raise BackendError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    supported = supported_precisions(backend)
    if precision not in supported:
        if backend == "openvino":
            raise BackendError(f"precision {precision!r}: this CPU's OPTIMIZATION_CAPABILITIES for OpenVINO are "
                               f"{', '.join(openvino_capabilities())}, so openvino runs {', '.join(supported)} here")
        raise BackendError(f"precision {precision!r}: backend {backend!r} runs fp32 only "
                           f"(bf16 and fp16: backend 'openvino', where the CPU has them)")
    return precision


def _as_numpy(x: Union[torch.Tensor, np.ndarray]) -> np.ndarray:
    """A C-contiguous float32 array (a channels-last tensor is copied into NCDHW order)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().contiguous().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


class _OnnxRuntimeRunner:
    def __init__(self, path: Path, threads: Optional[int]):
        self.session = onnx_session(path, threads=threads)
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, {self.input: x})))


class _OpenVinoRunner:
    """An OpenVINO model compiled for the CPU, its batch axis dynamic.

    Compiling the dynamic batch once costs nothing measurable at run time (the 3D B1 at
    16 x 224 x 224, batch 1, ran as fast dynamic as compiled for a static batch of 1, in fp32
    and bf16), so one compiled model serves every batch size.
    """

    def __init__(self, path: Path, config: dict[str, Any]):
        import openvino as ov
        core = ov.Core()
        model = core.read_model(str(path))  # read whole: the file may be deleted afterwards
        # OpenVINO swaps the thread's alternate signal stack per compiled model, and frees in the
        # wrong order leave it unmapped: the process then dies at its next signal (signal_stack.py)
        with keep_signal_stack():
            self.compiled = core.compile_model(model, "CPU", config)
            self.request = self.compiled.create_infer_request()
        self.outputs = [o.get_any_name() for o in self.compiled.outputs]

    def __del__(self) -> None:
        with keep_signal_stack():  # the compiled model's destructor sets the stack it saw at compile time
            self.__dict__.pop("request", None)
            self.__dict__.pop("compiled", None)

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        # share_outputs=False (the default): the arrays returned are copies, not the request's
        # buffers that the next call overwrites
        out = self.request.infer({0: x}, share_inputs=True)
        return {o.get_any_name(): out[o] for o in self.compiled.outputs}


class CompiledModel:
    """A model compiled for one backend and precision, called like the PyTorch model.

    `backend`, `precision`, `input_shape` (without the batch), `threads` and `outputs` (the
    ONNX output names: verb, noun or logits) say what it runs."""

    def __init__(self, backend: str, precision: str, input_shape: Sequence[int], threads: Optional[int],
                 outputs: Sequence[str], run: Callable[[Any], Any], *, takes_numpy: bool):
        self.backend, self.precision, self.input_shape = backend, precision, tuple(input_shape)
        self.threads, self.outputs = threads, tuple(outputs)
        self._run, self._takes_numpy = run, takes_numpy

    def __repr__(self) -> str:
        return (f"CompiledModel(backend={self.backend!r}, precision={self.precision!r}, "
                f"input_shape={self.input_shape}, outputs={self.outputs})")

    def __call__(self, x: Union[torch.Tensor, np.ndarray]) -> Union[torch.Tensor, VideoLogits]:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.backend} model compiled for inputs B x {'x'.join(map(str, self.input_shape))}, "
                             f"got {'x'.join(map(str, x.shape))}: compile it again for this shape")
        if not self._takes_numpy:
            return self._run(torch.as_tensor(x))
        out = self._run(_as_numpy(x))
        arrays = [torch.from_numpy(np.asarray(out[name])) for name in self.outputs]
        return VideoLogits(*arrays) if self.outputs == ("verb", "noun") else arrays[0]


def _torch_runner(model: nn.Module) -> Callable[[torch.Tensor], Any]:
    from ..runtime import set_memory_format
    cpu = torch.device("cpu")
    net = set_memory_format(copy.deepcopy(model).to(cpu).eval(), "auto", cpu)

    def run(x: torch.Tensor):
        with torch.inference_mode():
            return net(x.to(cpu))
    return run


def compile_model(model: nn.Module, input_shape: Sequence[int], backend: str, *, precision: str = "fp32",
                  threads: Optional[int] = None, onnx_path: Optional[Union[str, Path]] = None) -> CompiledModel:
    """`model` (an evitvid model or any module with the same outputs) compiled to run on the CPU
    through `backend` for inputs B x `input_shape` (any B), at `precision`.

    `threads`: the backend's threads (onnxruntime's intra-op threads, OpenVINO's
    `INFERENCE_NUM_THREADS`; for "torch", `torch.set_num_threads`, process-wide); None leaves
    each backend's default. `onnx_path`: an export of `model` for `input_shape` to use
    (`export_onnx`; the bench gives both backends the same file), else one is made here. The
    model itself is not changed (the torch backend runs a copy).
    """
    check_backend(backend)
    check_precision(backend, precision)
    input_shape = tuple(int(d) for d in input_shape)
    names = output_names(model)
    if backend == "torch":
        if threads:
            torch.set_num_threads(int(threads))
        return CompiledModel(backend, precision, input_shape, threads, names, _torch_runner(model), takes_numpy=False)
    with tempfile.TemporaryDirectory(prefix="evitvid-inference-") as tmp:
        path = Path(onnx_path) if onnx_path is not None else export_onnx(model, Path(tmp) / "model.onnx", input_shape)
        if backend == "onnxruntime":
            run: Callable = _OnnxRuntimeRunner(path, threads)
        else:
            config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _OV_HINT[precision], "PERFORMANCE_HINT": "LATENCY"}
            if threads:
                config["INFERENCE_NUM_THREADS"] = int(threads)
            run = _OpenVinoRunner(path, config)
    return CompiledModel(backend, precision, input_shape, threads, names, run, takes_numpy=True)
