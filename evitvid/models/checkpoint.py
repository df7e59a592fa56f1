"""Loading 2D EfficientViT checkpoints into 2D, frame-averaged, TSM and 3D models.

Formats:
- timm: a state dict with timm's `efficientvit_*` names, as `.safetensors`, `.bin` or
  `.pth`/`.pt` (optionally wrapped in `{"state_dict": ...}`, `{"model": ...}`).
- mit-han-lab/efficientvit: a `.pt` whose `state_dict` has keys like
  `backbone.input_stem.op_list.0.conv.weight` (B models), `backbone.stages.0.op_list.0...`
  (L models, where stage 0 is the stem) and `head.op_list.3.linear.weight`. The module
  order is timm's, so `convert_mit_state_dict` only renames prefixes.
- the paper's code (AVION's fine-tuning script with a 3D EfficientViT): a `.pt` of
  `{"state_dict": {"module.visual.input_stem...", "module.fc_cls.op_list.3.linear.weight", ...},
  "args": Namespace(...), ...}`, saved from DistributedDataParallel. `visual` is the backbone
  in mit-han-lab's layout and `fc_cls` its head over action classes; `convert_paper_state_dict`
  renames them for `efficientvit_*_3d_paper` with an action head (`head.action`).
- `"timm:efficientvit_b1.r288_in1k"`: downloaded from the Hugging Face hub (repo
  `timm/efficientvit_b1.r288_in1k`) when online; offline it fails with a message saying
  how to pass a local file instead.

Conversion is a pure function over state dicts (CONTRIBUTING.md, convention 4); loading errors
name the file.
"""
from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Mapping, Union

import torch
import torch.nn as nn

from .inflate import InflationError, inflate_state_dict, is_classifier_key

log = logging.getLogger("evitvid")

TIMM_PREFIX = "timm:"
_WRAPPER_KEYS = ("state_dict", "model", "module")


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model; the message names the file."""


# (pattern on a mit-han-lab key, function of the match giving the timm prefix)
_MIT_B_RULES = [
    (re.compile(r"^backbone\.input_stem\.op_list\.(\d+)\."),
     lambda m: "stem.in_conv." if m[1] == "0" else f"stem.res{int(m[1]) - 1}."),
    (re.compile(r"^backbone\.stages\.(\d+)\.op_list\.(\d+)\."), lambda m: f"stages.{m[1]}.blocks.{m[2]}."),
]
_MIT_L_RULES = [
    (re.compile(r"^backbone\.stages\.0\.op_list\.(\d+)\."),
     lambda m: "stem.in_conv." if m[1] == "0" else f"stem.res{int(m[1]) - 1}."),
    (re.compile(r"^backbone\.stages\.(\d+)\.op_list\.(\d+)\."), lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}."),
]
_MIT_HEAD_RULES = [
    (re.compile(r"^head\.op_list\.0\."), lambda m: "head.in_conv."),
    (re.compile(r"^head\.op_list\.2\.linear\."), lambda m: "head.classifier.0."),
    (re.compile(r"^head\.op_list\.2\.norm\."), lambda m: "head.classifier.1."),
    (re.compile(r"^head\.op_list\.3\.linear\."), lambda m: "head.classifier.4."),
]


# The paper's code: the backbone is `visual` (B layout), the head `fc_cls`, whose last layer
# classifies actions.
_PAPER_RULES = [
    (re.compile(r"^visual\.input_stem\.op_list\.(\d+)\."),
     lambda m: "stem.in_conv." if m[1] == "0" else f"stem.res{int(m[1]) - 1}."),
    (re.compile(r"^visual\.stages\.(\d+)\.op_list\.(\d+)\."), lambda m: f"stages.{m[1]}.blocks.{m[2]}."),
    (re.compile(r"^fc_cls\.op_list\.0\."), lambda m: "head.in_conv."),
    (re.compile(r"^fc_cls\.op_list\.2\.linear\."), lambda m: "head.classifier.0."),
    (re.compile(r"^fc_cls\.op_list\.2\.norm\."), lambda m: "head.classifier.1."),
    (re.compile(r"^fc_cls\.op_list\.3\.linear\."), lambda m: "head.action."),
]


def is_mit_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("backbone.") for k in state_dict)


def is_paper_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("visual.", "fc_cls.")) for k in state_dict)


def convert_mit_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a mit-han-lab EfficientViT classifier state dict to timm's (and evitvid's) names.

    B models have an `input_stem`; L models keep the stem as `stages.0`. A key that no
    rule covers raises, so a checkpoint of another architecture is not half-loaded.
    """
    rules = (_MIT_B_RULES if any(k.startswith("backbone.input_stem.") for k in state_dict) else _MIT_L_RULES)
    return _rename(state_dict, rules + _MIT_HEAD_RULES, "the mit-han-lab EfficientViT layout")


