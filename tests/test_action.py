"""Action scores: products of verb and noun probabilities over the top verbs and nouns."""
from __future__ import annotations

import itertools

import pytest
import torch

from evitvid.models import action_scores


def test_action_scores_match_brute_force():
    g = torch.Generator().manual_seed(0)
    verbs, nouns = torch.randn(3, 6, generator=g), torch.randn(3, 5, generator=g)
    got = action_scores(verbs, nouns, top_k=4)
    pv, pn = verbs.softmax(-1), nouns.softmax(-1)
    for b in range(3):
        # brute force over the top-4 verbs and nouns, as the EK100 challenge does
        tv, tn = pv[b].topk(4).indices.tolist(), pn[b].topk(4).indices.tolist()
        pairs = sorted(((pv[b, v] * pn[b, n]).item(), v, n) for v, n in itertools.product(tv, tn))[::-1][:4]
        assert got.verb[b].tolist() == [v for _, v, _ in pairs]
        assert got.noun[b].tolist() == [n for _, _, n in pairs]
        torch.testing.assert_close(got.scores[b], torch.tensor([s for s, _, _ in pairs]))


def test_top_action_is_the_top_verb_with_the_top_noun():
    verbs, nouns = torch.randn(8, 97), torch.randn(8, 300)
    got = action_scores(verbs, nouns, top_k=100)
    assert got.scores.shape == (8, 100)
    assert torch.equal(got.verb[:, 0], verbs.argmax(-1)) and torch.equal(got.noun[:, 0], nouns.argmax(-1))
    assert (got.scores[:, :-1] >= got.scores[:, 1:]).all()


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="B x V and B x N"):
        action_scores(torch.randn(2, 3), torch.randn(3, 4))
