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


@pytest.mark.parametrize("padding, time_pad, kernel", [((1, 1, 1), 0, 3), ((1, 2, 2), 0, 5), ((0, 1, 1), 1, 3)])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_depthwise_conv3d_fast_backward_matches_pytorch(padding, time_pad, kernel, bias, channels_last, monkeypatch):
    torch.manual_seed(0)
    kw = dict(time_pad=time_pad) if time_pad else {}
    cls = layers.TimeReplicateConv3d if time_pad else layers.Conv3d
    conv = cls(6, 6, (3, kernel, kernel), padding=padding, groups=6, bias=bias, **kw)
    x = torch.randn(2, 6, 5, 9, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    x.requires_grad_()
    calls = []
    apply = layers._DepthwiseConv3dFunction.apply
    monkeypatch.setattr(layers._DepthwiseConv3dFunction, "apply", lambda *a: calls.append(1) or apply(*a))
    y = conv(x)
    grad = torch.randn_like(y)
    fast = torch.autograd.grad(y, [x, conv.weight] + ([conv.bias] if bias else []), grad)
    assert calls == [1]
    xp = torch.nn.functional.pad(x, (0, 0, 0, 0, time_pad, time_pad), mode="replicate") if time_pad else x
    y_ref = torch.nn.functional.conv3d(xp, conv.weight, conv.bias, 1, padding, 1, 6)
    ref = torch.autograd.grad(y_ref, [x, conv.weight] + ([conv.bias] if bias else []), grad)
    torch.testing.assert_close(y, y_ref)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_depthwise_conv3d_fast_backward_passes_gradcheck():
    torch.manual_seed(0)
    conv = layers.Conv3d(3, 3, (3, 3, 3), padding=(1, 1, 1), groups=3, bias=True).double()
    x = torch.randn(1, 3, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    assert conv._fast_depthwise(x)
    assert torch.autograd.gradcheck(lambda x, w, b: layers._DepthwiseConv3dFunction.apply(x, w, b, (1, 1, 1)),
                                    (x, conv.weight, conv.bias))


def test_depthwise_conv3d_fast_path_only_where_it_applies(monkeypatch):
    calls = []
    apply = layers._DepthwiseConv3dFunction.apply
    monkeypatch.setattr(layers._DepthwiseConv3dFunction, "apply", lambda *a: calls.append(1) or apply(*a))
    x = torch.randn(1, 4, 3, 8, 8)
    layers.Conv3d(4, 4, 3, stride=(1, 2, 2), padding=1, groups=4)(x)  # strided
    layers.Conv3d(4, 8, 3, padding=1, groups=4)(x)  # grouped, not depthwise
    layers.Conv3d(4, 4, 1, groups=1)(x)  # dense
    with torch.no_grad():
        layers.Conv3d(4, 4, 3, padding=1, groups=4)(x)  # inference
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layers.Conv3d(4, 4, 3, padding=1, groups=4)(x)  # autocast: PyTorch's own path
    layers.Conv3d(4, 4, 3, padding=3, groups=4)(x)  # padding >= kernel: no flipped-kernel equivalent
    frozen = layers.Conv3d(4, 4, 3, padding=1, groups=4).requires_grad_(False)
    frozen(x)  # nothing to differentiate
    assert calls == []
    layers.Conv3d(4, 4, 3, padding=1, groups=4)(x)
    assert calls == [1]


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