def convert_paper_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the state dict of the paper's video model (`visual` + `fc_cls`, `module.` already
    stripped) to evitvid's `efficientvit_*_3d_paper` names; its action classifier becomes
    `head.action`. A key that no rule covers raises."""
    return _rename(state_dict, _PAPER_RULES, "the paper's code's layout (visual, fc_cls)")


def _rename(state_dict: Mapping[str, torch.Tensor], rules: list, layout: str) -> dict[str, torch.Tensor]:
    out, unknown = {}, []
    for key, value in state_dict.items():
        for pattern, prefix in rules:
            m = pattern.match(key)
            if m:
                out[prefix(m) + key[m.end():]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"keys not in {layout}: {', '.join(unknown[:10])}"
                              + (f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""))
    return out


def _unwrap(obj, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        key = next((k for k in _WRAPPER_KEYS if k in obj), None)
        if key is None:
            raise CheckpointError(f"{path}: no state dict found (top-level keys: {', '.join(map(str, obj))})")
        obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(obj).__name__}")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if all(k.startswith("module.") for k in sd):  # saved from DistributedDataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def read_state_dict(path: Union[str, Path]) -> dict[str, torch.Tensor]:
    """Read a timm or mit-han-lab checkpoint file into a state dict with timm's names."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            obj = load_file(str(path), device="cpu")
        else:
            # The paper's code saves its argparse arguments beside the weights: a plain
            # attribute container, safe to rebuild; anything else still refuses to load.
            with torch.serialization.safe_globals([argparse.Namespace]):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, bad safetensors header, ...
        if (path.parent / "params.json").exists() and path.name == "checkpoint.pt":
            raise CheckpointError(f"{path}: a training run's checkpoint (model, optimiser and RNG states), not image "
                                  f"weights; pass a 2D checkpoint (e.g. an image pretraining run's "
                                  f"model.safetensors, or a timm or mit-han-lab file)") from None
        reason = (str(e).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {reason})") from None
    sd = _unwrap(obj, path)
    convert = convert_mit_state_dict if is_mit_state_dict(sd) else (
        convert_paper_state_dict if is_paper_state_dict(sd) else None)
    if convert is not None:
        try:
            sd = convert(sd)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
    return sd


def download_timm_weights(name: str) -> Path:
    """Fetch `model.safetensors` of timm's `name` (e.g. 'efficientvit_b1.r288_in1k') from the hub."""
    try:
        from huggingface_hub import hf_hub_download
        return Path(hf_hub_download(repo_id=f"timm/{name}", filename="model.safetensors"))
    except Exception as e:
        raise CheckpointError(
            f"could not download timm weights {name!r} from the Hugging Face hub (repo timm/{name}): "
            f"{type(e).__name__}: {e}. Without internet, fetch model.safetensors of that repo on a connected "
            f"machine and pass its local path as pretrained=PATH.") from e


def checkpoint_file(source: Union[str, Path]) -> Path:
    """The local file of a checkpoint source: a path as it is, `timm:NAME` downloaded from the hub."""
    source_str = str(source)
    if source_str.startswith(TIMM_PREFIX):
        return download_timm_weights(source_str[len(TIMM_PREFIX):])
    return Path(source)


def adapt_state_dict(state_dict: Mapping[str, torch.Tensor], model: nn.Module, *, inflation: str = "mean",
                     inflation_noise: float = 0.5, inflation_seed: int = 0) -> dict[str, torch.Tensor]:
    """Fit a 2D (image, frame-averaged or TSM) state dict to `model`: inflate for 3D (by `inflation`,
    random methods seeded by `inflation_seed`; `evitvid.models.inflate`), drop a classifier that
    cannot fit.

    A classifier is dropped only when its shape or kind cannot fit the model (an ImageNet
    1000-way classifier into verb/noun heads or another class count), and an INFO log line says
    so: every inflation of an image model into a video model drops it, as intended.
    """
    target = model.state_dict()
    if "head.action.weight" in state_dict and target.get("head.action.weight") is None:
        raise CheckpointError(f"the checkpoint has an action head over {state_dict['head.action.weight'].shape[0]} "
                              f"(verb, noun) classes and the model does not: build it with actions=[(verb, noun), "
                              f"...] in the checkpoint's class order")
    src_cls = sorted(k for k in state_dict if is_classifier_key(k))
    fits = all(k in target and target[k].shape == state_dict[k].shape for k in src_cls) and all(
        k in state_dict for k in target if is_classifier_key(k))
    drop = not fits
    if drop:
        log.info("%s: the checkpoint's classifier (%s) does not fit the model's; it is dropped and the "
                 "model's classifier keeps its fresh initialisation", type(model).__name__,
                 ", ".join(src_cls) or "none")
    if any(v.ndim == 5 for v in target.values()):
        return inflate_state_dict(state_dict, target, drop_classifier=drop, method=inflation, noise=inflation_noise,
                                  generator=torch.Generator().manual_seed(inflation_seed))
    if inflation != "mean":
        raise ValueError(f"inflation={inflation!r} applies to 3D models only; "
                         f"{getattr(model, 'model_name', type(model).__name__)} takes 2D weights as they are")
    if drop:
        state_dict = {k: v for k, v in state_dict.items() if not is_classifier_key(k)}
        state_dict.update({k: v for k, v in target.items() if is_classifier_key(k)})
    return dict(state_dict)


def load_pretrained(model: nn.Module, source: Union[str, Path], *, inflation: str = "mean",
                    inflation_noise: float = 0.5, inflation_seed: int = 0) -> nn.Module:
    """Load a 2D checkpoint (path or 'timm:NAME') into a 2D, frame-averaged, TSM or 3D model, strictly
    (a 3D model's kernels inflated by `inflation`, see `adapt_state_dict`)."""
    path = checkpoint_file(source)
    sd = read_state_dict(path)
    try:
        model.load_state_dict(adapt_state_dict(sd, model, inflation=inflation, inflation_noise=inflation_noise,
                                               inflation_seed=inflation_seed), strict=True)
    except (RuntimeError, InflationError) as e:
        raise CheckpointError(f"{path}: does not fit {getattr(model, 'model_name', type(model).__name__)}:\n{e}") from e
    log.info("loaded %s into %s", path, getattr(model, "model_name", type(model).__name__))
    return model
