"""Action scores from verb and noun logits, as the EPIC-KITCHENS-100 challenge scores them.

An action is a (verb, noun) pair. Following the EK100 action-recognition baseline, the
score of a pair is the product of the verb's and the noun's softmax probabilities; only
the top-k verbs and top-k nouns of each clip are combined, and the top-k pairs kept.
Top-1 action accuracy counts a clip correct when the best pair has both the true verb
and the true noun.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class ActionScores(NamedTuple):
    scores: torch.Tensor  # B x k, descending
    verb: torch.Tensor    # B x k verb class of each pair
    noun: torch.Tensor    # B x k noun class of each pair


def action_scores(verb_logits: torch.Tensor, noun_logits: torch.Tensor, top_k: int = 100) -> ActionScores:
    """The top-k (verb, noun) pairs of each clip by p(verb) * p(noun), best first."""
    if verb_logits.ndim != 2 or noun_logits.ndim != 2 or verb_logits.shape[0] != noun_logits.shape[0]:
        raise ValueError(f"expected B x V and B x N logits, got {tuple(verb_logits.shape)} "
                         f"and {tuple(noun_logits.shape)}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    pv, iv = verb_logits.float().softmax(-1).topk(min(top_k, verb_logits.shape[1]), dim=-1)
    pn, in_ = noun_logits.float().softmax(-1).topk(min(top_k, noun_logits.shape[1]), dim=-1)
    pairs = (pv[:, :, None] * pn[:, None, :]).flatten(1)  # B x kv*kn
    scores, flat = pairs.topk(min(top_k, pairs.shape[1]), dim=-1)
    kn = pn.shape[1]
    return ActionScores(scores, iv.gather(1, flat // kn), in_.gather(1, flat % kn))
