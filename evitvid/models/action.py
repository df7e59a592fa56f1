"""Action scores from verb and noun logits, as the EPIC-KITCHENS-100 challenge scores them.

An action is a (verb, noun) pair. Following the EK100 action-recognition baseline, the
score of a pair is the product of the verb's and the noun's softmax probabilities; only
the top-k verbs and top-k nouns of each clip are combined, and the top-k pairs kept.
Top-1 action accuracy counts a clip correct when the best pair has both the true verb
and the true noun.

The other way, AVION's (which the paper's code follows): one classifier over the action
classes (`ActionClasses`), verbs and nouns scored by marginalising its softmax.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

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


class ActionClasses:
    """A vocabulary of action classes: class i is the (verb, noun) pair `pairs[i]`.

    AVION's EK100 classifier (which the paper's code trains) has one output per pair seen in
    the annotations, and scores verbs and nouns by marginalising its softmax: p(verb v) is the
    sum of p(a) over the actions a whose verb is v (`marginal_log_probs`).
    """

    def __init__(self, pairs: Sequence[Sequence[int]]):
        pairs = tuple((int(v), int(n)) for v, n in pairs)
        if not pairs:
            raise ValueError("actions: the vocabulary of (verb, noun) pairs is empty")
        if len(set(pairs)) != len(pairs):
            dup = next(p for p in pairs if pairs.count(p) > 1)
            raise ValueError(f"actions: the pair (verb {dup[0]}, noun {dup[1]}) is listed twice")
        if min(min(p) for p in pairs) < 0:
            raise ValueError("actions: verb and noun classes must be >= 0")
        self.pairs = pairs
        self.verbs = torch.tensor([v for v, _ in pairs], dtype=torch.long)
        self.nouns = torch.tensor([n for _, n in pairs], dtype=torch.long)
        self._index = {p: i for i, p in enumerate(pairs)}

    def __len__(self) -> int:
        return len(self.pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionClasses) and other.pairs == self.pairs

    def __repr__(self) -> str:
        return f"ActionClasses({len(self)} pairs)"

    def index(self, verb: torch.Tensor, noun: torch.Tensor) -> torch.Tensor:
        """The action class of each (verb, noun) target; a pair outside the vocabulary raises."""
        out = []
        for v, n in zip(torch.as_tensor(verb).tolist(), torch.as_tensor(noun).tolist()):
            try:
                out.append(self._index[(v, n)])
            except KeyError:
                raise ValueError(f"actions: (verb {v}, noun {n}) is not one of the {len(self)} action classes "
                                 f"(build the vocabulary from every annotation file the runs read)") from None
        return torch.tensor(out, dtype=torch.long)


def marginal_log_probs(action_logits: torch.Tensor, classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """B x A action logits -> B x `num_classes` log marginal probabilities: log of the summed
    softmax over the actions whose verb (or noun) is each class (`classes`: the A verbs or nouns).

    A class no action has gets the log of the smallest normal float (about -87 in fp32)
    rather than -inf, so a loss on it stays finite.
    """
    probs = action_logits.to(torch.promote_types(action_logits.dtype, torch.float32)).softmax(-1)  # fp32 or fp64
    out = probs.new_zeros(probs.shape[0], num_classes).index_add_(1, classes.to(probs.device), probs)
    return out.clamp_min(torch.finfo(out.dtype).tiny).log()
