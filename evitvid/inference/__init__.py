"""Inference outside training: ONNX export and the CPU backends behind one interface.

- `export`: `export_onnx` (one ONNX file per model and input shape, dynamic batch),
  `onnx_session` and `run_onnx` (onnxruntime).
- `backends`: `BACKENDS` ("torch", "onnxruntime", "openvino"), `PRECISIONS`,
  `check_backend`, `check_precision`, `supported_precisions` and `compile_model`, which
  returns a callable with the PyTorch model's outputs (`VideoLogits` or a logits tensor).
- `accuracy`: `evaluate_with_backend`, `evitvid.engine.evaluate` through a compiled model.

`python -m evitvid eval --backend`, `evitvid.study.evaluate_frames(backend=...)`,
`evitvid.study.time_inference(backend=...)` and the bench's `backends` section use them.
"""
from .backends import (BACKENDS, PRECISIONS, BackendError, CompiledModel, check_backend, check_precision,
                       compile_model, openvino_capabilities, supported_precisions)
from .accuracy import evaluate_with_backend, input_shape_of
from .export import DEFAULT_OPSET, export_onnx, onnx_session, output_names, run_onnx

__all__ = ["BACKENDS", "PRECISIONS", "BackendError", "CompiledModel", "check_backend", "check_precision",
           "compile_model", "openvino_capabilities", "supported_precisions", "evaluate_with_backend",
           "input_shape_of", "DEFAULT_OPSET", "export_onnx", "onnx_session", "output_names", "run_onnx"]
