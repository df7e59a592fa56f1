"""Time reversal before any training: how much each 3D method's verb logits change when its
validation clips are played backwards, as its runs start it (`reversal_at_initialisation`).

I3D's mean inflation with symmetric padding is reversal-symmetric: 0 up to rounding; the
asymmetric inflations and random initialisation are not. During training the same probe
runs after every epoch (`evitvid.study.probes`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import pandas as pd
import torch

from .. import models as _models
from .data import DataPaths, clip_dataset, read_splits
from .methods import study_methods
from .plan import method_runs, study_data
from .probes import ReversalProbe
from .training import initial_model

__all__ = ["reversal_at_initialisation"]


def reversal_at_initialisation(params, keys: Optional[Sequence[str]] = None, data: Optional[DataPaths] = None,
                               batch_size: Optional[int] = None) -> pd.DataFrame:
    """How much each 3D method's verb logits change under time reversal before any training:
    the model as its runs start it (same seed, weights, inflation), batch-norm statistics set
    from one training batch (as the first training step would see them), probed on validation
    clips (`ReversalProbe`). One row per (method, seed)."""
    methods = study_methods(params)
    keys = [k for k, m in methods.items() if _models.get_model_entry(m.model).kind == "3d"] if keys is None \
        else list(keys)
    data = data or study_data(params)
    splits = read_splits(data)
    clips = dict(num_frames=params.num_frames, crop_size=params.crop_size, sampling=params.sampling,
                 clip_stride=params.clip_stride, frame_cache=params.frame_cache)
    train = clip_dataset(data, "train", train=True, seed=0, segments=splits.train, **clips)
    batch = torch.stack([train[i]["video"] for i in range(batch_size or params.batch_size)])
    val = clip_dataset(data, "val", train=False, segments=splits.validation[:params.max_val], **clips)
    probe = ReversalProbe(val, params.reversal_clips or 128)
    rows = []
    for key, specs in method_runs(params, keys, data).items():
        for spec in specs:
            kw = spec.kwargs
            net = initial_model(kw["model"], splits, seed=kw["seed"], pretrained=kw["pretrained"],
                                inflation=kw["inflation"], inflation_noise=kw["inflation_noise"], head=kw["head"],
                                runs_root=params.runs_root, time_padding=kw["time_padding"])
            for m in net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.reset_running_stats()
                    m.momentum = None  # a cumulative average: one batch sets the statistics
            net.train()
            with torch.no_grad():
                net(batch)
            rows.append({"method": methods[key].label, "seed": kw["seed"], **probe(net)})
    return pd.DataFrame(rows)
