"""`evaluate_with_backend`: `evitvid.engine.evaluate` with the model compiled for a backend.

The loop, the metrics and the result are `evaluate`'s own (`EvalResult`): the compiled
model (`backends.compile_model`) is handed to it as a module whose forward calls it, so
that there is one evaluation loop whatever runs the model.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from ..engine import VIDEO, EvalResult, Task, evaluate
from .backends import CompiledModel, compile_model

__all__ = ["evaluate_with_backend", "input_shape_of"]


class _Compiled(nn.Module):
    """A compiled model as the module `evaluate` calls (it has no parameters to move or train)."""

    def __init__(self, compiled: CompiledModel):
        super().__init__()
        self.compiled = compiled

    def forward(self, x: torch.Tensor):
        return self.compiled(x)


def input_shape_of(dataset: Dataset, task: Task = VIDEO) -> tuple[int, ...]:
    """The shape of one item's input (no batch): what the model is compiled for."""
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: nothing to evaluate")
    item = dataset[0]
    if item is None or item.get(task.input_key) is None:
        raise ValueError(f"the dataset's first item has no {task.input_key!r} input "
                         "to take the model's input shape from")
    return tuple(item[task.input_key].shape)


def evaluate_with_backend(model: nn.Module, dataset: Dataset, backend: str, *, batch_size: int = 8,
                          precision: str = "fp32", task: Task = VIDEO, threads: Optional[int] = None,
                          num_workers: int = 0, progress: bool = False, desc: Optional[str] = None) -> EvalResult:
    """Predict every item of `dataset` with `model` compiled for `backend` at `precision`
    (`backends.compile_model`, on the CPU) and score the predictions: `evaluate`'s result.

    The input shape is the dataset's first item's; the batch may vary (the last batch)."""
    compiled = compile_model(model, input_shape_of(dataset, task), backend, precision=precision, threads=threads)
    return evaluate(_Compiled(compiled), dataset, torch.device("cpu"), batch_size, task=task,
                    num_workers=num_workers, progress=progress, desc=desc or f"eval ({backend}, {precision})")
