"""Depthwise 2D and 3D convolutions with fast CPU gradients: equal to PyTorch's, in fp32 and float64."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from evitvid.models import depthwise, kernels, layers
from evitvid.models.depthwise import DepthwiseConvFunction, weight_grad


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
    apply = DepthwiseConvFunction.apply
    monkeypatch.setattr(DepthwiseConvFunction, "apply", lambda *a: calls.append(1) or apply(*a))
    y = conv(x)
    grad = torch.randn_like(y)
    fast = torch.autograd.grad(y, [x, conv.weight] + ([conv.bias] if bias else []), grad)
    assert calls == [1]

    def reference(x, weight, bias):  # PyTorch's own convolution, time padding included
        xp = F.pad(x, (0, 0, 0, 0, time_pad, time_pad), mode="replicate") if time_pad else x
        return F.conv3d(xp, weight, bias, 1, padding, 1, 6)

    torch.testing.assert_close(y, reference(x, conv.weight, conv.bias))
    # Gradients against the exact sums (PyTorch's, in float64), not PyTorch's fp32, whose own
    # rounding depends on the CPU's kernels (an 810-term weight sum differed by 2e-5 on an AMD EPYC).
    x64, w64 = x.detach().double().requires_grad_(), conv.weight.detach().double().requires_grad_()
    b64 = conv.bias.detach().double().requires_grad_() if bias else None
    exact = torch.autograd.grad(reference(x64, w64, b64), [x64, w64] + ([b64] if bias else []), grad.double())
    for a, b in zip(fast, exact):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=2e-7 * b.abs().max().item())


def test_depthwise_conv3d_fast_backward_passes_gradcheck():
    torch.manual_seed(0)
    conv = layers.Conv3d(3, 3, (3, 3, 3), padding=(1, 1, 1), groups=3, bias=True).double()
    x = torch.randn(1, 3, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    assert conv._fast_depthwise(x)
    assert torch.autograd.gradcheck(lambda x, w, b: DepthwiseConvFunction.apply(x, w, b, (1, 1, 1), (1, 1, 1)),
                                    (x, conv.weight, conv.bias))


def test_depthwise_conv3d_fast_path_only_where_it_applies(monkeypatch):
    calls = []
    apply = DepthwiseConvFunction.apply
    monkeypatch.setattr(DepthwiseConvFunction, "apply", lambda *a: calls.append(1) or apply(*a))
    x = torch.randn(1, 4, 3, 8, 8)
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
    layers.Conv3d(4, 4, 3, stride=(1, 2, 2), padding=1, groups=4)(x)  # strided: PyTorch's input gradient
    assert calls == [1, 1]
    with kernels.cpu_fast_paths(False):  # the bench's reference: PyTorch's kernels only
        layers.Conv3d(4, 4, 3, padding=1, groups=4)(x)
    assert calls == [1, 1]
    layers.Conv3d(4, 4, 3, padding=1, groups=4)(x)  # and back on after the block
    assert calls == [1, 1, 1]


def _reference_weight_grad(x, grad, kernel, stride, padding):
    weight = torch.empty(x.shape[1], 1, *kernel, dtype=x.dtype)
    return torch.ops.aten.convolution_backward(grad, x, weight, None, list(stride), list(padding), [1, 1, 1],
                                               False, [0, 0, 0], x.shape[1], [False, True, False])[1]


@pytest.mark.parametrize("channels, frames, size, kernel, stride, padding", [
    (6, 5, 9, (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    (384, 8, 2, (3, 5, 5), (1, 1, 1), (1, 2, 2)),   # B0 stage 4's aggregation: most taps see padding
    (16, 4, 8, (3, 3, 3), (1, 2, 2), (1, 1, 1)),    # a stage's first, strided, depthwise conv
    (8, 6, 7, (3, 3, 3), (2, 2, 2), (1, 1, 1)),     # odd sizes, time stride
    (5, 3, 6, (1, 5, 5), (1, 1, 1), (0, 2, 2)),     # no time kernel
    (8, 4, 20, (3, 3, 3), (1, 2, 2), (1, 1, 1)),    # rows summed in registers (few channels, wide map), strided
    (12, 3, 10, (1, 5, 5), (1, 1, 1), (0, 2, 2)),   # the same with a block of 8 channels and 4 more
])
def test_cpu_kernel_weight_grad_equals_pytorchs(channels, frames, size, kernel, stride, padding):
    assert kernels.available()
    torch.manual_seed(0)
    x = torch.randn(3, channels, frames, size, size).contiguous(memory_format=torch.channels_last_3d)
    out = F.conv3d(x, torch.zeros(channels, 1, *kernel), None, stride, padding, 1, channels)
    grad = torch.randn_like(out).contiguous(memory_format=torch.channels_last_3d)
    got = weight_grad(x, grad, kernel, stride, padding)
    want = _reference_weight_grad(x, grad, kernel, stride, padding)
    assert got.shape == want.shape == (channels, 1, *kernel)
    # The fp32 result against the exact sums (PyTorch's in float64), not against PyTorch's fp32:
    # each tap sums up to 1,200 products of magnitude up to 110, where PyTorch's own fp32 result
    # is up to 7e-5 (6e-7 of the largest) off the exact one, the kernel's 1e-5 (9e-8 of it).
    exact = _reference_weight_grad(x.double(), grad.double(), kernel, stride, padding)
    torch.testing.assert_close(got.double(), exact, rtol=1e-5, atol=2e-7 * exact.abs().max().item())
    # float64: the same sums in another order, equal to rounding
    got64 = weight_grad(x.double(), grad.double(), kernel, stride, padding)
    torch.testing.assert_close(got64, exact, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels, frames, size, kernel, stride, padding", [
    (16, 4, 8, (3, 3, 3), (1, 2, 2), (1, 1, 1)),    # a stage's first, strided, depthwise conv
    (8, 6, 7, (3, 3, 3), (2, 2, 2), (1, 1, 1)),     # odd sizes, time stride
    (384, 8, 2, (3, 5, 5), (1, 1, 1), (1, 2, 2)),   # stride 1 works too
    (4, 5, 9, (3, 5, 5), (1, 2, 2), (1, 2, 2)),
])
def test_cpu_kernel_input_grad_equals_pytorchs(channels, frames, size, kernel, stride, padding):
    from evitvid.models.depthwise import input_grad
    torch.manual_seed(0)
    x = torch.randn(3, channels, frames, size, size).contiguous(memory_format=torch.channels_last_3d)
    w = torch.randn(channels, 1, *kernel)
    out = F.conv3d(x, w, None, stride, padding, 1, channels)
    grad = torch.randn_like(out).contiguous(memory_format=torch.channels_last_3d)
    want = torch.ops.aten.convolution_backward(grad, x, w, None, list(stride), list(padding), [1, 1, 1], False,
                                               [0, 0, 0], channels, [True, False, False])[0]
    got = input_grad(grad, w, x, stride, padding)
    assert got.shape == x.shape and got.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    got64 = input_grad(grad.double(), w.double(), x.double(), stride, padding)
    want64 = torch.ops.aten.convolution_backward(grad.double(), x.double(), w.double(), None, list(stride),
                                                 list(padding), [1, 1, 1], False, [0, 0, 0], channels,
                                                 [True, False, False])[0]
    torch.testing.assert_close(got64, want64, rtol=1e-12, atol=1e-12)


def test_cpu_kernel_weight_grad_does_not_depend_on_the_thread_count():
    torch.manual_seed(1)
    x = torch.randn(4, 32, 6, 10, 10).contiguous(memory_format=torch.channels_last_3d)
    grad = torch.randn_like(x)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(weight_grad(x, grad, (3, 3, 3), (1, 1, 1), (1, 1, 1)))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0], results[1])


def test_contiguous_tensors_take_pytorchs_weight_grad(monkeypatch):
    x = torch.randn(2, 4, 3, 6, 6)
    grad = torch.randn_like(x)
    monkeypatch.setattr(kernels, "_kernels", None)
    monkeypatch.setattr(kernels, "_error", "disabled by the test")  # kernels unusable: PyTorch's
    torch.testing.assert_close(weight_grad(x.contiguous(memory_format=torch.channels_last_3d), grad, (3, 3, 3),
                                           (1, 1, 1), (1, 1, 1)),
                               _reference_weight_grad(x, grad, (3, 3, 3), (1, 1, 1), (1, 1, 1)))


@pytest.mark.parametrize("stride", [(1, 1, 1), (1, 2, 2)])
def test_fast_path_passes_gradcheck_channels_last(stride, monkeypatch):
    """float64 gradcheck through the C++ weight gradient (channels-last input)."""
    torch.manual_seed(0)
    w = torch.randn(3, 1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 3, 3, 5, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last_3d)
    x.requires_grad_()
    calls = []
    original = depthwise.weight_grad

    def spy(*args):
        calls.append(kernels.rows_view(args[0]) is not None)
        return original(*args)
    monkeypatch.setattr(depthwise, "weight_grad", spy)
    assert torch.autograd.gradcheck(
        lambda x, w, b: DepthwiseConvFunction.apply(x.contiguous(memory_format=torch.channels_last_3d), w, b,
                                                      stride, (1, 1, 1)), (x, w, b))
    assert calls and all(calls)  # the C++ path ran


@pytest.mark.parametrize("channels, size, kernel, stride", [
    (6, 9, 3, 1), (16, 8, 3, 2), (8, 20, 5, 1), (384, 2, 5, 1), (12, 11, 5, 2)])
@pytest.mark.parametrize("bias", [False, True])
def test_depthwise_conv2d_fast_backward_matches_pytorch(channels, size, kernel, stride, bias, monkeypatch):
    """A 2D depthwise layer goes through the 3D kernels as a clip of one frame: its gradients are
    PyTorch's conv2d gradients, and the C++ weight gradient is within rounding of the exact sums."""
    torch.manual_seed(0)
    conv = layers.Conv2d(channels, channels, kernel, stride, padding=kernel // 2, groups=channels, bias=bias)
    conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
    x = torch.randn(3, channels, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
    calls = []
    apply = DepthwiseConvFunction.apply
    monkeypatch.setattr(DepthwiseConvFunction, "apply", lambda *a: calls.append(1) or apply(*a))
    params = [x, conv.weight] + ([conv.bias] if bias else [])
    y = conv(x)
    assert calls == [1] and y.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(y)
    fast = torch.autograd.grad(y, params, grad)
    assert fast[0].shape == x.shape and fast[1].shape == conv.weight.shape
    y_ref = F.conv2d(x, conv.weight, conv.bias, stride, kernel // 2, 1, channels)
    ref = torch.autograd.grad(y_ref, params, grad)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    w64 = conv.weight.detach().double().requires_grad_()
    exact = torch.autograd.grad(F.conv2d(x.detach().double(), w64, None, stride, kernel // 2, 1, channels), w64,
                                grad.double())[0]
    torch.testing.assert_close(fast[0], ref[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast[1].double(), exact, rtol=1e-5, atol=2e-7 * exact.abs().max().item())
    if bias:
        torch.testing.assert_close(fast[2], ref[2])


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv2d_fast_path_passes_gradcheck(stride, monkeypatch):
    """float64 gradcheck of the 2D layer through the C++ kernels (channels-last input)."""
    torch.manual_seed(0)
    conv = layers.Conv2d(3, 3, 3, stride, padding=1, groups=3, bias=True).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    assert conv._fast_depthwise(x)
    calls = []
    original = depthwise.weight_grad

    def spy(*args):
        calls.append(kernels.rows_view(args[0].unsqueeze(2)) is not None)
        return original(*args)
    monkeypatch.setattr(depthwise, "weight_grad", spy)
    assert torch.autograd.gradcheck(
        lambda x, w, b: DepthwiseConvFunction.apply(x.contiguous(memory_format=torch.channels_last), w, b,
                                                    (stride, stride), (1, 1)), (x, conv.weight, conv.bias))
    assert calls and all(calls)


def test_the_2d_model_is_built_from_the_fast_conv2d():
    from evitvid.models import create_model
    net = create_model("efficientvit_b0", num_classes=10)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(isinstance(m, layers.Conv2d) for m in convs)
    assert any(m.groups == m.in_channels > 1 for m in convs)  # it has depthwise layers to speed up
