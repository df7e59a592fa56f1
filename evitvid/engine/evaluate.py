"""`evaluate`: a model's predictions on every item of a dataset, and their metrics."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.datasets import collate
from .tasks import VIDEO, Task

__all__ = ["EvalResult", "evaluate"]


@dataclass
class EvalResult:
    """Metrics, and per item: its id, the logits of each head and the targets (keyed by the
    task's head names: "verb" and "noun" for video models, "label" for image classifiers)."""
    metrics: dict[str, float]
    narration_ids: list[str] = field(default_factory=list)
    logits: dict[str, torch.Tensor] = field(default_factory=dict)
    targets: dict[str, torch.Tensor] = field(default_factory=dict)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 8, *,
             task: Task = VIDEO, num_workers: int = 0, amp_dtype: Optional[torch.dtype] = None,
             collate_fn: Callable = collate, progress: bool = True, desc: str = "eval") -> EvalResult:
    """Predict every item of `dataset` in order and score the predictions with `task.metrics`."""
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_fn)
    ids, logits, targets = [], {}, {}
    ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        if batch[task.input_key] is None:  # every item of the batch was skipped (opt-in skip mode)
            continue
        with ctx:
            out = model(batch[task.input_key].to(device))
        for head, value in task.heads(out).items():
            logits.setdefault(head, []).append(value.float().cpu())
            targets.setdefault(head, []).append(torch.as_tensor(batch[head]))
        ids.extend(batch["narration_id"])
    logits = {k: torch.cat(v) for k, v in logits.items()}
    targets = {k: torch.cat(v) for k, v in targets.items()}
    return EvalResult(task.metrics(logits, targets), ids, logits, targets)
