"""The methods the study compares, defined once, and the comparisons the book makes between them.

A method is a model and how it starts: frame averaging from image-pretrained weights (the
paper's first method) or from random initialisation (the same comparison of initialisations
the paper makes for 3D); the frame model with the temporal shift module (`model_tsm`, TSM:
Lin et al., ICCV 2019) from the same image weights, the order-aware 2D baseline of frame
averaging's cost; the 3D model from random initialisation, and inflated from image-pretrained
weights once per inflation of `StudyParams.inflations` (the first, I3D's mean, is the
paper's method; the others are the ablation; an inflation named `NAME_replicate` is `NAME`
with the first and last frames repeated as time padding instead of zeros); and the 3D model
as the paper's code builds it (`model_3d_paper`: time strided, so its attention sees one
time step), from random initialisation and mean-inflated. Every method trains with the same
protocol (epochs, schedule, batch, augmentation) and the same seeds, at one learning rate for
all or at each method's own (`method_rates`: chosen on the tuning split, never on validation);
`evitvid.study.plan` turns them into runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from ..models.inflate import INFLATIONS
from .params import METHOD_NAMES, ParameterError, StudyParams

__all__ = ["Method", "INFLATION_LABELS", "weight_inflation", "MAIN_COMPARISONS", "study_methods", "method_rates",
           "run_rate", "inflation_comparisons", "architecture_comparisons", "every_comparison"]


INFLATION_LABELS = {"mean": "I3D mean", "mean_noise": "mean + zero-sum noise", "centre": "centre + small taps",
                    "centre_only": "centre only", "mean_replicate": "mean, replicated time padding"}
REPLICATE = "_replicate"  # an inflation's suffix: the same weights, time padded by repeating the end frames


def weight_inflation(inflation: str) -> tuple[str, Optional[str]]:
    """A study inflation's weight surgery (`evitvid.models.inflate`) and its time padding
    (None: the profile's): "mean_replicate" -> ("mean", "replicate")."""
    if inflation.endswith(REPLICATE):
        return inflation.removesuffix(REPLICATE), "replicate"
    return inflation, None


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    model: str
    pretrained: bool
    inflation: Optional[str] = None
    ablation: bool = False  # an inflation variant, beside the main comparison
    paper_code: bool = False  # the paper's code's architecture, beside evitvid's
    time_padding: Optional[str] = None  # the 3D model's time padding where it departs from the profile's

    @property
    def random_key(self) -> Optional[str]:
        """The method an inflated method is compared with: the same architecture from random
        initialisation (None for a method that is not inflated)."""
        if self.inflation is None:
            return None
        return "3d_paper_random" if self.paper_code else "3d_random"


def _size(model: str) -> str:
    return model.removeprefix("efficientvit_").split("_")[0].upper()


def study_methods(params: StudyParams) -> dict[str, Method]:
    """{key: Method} in the order the book presents them."""
    out: dict[str, Method] = {}
    for i, fa in enumerate(params.frame_averaging_models):
        suffix = "" if i == 0 else f"_{_size(fa).lower()}"
        tag = "" if i == 0 else f" ({_size(fa)})"
        if "frame_averaging" in params.methods:
            out[f"frame_averaging{suffix}"] = Method(f"frame_averaging{suffix}", f"frame averaging{tag}", fa, True)
        if "frame_averaging_random" in params.methods:
            out[f"frame_averaging_random{suffix}"] = Method(f"frame_averaging_random{suffix}",
                                                            f"frame averaging{tag}, random init", fa, False)
    if "tsm" in params.methods:
        out["tsm"] = Method("tsm", "temporal shift (TSM)", params.model_tsm, True)
    if "3d_random" in params.methods:
        out["3d_random"] = Method("3d_random", "3D, random init", params.model_3d, False)
    if "3d_inflated" in params.methods:
        for j, inflation in enumerate(params.inflations):
            label = "3D, inflated" + ("" if j == 0 else f" ({INFLATION_LABELS.get(inflation, inflation)})")
            weights, padding = weight_inflation(inflation)
            out[f"3d_{inflation}"] = Method(f"3d_{inflation}", label, params.model_3d, True, weights, ablation=j > 0,
                                            time_padding=padding)
    if "3d_paper_random" in params.methods:
        out["3d_paper_random"] = Method("3d_paper_random", "3D as the paper's code, random init",
                                        params.model_3d_paper, False, paper_code=True)
    if "3d_paper_inflated" in params.methods:
        out["3d_paper_mean"] = Method("3d_paper_mean", "3D as the paper's code, inflated", params.model_3d_paper,
                                      True, "mean", paper_code=True)
    return out


def _every_method(params: StudyParams) -> dict[str, Method]:
    """Every method a profile of these models could train: each of `METHOD_NAMES`, each inflation
    (also with replicated time padding)."""
    inflations = (*params.inflations, *(i for i in INFLATIONS if i not in params.inflations))
    return study_methods(params.replace(methods=METHOD_NAMES,
                                        inflations=(*inflations, *(f"{i}{REPLICATE}" for i in INFLATIONS))))


def method_rates(params: StudyParams) -> dict[str, tuple[float, ...]]:
    """{method key: the learning rates its runs train with}, in `study_methods`' order: every rate
    of `lr_grid` in a tuning study (`lr` is not read then), else `lr`, one number for every method
    or a mapping that gives each method of the profile its own. A missing key, or one that names
    no method at all, is refused, naming it; a key of a method this profile does not train is
    kept (a profile that narrows its base's `methods` or `inflations` keeps the base's rates)."""
    methods = study_methods(params)
    if params.lr_grid:
        return {key: tuple(params.lr_grid) for key in methods}
    if not isinstance(params.lr, Mapping):
        return {key: (params.lr,) for key in methods}
    missing = [k for k in methods if k not in params.lr]
    known = _every_method(params)
    unknown = [k for k in params.lr if k not in known]
    if missing or unknown:
        problems = ([f"no rate for {', '.join(missing)}"] if missing else []) + (
            [f"unknown method key(s) {', '.join(map(repr, unknown))}"] if unknown else [])
        raise ParameterError(f"lr: {'; '.join(problems)} (this profile's methods: {', '.join(methods)}; give each "
                             f"one rate, or one number for all)")
    return {key: (params.lr[key],) for key in methods}


def run_rate(params: StudyParams, model: str, pretrained: bool, inflation: Optional[str]) -> float:
    """The learning rate of one run of `model` (from image weights or not; 3D: its `inflation`)
    under `params`: `lr` when it is one number, else the rate of the one method of the profile
    that trains such a run (`python -m evitvid train` without --lr). No such method, or several,
    is refused, naming the candidates."""
    if not isinstance(params.lr, Mapping):
        return params.lr
    every = _every_method(params)
    matches = [k for k, m in every.items() if k in params.lr and m.model == model and m.pretrained == pretrained
               and (not pretrained or m.inflation is None or m.inflation == inflation and m.time_padding is None)]
    if len(matches) != 1:
        raise ParameterError(f"lr: the profile gives each method its own rate ({dict(params.lr)}) and "
                             + (f"{len(matches)} of them ({', '.join(matches)})" if matches else "none of them")
                             + f" trains {model} {'from image weights' if pretrained else 'from random init'}: "
                               "give this run's (python -m evitvid train --lr RATE)")
    return params.lr[matches[0]]


def inflation_comparisons(methods: dict[str, Method]) -> list[tuple[str, str]]:
    """Each inflated 3D method against the same architecture from random initialisation, as
    (key a, key b) pairs (notebook 03's ablation); none where that method is not trained."""
    return [(key, m.random_key) for key, m in methods.items() if m.random_key in methods]


def architecture_comparisons(methods: dict[str, Method]) -> list[tuple[str, str]]:
    """The paper's code's 3D architecture against evitvid's, started alike: (paper key, evitvid key)."""
    pairs = (("3d_paper_random", "3d_random"), ("3d_paper_mean", "3d_mean"))
    return [(a, b) for a, b in pairs if a in methods and b in methods]


# The comparisons behind the paper's findings (method key A, method key B): A - B. TSM against
# frame averaging tests "frame averaging cannot model time"; 3D (inflated) against TSM, from the
# same image weights, asks what 3D convolution adds over an order-aware frame model.
MAIN_COMPARISONS = (("3d_random", "frame_averaging"), ("3d_mean", "3d_random"), ("3d_mean", "frame_averaging"),
                    ("3d_random", "frame_averaging_random"), ("frame_averaging", "frame_averaging_random"),
                    ("tsm", "frame_averaging"), ("3d_mean", "tsm"))


# The motion study's comparisons (`make study-motion`, A - B on the pairs that need a direction of
# motion): order-awareness alone, what 3D convolution adds over it (from random and from image
# weights), and what the image weights add to the 3D model.
MOTION_COMPARISONS = (("tsm", "frame_averaging"), ("3d_random", "tsm"), ("3d_mean", "tsm"), ("3d_mean", "3d_random"))


def every_comparison(methods: Mapping) -> list[tuple[str, str]]:
    """`MAIN_COMPARISONS`, then each inflation against random initialisation (notebook 03's
    ablation, `inflation_comparisons`) that is not among them."""
    return list(MAIN_COMPARISONS) + [c for c in inflation_comparisons(methods) if c not in MAIN_COMPARISONS]
