"""`python -m evitvid train`: one video training run from the command line, for long runs.

The same step as the notebooks' (`evitvid.study.train_video`). Its defaults come from a
profile (`--profile cpu|ek100|PATH`, the files in `book/params/`), flags override them; an
unknown key in the profile, or a bad value, is refused naming it. Under torchrun it trains
on every process with DistributedDataParallel (NCCL on CUDA, gloo on CPU):

    torchrun --nproc_per_node 8 -m evitvid train --name ek100_b1_3d --model efficientvit_b1_3d \\
        --profile ek100 --pretrained profile

A killed run resumes from its folder's last checkpoint when started again with the same
parameters.
"""
from __future__ import annotations

import argparse
import json
import os
import typing

from ..study.params import PROTOCOL

# StudyParams fields a training run takes, as flags (their type and default come from the profile):
# where the data is and how a run is laid out, and the protocol
TRAIN_FIELDS = ("dataset", "annotations_dir", "videos_dir", "decoder", "runs_root", "data_root", "memory_format",
                "num_workers",
                "time_padding", *PROTOCOL)


def _boolean(text: str) -> bool:
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def _flag_type(name: str):
    from ..study.params import StudyParams
    hint = typing.get_type_hints(StudyParams)[name]
    if hint is bool:
        return _boolean
    for kind in (int, float, str):
        if hint is kind or kind in typing.get_args(hint):
            return kind
    return str


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="run folder name under runs_root")
    parser.add_argument("--model", required=True, help="a video model, e.g. efficientvit_b0_3d (see `flops`)")
    parser.add_argument("--profile", "--params", dest="profile", default="cpu",
                        help="parameter profile: a YAML path, or a name in --profiles (cpu, ek100); flags override it")
    parser.add_argument("--profiles", default="book/params",
                        help="the folder a profile name is looked up in (default: book/params)")
    parser.add_argument("--pretrained", default=None,
                        help="image weights: a path, timm:NAME, 'auto' (the embedded study's pretraining) or 'profile' "
                             "(the profile's); omitted: random initialisation")
    parser.add_argument("--inflation", default=None, help="how 2D weights become 3D (default: the profile's first)")
    parser.add_argument("--seed", type=int, default=None, help="default: the profile's first seed")
    for name in TRAIN_FIELDS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_flag_type(name), default=None)


def _init_distributed() -> int:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); returns this process's rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    import torch
    import torch.distributed as dist
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank()


def run(args: argparse.Namespace) -> int:
    from .. import study
    from ..models import get_model_entry
    params = study.load_profile(args.profile, profiles=args.profiles, **{k: getattr(args, k) for k in TRAIN_FIELDS})
    get_model_entry(args.model)  # an unknown model fails before anything else
    inflation = args.inflation or params.inflations[0]
    seed = params.seeds[0] if args.seed is None else args.seed
    rank = _init_distributed()
    data = study.study_data(params)
    pretrained = None
    if args.pretrained is not None:
        source = params.pretrained if args.pretrained == "profile" else args.pretrained
        pretrained = study.pretrained_checkpoint(source, args.model, runs_root=params.runs_root,
                                                 **study.pretraining_params(params))
    model_kwargs = {"time_padding": params.time_padding} if get_model_entry(args.model).kind == "3d" else {}
    lr = study.run_rate(params, args.model, args.pretrained is not None, inflation)  # a profile's rate per method
    result = study.train_video(args.name, model=args.model, data=data, pretrained=pretrained, inflation=inflation,
                               seed=seed, runs_root=params.runs_root, data_root=params.data_root,
                               num_workers=params.num_workers, memory_format=params.memory_format,
                               **study.training_params(params, lr=lr), **model_kwargs)
    if rank == 0 and result.complete:
        print(json.dumps(result.results["val"], indent=2))
    return 0
