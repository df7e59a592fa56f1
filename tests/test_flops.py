"""The params/GMACs command against the EfficientViT paper's published figures."""
from __future__ import annotations

import json

import pytest

from evitvid.cli import main
from evitvid.models.flops import model_cost


@pytest.mark.parametrize("resolution, published", [(224, 0.52), (288, 0.86)])
def test_b1_gmacs_match_the_published_figures(resolution, published):
    cost = model_cost("efficientvit_b1", (3, resolution, resolution))
    assert cost.gmacs == pytest.approx(published, abs=0.01)
    assert cost.params_m == pytest.approx(9.1, abs=0.05)


def test_3d_costs_more_than_frame_averaging_and_scales_with_frames():
    fa = model_cost("efficientvit_b1_frameavg", (3, 16, 224, 224))
    c8 = model_cost("efficientvit_b1_3d", (3, 8, 224, 224))
    c16 = model_cost("efficientvit_b1_3d", (3, 16, 224, 224))
    assert fa.gmacs == pytest.approx(16 * 0.52, rel=0.02)  # the 2D trunk on every frame
    assert c16.gmacs > fa.gmacs
    assert c16.gmacs == pytest.approx(2 * c8.gmacs, rel=0.02)  # linear in frames, no quadratic term


def test_flops_command_prints_table_and_json(capsys):
    assert main(["flops", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in rows} >= {"efficientvit_b1", "efficientvit_l1_3d"}
    assert main(["flops"]) == 0
    out = capsys.readouterr().out
    assert "GMACs" in out and "3x16x224x224" in out

