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


def test_marginals_sum_the_softmax_of_the_actions_sharing_a_verb_or_noun():
    from evitvid.models.action import ActionClasses, marginal_log_probs
    classes = ActionClasses([(0, 1), (2, 1), (0, 0), (1, 2)])  # no action has verb 3
    logits = torch.randn(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = logits.softmax(-1)
    verb = marginal_log_probs(logits, classes.verbs, 4).exp()
    assert torch.allclose(verb[:, 0], p[:, 0] + p[:, 2]) and torch.allclose(verb[:, 2], p[:, 1])
    assert torch.allclose(verb.sum(-1), torch.ones(2, dtype=torch.float64))
    assert torch.isfinite(marginal_log_probs(logits, classes.verbs, 4)).all()  # verb 3: finite, not -inf
    noun = marginal_log_probs(logits, classes.nouns, 3).exp()
    assert torch.allclose(noun[:, 1], p[:, 0] + p[:, 1])
    assert classes.index(torch.tensor([2, 1]), torch.tensor([1, 2])).tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"\(verb 3, noun 0\) is not one of the 4 action classes"):
        classes.index(torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(ValueError, match="listed twice"):
        ActionClasses([(0, 1), (0, 1)])


def test_a_video_model_with_an_action_head():
    import evitvid
    from evitvid.models import ActionLogits
    pairs = [(0, 1), (2, 1), (0, 0), (1, 2)]
    model = evitvid.create_model("efficientvit_b0_frameavg", num_verbs=3, num_nouns=3, actions=pairs).eval()
    out = model(torch.randn(2, 3, 2, 32, 32))
    assert isinstance(out, ActionLogits) and out.action.shape == (2, 4)
    assert out.verb.shape == (2, 3) and torch.allclose(out.verb.exp().sum(-1), torch.ones(2))
    assert set(model.get_classifier()) == {"action"} and "head.verb.weight" not in model.state_dict()
    with pytest.raises(ValueError, match="num_verbs=2"):
        evitvid.create_model("efficientvit_b0_3d", num_verbs=2, num_nouns=3, actions=pairs)
