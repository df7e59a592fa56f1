"""Helpers shared by the model tests (not a test module)."""
from __future__ import annotations

import torch
import torch.nn as nn


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter and batch-norm statistic a non-trivial value, so that a test
    comparing two models cannot pass on default initialisation alone (BN mean 0, var 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("norm.weight", "classifier.1.weight")):
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=g))
            elif name.endswith(("running_mean", ".bias")):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            else:  # conv / linear weights: keep the init's scale, change the values
                t.copy_(t.std().clamp_min(1e-3) * torch.randn(t.shape, generator=g))
    return model


def repeat_frames(image: torch.Tensor, num_frames: int) -> torch.Tensor:
    """B x C x H x W -> B x C x T x H x W clip of identical frames."""
    return image[:, :, None].expand(-1, -1, num_frames, -1, -1).contiguous()


def calibrate_bn_(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set batch-norm statistics from one batch and switch to eval, so a freshly built
    model's outputs depend on its input (default statistics can wash the input out)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()
