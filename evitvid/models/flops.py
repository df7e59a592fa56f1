"""Parameters and multiply-accumulates of models, counted with `torch.utils.flop_counter`.

`python -m evitvid flops` prints the table for the paper's models at the paper's input
shapes. Counting runs on the meta device: shapes only, no arithmetic, so even the 3D
L1 on 16 x 224 x 224 counts in seconds. One MAC is two FLOPs (a multiply and an add),
the convention of the EfficientViT paper's GMACs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .registry import create_model

# (model, input shape without batch): the paper's B1-r288 and L1-r224, 2D and video.
PAPER_MODELS: list[tuple[str, tuple[int, ...]]] = [
    ("efficientvit_b1", (3, 224, 224)),
    ("efficientvit_b1", (3, 288, 288)),
    ("efficientvit_l1", (3, 224, 224)),
    ("efficientvit_b1_frameavg", (3, 16, 224, 224)),
    ("efficientvit_l1_frameavg", (3, 16, 224, 224)),
    ("efficientvit_b1_3d", (3, 16, 224, 224)),
    ("efficientvit_b1_3d", (3, 16, 288, 288)),
    ("efficientvit_l1_3d", (3, 16, 224, 224)),
]


@dataclass(frozen=True)
class ModelCost:
    model: str
    input_shape: tuple[int, ...]
    params_m: float
    gmacs: float


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_gmacs(model: nn.Module, input_shape: Sequence[int]) -> float:
    """GMACs of one forward pass on one input of `input_shape` (no batch dimension)."""
    device = next(model.parameters()).device
    x = torch.empty((1, *input_shape), device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2e9


def model_cost(name: str, input_shape: Sequence[int], **kwargs) -> ModelCost:
    with torch.device("meta"):
        model = create_model(name, **kwargs).eval()
    return ModelCost(name, tuple(input_shape), count_params(model) / 1e6, count_gmacs(model, input_shape))


def format_table(rows: Sequence[ModelCost]) -> str:
    lines = [f"{'model':<26} {'input':<16} {'params (M)':>10} {'GMACs':>9}"]
    for r in rows:
        lines.append(f"{r.model:<26} {'x'.join(map(str, r.input_shape)):<16} {r.params_m:>10.2f} {r.gmacs:>9.2f}")
    return "\n".join(lines)
