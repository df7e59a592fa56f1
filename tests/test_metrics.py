"""EK100 metrics on hand-made predictions."""
from __future__ import annotations

import pytest
import torch

from evitvid.metrics import mean_class_accuracy, topk_correct, video_metrics


def one_hot_logits(pred: list[int], n: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(pred), n).float() * 5


def test_topk_and_mean_class_accuracy():
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    target = torch.tensor([0, 2, 2, 1])
    assert topk_correct(logits, target, 1).tolist() == [True, False, True, False]
    assert topk_correct(logits, target, 2).tolist() == [True, True, True, False]
    # class 0: 1/1, class 1: 0/1, class 2: 1/2 -> mean 0.5, while plain accuracy is also 0.5
    assert mean_class_accuracy(logits, target) == pytest.approx((1 + 0 + 0.5) / 3)
    long_tail = torch.tensor([0, 0, 0, 1])  # always predicting 0 is 75% accurate, 50% in class mean
    assert mean_class_accuracy(one_hot_logits([0, 0, 0, 0], 2), long_tail) == pytest.approx(0.5)


def test_action_needs_verb_and_noun():
    verb, noun = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 3, 2, 1])
    vl = one_hot_logits([0, 1, 2, 0], 5)   # verbs right for clips 0-2
    nl = one_hot_logits([4, 0, 2, 1], 6)   # nouns right for clips 0, 2, 3
    m = video_metrics(vl, nl, verb, noun)
    assert m["verb_top1"] == 0.75 and m["noun_top1"] == 0.75
    assert m["action_top1"] == 0.5  # clips 0 and 2
    assert m["verb_top5"] == 1.0 and m["action_top5"] >= m["action_top1"]
