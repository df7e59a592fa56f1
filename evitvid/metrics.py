"""EPIC-KITCHENS-100 action-recognition metrics: verb, noun and action accuracy.

Following the EK100 challenge: top-1 and top-5 accuracy of verbs, nouns and actions (an
action is right when both its verb and noun are; action top-5 ranks (verb, noun) pairs by
p(verb) * p(noun), see `evitvid.models.action_scores`), and mean class accuracy, the
top-1 recall of each class present in the ground truth averaged over those classes, which
keeps the long tail from vanishing behind 'take' and 'put'.
"""
from __future__ import annotations

import torch

from .models.action import action_scores


def topk_correct(logits: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean per sample: is `target` among the `k` highest logits."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == target[:, None]).any(dim=1)


def mean_class_accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    correct = (logits.argmax(dim=1) == target).float()
    classes = target.unique()
    return float(torch.stack([correct[target == c].mean() for c in classes]).mean()) if len(classes) else float("nan")


def classification_metrics(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Top-1, top-5 and mean class accuracy of one classifier, as fractions in [0, 1]."""
    return {"top1": float(topk_correct(logits, target, 1).float().mean()),
            "top5": float(topk_correct(logits, target, 5).float().mean()),
            "mean_class_acc": mean_class_accuracy(logits, target)}


def video_metrics(verb_logits: torch.Tensor, noun_logits: torch.Tensor, verb: torch.Tensor,
                  noun: torch.Tensor) -> dict[str, float]:
    """All metrics for a set of clips, as fractions in [0, 1] (multiply by 100 for the paper's %)."""
    if not (len(verb_logits) == len(noun_logits) == len(verb) == len(noun)):
        raise ValueError("logits and targets must have the same number of clips")
    out: dict[str, float] = {}
    for name, logits, target in (("verb", verb_logits, verb), ("noun", noun_logits, noun)):
        out.update({f"{name}_{k}": v for k, v in classification_metrics(logits, target).items()})
    pairs = action_scores(verb_logits, noun_logits, top_k=5)
    hit = (pairs.verb == verb[:, None]) & (pairs.noun == noun[:, None])
    out["action_top1"] = float(hit[:, 0].float().mean())
    out["action_top5"] = float(hit.any(dim=1).float().mean())
    return out
