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
@pytest.mark.parametrize("batch", [1, 8])
def test_conv3d_goes_to_onednn_with_pytorchs_values_and_gradients(batch, channels_last, monkeypatch):
    torch.manual_seed(0)
    conv = layers.Conv3d(3, 8, 3, stride=(1, 2, 2), padding=1, bias=True)  # the 3D stem
    calls = []
    onednn = torch.mkldnn_convolution
    monkeypatch.setattr(torch, "mkldnn_convolution", lambda *a: calls.append(1) or onednn(*a))
    x = torch.randn(batch, 3, 4, 16, 16)
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
    depthwise = layers.Conv3d(8, 8, 3, padding=1, groups=8)
    depthwise(torch.randn(batch, 8, 4, 8, 8, requires_grad=True))  # training a depthwise kernel: its own path
    assert calls == [1]
    with torch.no_grad():
        depthwise(torch.randn(batch, 8, 4, 8, 8))
    assert calls == [1, 1]


@pytest.mark.parametrize("kernel, groups", [(1, 1), (3, 1), (1, 4)])
def test_conv3d_on_one_thread_keeps_channels_last_and_pytorchs_bits_at_batch_16(kernel, groups):
    """PyTorch sends a 1 x 1 x 1 convolution (dense, or grouped as LiteMLA's aggregation) of a
    batch under 16 on one thread to `slow_conv3d`, whose output is contiguous; at 16 it picks
    oneDNN itself, and the fast path then computes exactly what PyTorch does."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        conv = layers.set_conv_layout(layers.Conv3d(16, 32, kernel, padding=kernel // 2, groups=groups),
                                      channels_last=True)
        for batch in (8, 16):
            x = torch.randn(batch, 16, 4, 8, 8).contiguous(memory_format=torch.channels_last_3d).requires_grad_()
            y = conv(x)
            assert layers.is_channels_last(y), batch
            if batch == 16:
                y_ref = torch.nn.functional.conv3d(x, conv.weight, conv.bias, conv.stride, conv.padding,
                                                   groups=conv.groups)
                grad = torch.randn_like(y)
                got = torch.autograd.grad(y, (x, conv.weight, conv.bias), grad)
                want = torch.autograd.grad(y_ref, (x, conv.weight, conv.bias), grad)
                assert torch.equal(y, y_ref)
                assert all(torch.equal(a, b) for a, b in zip(got, want))
    finally:
        torch.set_num_threads(threads)
