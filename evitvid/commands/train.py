"""`python -m evitvid train`: one video training run from the command line, for long runs.

The same step as the notebooks' (`evitvid.study.train_video`), with its parameters as flags
or from a YAML/JSON file (`--params`, e.g. `book/params/ek100.yaml`; flags win). Under
torchrun it trains on every process with DistributedDataParallel (NCCL on CUDA, gloo on
CPU):

    torchrun --nproc_per_node 8 -m evitvid train --name ek100_b1_3d --model efficientvit_b1_3d \\
        --params book/params/ek100.yaml

A killed run resumes from its folder's last checkpoint when started again with the same
parameters.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml

# flag -> (type, default); defaults are train_video's
_FLAGS: dict[str, tuple[type, object]] = {
    "model": (str, None), "pretrained": (str, None), "num_frames": (int, 8), "crop_size": (int, 64),
    "epochs": (int, 3), "batch_size": (int, 8), "lr": (float, 1e-3), "weight_decay": (float, 0.05),
    "warmup_epochs": (float, 0.5), "label_smoothing": (float, 0.1), "ema_decay": (float, None),
    "precision": (str, "auto"), "memory_format": (str, "auto"), "num_workers": (int, 0), "seed": (int, 0),
    "max_train": (int, None), "max_val": (int, None), "runs_root": (str, None), "dataset": (str, "synth:default"),
    "annotations_dir": (str, None), "videos_dir": (str, None),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="run folder name under runs_root")
    parser.add_argument("--params", type=Path, help="YAML or JSON file of parameters (flags override it)")
    for flag, (kind, _) in _FLAGS.items():
        parser.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=kind, default=None)


def resolve_params(args: argparse.Namespace) -> dict:
    """Defaults, then the parameters file (only the keys this command knows), then flags."""
    params = {k: default for k, (_, default) in _FLAGS.items()}
    if args.params:
        loaded = yaml.safe_load(args.params.read_text()) or {}
        params.update({k: v for k, v in loaded.items() if k in _FLAGS})  # a per-model `pretrained` dict too
    params.update({k: getattr(args, k) for k in _FLAGS if getattr(args, k) is not None})
    if not params["model"]:
        raise SystemExit("train: --model is required (in the flags or the parameters file)")
    return params


def _init_distributed() -> None:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch
    import torch.distributed as dist
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def run(args: argparse.Namespace) -> int:
    from .. import study
    params = resolve_params(args)
    _init_distributed()
    data = study.resolve_data(params.pop("dataset"), annotations_dir=params.pop("annotations_dir"),
                              videos_dir=params.pop("videos_dir"))
    model = params.pop("model")
    params["pretrained"] = study.resolve_pretrained(params["pretrained"], model, runs_root=params["runs_root"])
    result = study.train_video(args.name, model=model, data=data, **params)
    if result.complete:
        print(json.dumps(result.results["val"], indent=2))
    return 0
