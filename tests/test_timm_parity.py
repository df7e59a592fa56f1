"""Our 2D EfficientViT against timm 1.0.31's, the oracle: same state-dict keys and shapes,
logits within 1e-4 (fp32, eval) at the paper's resolutions. timm is a test dependency only."""
from __future__ import annotations

import pytest
import torch

import evitvid

from _model_utils import randomize_

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("size", ["b0", "b1", "b2", "b3", "l1", "l2", "l3"])
def test_state_dict_keys_and_shapes_equal_timm(size):
    with torch.device("meta"):
        ours = evitvid.create_model(f"efficientvit_{size}").state_dict()
        theirs = timm.create_model(f"efficientvit_{size}").state_dict()
    assert list(ours) == list(theirs)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


@pytest.mark.parametrize("size", ["b1", "l1"])
@pytest.mark.parametrize("resolution", [224, 288])
def test_logits_match_timm(size, resolution):
    reference = randomize_(timm.create_model(f"efficientvit_{size}"), seed=resolution).eval()
    model = evitvid.create_model(f"efficientvit_{size}").eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert expected.std() > 1e-2  # the comparison is not between two constants
    assert (expected - got).abs().max().item() <= 1e-4
