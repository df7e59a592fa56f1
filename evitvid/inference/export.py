"""ONNX export of evitvid models, and running the export in onnxruntime.

`export_onnx(model, path, input_shape)` writes one ONNX file whose input is named "clip"
and whose outputs are named "verb" and "noun" for the video models (they return the
`VideoLogits` named tuple) or "logits" for the 2D image model. The batch dimension is
dynamic, so one file serves batch 1 and batch 8; time and space are fixed at export.

The TorchScript-based exporter (`torch.onnx.export(..., dynamo=False)`) is used: the
dynamo exporter needs `onnxscript`, which is not one of the pinned packages. Both
`time_padding` variants export (replicate padding becomes an ONNX `Pad` in edge mode).
`run_onnx` checks the export against PyTorch in the tests (atol 1e-4) and times it in
`evitvid.bench`. A channels-last model (`set_channels_last`) is exported from a contiguous
copy: memory layout is the runtime's business, not the graph's.

The same file is the graph both non-PyTorch backends run (`evitvid.inference.backends`):
onnxruntime directly, OpenVINO through its ONNX reader.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

__all__ = ["DEFAULT_OPSET", "export_onnx", "onnx_session", "run_onnx", "output_names"]

DEFAULT_OPSET = 17


def output_names(model: nn.Module) -> list[str]:
    """"verb" and "noun" for the video models, "logits" for an image classifier."""
    return ["verb", "noun"] if hasattr(model, "num_verbs") else ["logits"]


def export_onnx(model: nn.Module, path: Union[str, Path], input_shape: Sequence[int], opset: int = DEFAULT_OPSET,
                *, dynamic_batch: bool = True) -> Path:
    """Export `model` (put in eval mode) for inputs `1 x input_shape` to `path`; returns the path.

    `input_shape` has no batch dimension: `(3, T, H, W)` for the video models.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "set_channels_last") and model.channels_last:  # ONNX has no memory layouts
        model = copy.deepcopy(model).set_channels_last(False)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.randn((1, *input_shape), device=device)
    names = output_names(model)
    axes = {n: {0: "batch"} for n in ["clip", *names]} if dynamic_batch else None
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated in favour of dynamo=True; the
            # tracer warns about LiteMLA's branch on the token count, which is fixed at export.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Constant folding")
            torch.onnx.export(model, (x,), str(path), input_names=["clip"], output_names=names,
                              opset_version=opset, dynamic_axes=axes, dynamo=False)
    finally:
        model.train(was_training)
    return path


def onnx_session(path: Union[str, Path], threads: Optional[int] = None):
    """An onnxruntime CPU session for `path`, with `threads` intra-op threads (default: onnxruntime's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, clip: Union[torch.Tensor, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a session on one batch; returns {output name: array}."""
    if isinstance(clip, torch.Tensor):
        clip = clip.detach().cpu().numpy()
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: clip.astype(np.float32)})))
