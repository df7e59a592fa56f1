"""Inference time against frames per clip (the paper's Fig. 3), measured on this machine.

`time_inference` times one model, every repeat kept so that intervals can be drawn from
them; `time_inference_all` every model of a profile's `time_models`; `timing_table` the
medians as the book shows them.
"""
from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import pandas as pd
import torch

from .. import models as _models
from ..inference import check_backend, check_precision, compile_model
from ..runtime import resolve_device, set_memory_format
from .params import StudyParams

__all__ = ["time_inference", "time_inference_all", "timing_table"]


def time_inference(model: str, frames: Sequence[int] = (1, 2, 4, 8, 16), *, crop_size: int = 224,
                   batch_size: int = 1, repeats: int = 5, warmup: int = 2, threads: Optional[int] = None,
                   backend: str = "torch", precision: str = "fp32", **model_kwargs: Any) -> pd.DataFrame:
    """Inference time per clip and per frame against frames per clip (the paper's Fig. 3): every
    repeat's time is kept (`ms_per_clip` per repeat), so intervals can be drawn from them.

    `backend` "torch" runs PyTorch eager (channels-last on CPU); "onnxruntime" and "openvino"
    run the model compiled for each number of frames (`evitvid.inference.compile_model`, on the
    CPU; compiling is not timed) at `precision` (fp32; OpenVINO also bf16 or fp16 where the CPU
    has it). Each row records its backend and precision."""
    if min(crop_size, batch_size, repeats) <= 0:
        raise ValueError(f"must be positive: crop_size={crop_size}, batch_size={batch_size}, repeats={repeats}")
    check_backend(backend)
    check_precision(backend, precision)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device() if backend == "torch" else torch.device("cpu")
    net = _models.create_model(model, **model_kwargs).eval().to(device)
    if backend == "torch":
        net = set_memory_format(net, "auto", device)
    rows = []
    for n in frames:
        x = torch.randn(batch_size, 3, n, crop_size, crop_size, device=device)
        run = net if backend == "torch" else compile_model(net, x.shape[1:], backend, precision=precision,
                                                            threads=threads)
        with torch.no_grad():
            for i in range(warmup + repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                run(x)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    clip_ms = (time.perf_counter() - t) * 1000 / batch_size
                    rows.append({"model": model, "frames": n, "repeat": i - warmup, "ms_per_clip": clip_ms,
                                 "ms_per_frame": clip_ms / n, "threads": torch.get_num_threads(),
                                 "device": str(device), "backend": backend, "precision": precision})
    return pd.DataFrame(rows)


def time_inference_all(params: StudyParams) -> pd.DataFrame:
    """`time_inference` for every model of `time_models` (the paper's Fig. 3)."""
    if not params.time_models:
        return pd.DataFrame()
    return pd.concat([time_inference(m, params.time_frames, crop_size=params.time_crop_size)
                      for m in params.time_models], ignore_index=True)


def timing_table(timing: pd.DataFrame) -> pd.DataFrame:
    """Median ms per clip and per frame, a row per number of frames, a column per model."""
    med = timing.groupby(["model", "frames"])[["ms_per_clip", "ms_per_frame"]].median().reset_index()
    wide = med.pivot(index="frames", columns="model", values=["ms_per_clip", "ms_per_frame"]).round(1)
    wide.columns = [f"{_models.get_model_entry(model).title}: ms per {'clip' if what == 'ms_per_clip' else 'frame'}"
                     for what, model in wide.columns]
    return wide
