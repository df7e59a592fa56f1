"""ONNX export of the 3D model: onnxruntime's outputs match PyTorch's (atol 1e-4)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import evitvid
from evitvid.inference import export_onnx, onnx_session, run_onnx

SHAPE = (3, 4, 64, 64)


@pytest.mark.parametrize("time_padding", ["zeros", "replicate"])
def test_3d_model_exports_and_matches_pytorch(tmp_path, time_padding):
    torch.manual_seed(0)
    model = evitvid.create_model("efficientvit_b0_3d", time_padding=time_padding).eval()
    # Non-trivial batch-norm statistics, so the check covers the folded norms too.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = export_onnx(model, tmp_path / "b0.onnx", SHAPE)
    session = onnx_session(path, threads=1)
    assert [o.name for o in session.get_outputs()] == ["verb", "noun"]
    clip = torch.randn(1, *SHAPE)
    out = run_onnx(session, clip)
    with torch.no_grad():
        ref = model(clip)
    np.testing.assert_allclose(out["verb"], ref.verb.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["noun"], ref.noun.numpy(), atol=1e-4, rtol=0)
    assert out["verb"].shape == (1, 97) and out["noun"].shape == (1, 300)


def test_batch_dimension_is_dynamic(tmp_path):
    model = evitvid.create_model("efficientvit_b0_3d").eval()
    session = onnx_session(export_onnx(model, tmp_path / "b0.onnx", SHAPE), threads=1)
    clip = torch.randn(2, *SHAPE)
    with torch.no_grad():
        ref = model(clip)
    np.testing.assert_allclose(run_onnx(session, clip)["verb"], ref.verb.numpy(), atol=1e-4, rtol=0)


def test_export_restores_training_mode(tmp_path):
    model = evitvid.create_model("efficientvit_b0_3d").train()
    export_onnx(model, tmp_path / "b0.onnx", SHAPE)
    assert model.training


def test_channels_last_model_exports_and_stays_channels_last(tmp_path):
    model = evitvid.create_model("efficientvit_b0_3d").eval().set_channels_last()
    session = onnx_session(export_onnx(model, tmp_path / "b0.onnx", SHAPE), threads=1)
    clip = torch.randn(1, *SHAPE)
    with torch.no_grad():
        ref = model(clip)
    np.testing.assert_allclose(run_onnx(session, clip)["verb"], ref.verb.numpy(), atol=1e-4, rtol=0)
    assert model.channels_last and not model.stem.in_conv.conv.weight.is_contiguous()
