"""2D-or-3D convolutions (`ConvSpec`), time padding, memory layouts and the 3D fast paths."""
from __future__ import annotations

import pytest
import torch

from evitvid.models import layers
from evitvid.models.layers import ConvSpec


def test_replicate_padding_uses_replicate_only_in_time():
    spec = ConvSpec(dims=3, time_kernel=3, time_padding="replicate")
    conv = spec.conv(2, 2, 3)
    assert conv.padding == (0, 1, 1) and conv.time_pad == 1
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.ones(1, 2, 2, 4, 4)
    y = conv(x)
    assert y.shape == x.shape
    # corners: 3 time taps (replicated) x 4 of 9 spatial taps (zero padded) x 2 channels
    assert y[0, 0, 0, 0, 0].item() == pytest.approx(3 * 4 * 2)


@pytest.mark.parametrize("channels_last", [False, True])
def test_single_clip_dense_conv3d_goes_to_onednn_with_pytorchs_values_and_gradients(channels_last, monkeypatch):
    torch.manual_seed(0)
    conv = layers.Conv3d(3, 8, 3, stride=(1, 2, 2), padding=1, bias=True)  # the 3D stem
    calls = []
    onednn = torch.mkldnn_convolution
    monkeypatch.setattr(torch, "mkldnn_convolution", lambda *a: calls.append(1) or onednn(*a))
    x = torch.randn(1, 3, 4, 16, 16)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    x.requires_grad_()
    y = conv(x)
    assert calls == [1]
    y_ref = torch.nn.functional.conv3d(x, conv.weight, conv.bias, conv.stride, conv.padding)
    grad = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, conv.weight, conv.bias), grad)
    want = torch.autograd.grad(y_ref, (x, conv.weight, conv.bias), grad)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    conv(torch.randn(2, 3, 4, 16, 16))  # a batch: PyTorch's own choice
    assert calls == [1]
