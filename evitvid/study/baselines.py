"""What an accuracy must be compared with, computed from the data, never assumed.

- chance: guessing uniformly among the classes (1 / classes), and guessing by the training
  frequencies (the sum over classes of train share x validation share);
- majority: always answering the most frequent training class;
- order-blind ceiling (verbs): the best any model blind to frame order can score. Such a
  model cannot tell a verb from its time-reversal (put/take, open/close, ...), so within
  each reversal pair it can at best always answer the pair's more frequent verb in the
  validation split; every other verb it may get right. An upper bound: a model that beats
  it uses the order of frames.
- per reversal pair: how often its more frequent verb occurs (what always answering it
  scores), beside the balanced accuracy a constant answer gets (50 %), and the pair's kind
  (`verb_kinds`): "end state" where the two ends of a clip tell the verbs apart, "motion"
  where only the direction of motion does (the embedded set's vocabulary; any other verb,
  EK100's included, is "unpaired" unless the vocabulary knows its pair).
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import pandas as pd

from ..data.synth import VERBS as SYNTH_VERBS
from ..data.synth import verb_kind

from .data import Splits

__all__ = ["REVERSAL_PAIRS", "KINDS", "reversal_pairs", "verb_kinds", "pair_kinds", "pairs_of_kind", "baselines",
           "pair_baselines"]

# Verb pairs that are time-reversals of each other, by class key (EK100 and the synthetic set).
REVERSAL_PAIRS: tuple[tuple[str, str], ...] = (
    ("take", "put"), ("open", "close"), ("turn-on", "turn-off"), ("push", "pull"),
    ("rotate-clockwise", "rotate-anticlockwise"), ("move-left", "move-right"),
)


def reversal_pairs(verbs: Sequence[str]) -> list[tuple[int, int, str]]:
    """(class id, class id, "a / b") of every reversal pair whose two verbs are both classes."""
    index = {k: i for i, k in enumerate(verbs)}
    return [(index[a], index[b], f"{a} / {b}") for a, b in REVERSAL_PAIRS if a in index and b in index]


KINDS = ("end state", "motion", "unpaired")  # the order every table by kind follows
_KNOWN = {v.key for v in SYNTH_VERBS}


def verb_kinds(verbs: Sequence[str]) -> list[str]:
    """Each verb's kind (`KINDS`), by key: its pair's kind in the embedded set's vocabulary
    (`evitvid.data.synth.verb_kind`), "unpaired" for a verb the vocabulary does not pair."""
    return [verb_kind(k) if k in _KNOWN else "unpaired" for k in verbs]


def pair_kinds(verbs: Sequence[str]) -> list[str]:
    """The kind (`KINDS`) of each pair of `reversal_pairs(verbs)`, in its order: its verbs'."""
    return verb_kinds([verbs[a] for a, _, _ in reversal_pairs(verbs)])


def pairs_of_kind(verbs: Sequence[str], kind: str) -> list[tuple[int, int, str]]:
    """The pairs of `reversal_pairs(verbs)` whose kind (`KINDS`) is `kind`, in their order."""
    return [pair for pair, k in zip(reversal_pairs(verbs), pair_kinds(verbs)) if k == kind]


def _counts(segments, attr: str) -> Counter:
    return Counter(getattr(s, attr) for s in segments)


def baselines(splits: Splits) -> pd.DataFrame:
    """One row per baseline: `baseline`, `verb`, `noun`, `action` accuracies on the validation
    split (fractions; NaN where a baseline does not apply)."""
    train, val = splits.train, splits.validation
    n = len(val)
    rows = []
    uniform = {"verb": 1 / len(splits.verbs), "noun": 1 / len(splits.nouns),
               "action": 1 / (len(splits.verbs) * len(splits.nouns))}
    rows.append({"baseline": "chance (uniform)", **uniform})
    prior, majority = {}, {}
    for head in ("verb", "noun", "action"):
        if head == "action":
            train_counts = Counter((s.verb_class, s.noun_class) for s in train)
            val_counts = Counter((s.verb_class, s.noun_class) for s in val)
        else:
            train_counts, val_counts = _counts(train, f"{head}_class"), _counts(val, f"{head}_class")
        total = sum(train_counts.values())
        prior[head] = sum(c / total * val_counts.get(k, 0) / n for k, c in train_counts.items())
        top = max(sorted(train_counts), key=train_counts.__getitem__)  # ties: the smallest class id
        majority[head] = val_counts.get(top, 0) / n
    rows.append({"baseline": "chance (training frequencies)", **prior})
    rows.append({"baseline": "majority class", **majority})
    verb_counts = _counts(val, "verb_class")
    pairs = reversal_pairs(splits.verbs)
    paired = {i for a, b, _ in pairs for i in (a, b)}
    ceiling = (sum(c for v, c in verb_counts.items() if v not in paired)
               + sum(max(verb_counts.get(a, 0), verb_counts.get(b, 0)) for a, b, _ in pairs)) / n
    rows.append({"baseline": "order-blind ceiling", "verb": ceiling, "noun": float("nan"), "action": float("nan")})
    return pd.DataFrame(rows)


def pair_baselines(splits: Splits) -> pd.DataFrame:
    """Per reversal pair present in validation: segments, the more frequent verb's share
    (what always answering it scores) and the balanced accuracy of any constant answer."""
    counts = _counts(splits.validation, "verb_class")
    rows = []
    for (a, b, name), kind in zip(reversal_pairs(splits.verbs), pair_kinds(splits.verbs)):
        na, nb = counts.get(a, 0), counts.get(b, 0)
        if na + nb:
            rows.append({"pair": name, "kind": kind, "segments": na + nb,
                         "majority": max(na, nb) / (na + nb), "constant_balanced": 0.5})
    return pd.DataFrame(rows)
