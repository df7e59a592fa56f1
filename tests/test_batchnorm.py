"""Batch norm's channels-last CPU training path (C++ kernels): equal to PyTorch's, in fp32 and float64."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from evitvid.models import batchnorm, kernels
from evitvid.models.batchnorm import BatchNorm2d, BatchNorm3d, BatchNormFunction


def _pair(dims, channels, affine=True, momentum=0.1, dtype=torch.float32):
    torch.manual_seed(0)
    ours = (BatchNorm3d if dims == 3 else BatchNorm2d)(channels, affine=affine, momentum=momentum).to(dtype)
    ref = (nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d)(channels, affine=affine, momentum=momentum).to(dtype)
    if affine:
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5)
            ours.bias.normal_()
    ref.load_state_dict(ours.state_dict())
    return ours.train(), ref.train()


def _input(dims, channels, dtype=torch.float32, scale=2.0, shift=3.0):
    shape = (4, channels, 3, 6, 5) if dims == 3 else (4, channels, 6, 5)
    x = torch.randn(shape, dtype=dtype) * scale + shift
    fmt = torch.channels_last_3d if dims == 3 else torch.channels_last
    return x.contiguous(memory_format=fmt).requires_grad_()


@pytest.fixture
def spy(monkeypatch):
    calls = []
    apply = BatchNormFunction.apply
    monkeypatch.setattr(BatchNormFunction, "apply", lambda *a: calls.append(1) or apply(*a))
    return calls


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("channels", [8, 37])  # one vector block; blocks and a remainder
@pytest.mark.parametrize("affine, momentum", [(True, 0.1), (False, 0.1), (True, None)])
def test_fast_batch_norm_equals_pytorchs(dims, channels, affine, momentum, spy):
    ours, ref = _pair(dims, channels, affine, momentum)
    for step in range(2):  # the running statistics over two batches (a cumulative average when momentum is None)
        x = _input(dims, channels, shift=3.0 + step)
        y, y_ref = ours(x), ref(x)
        assert y.is_contiguous(memory_format=torch.channels_last_3d if dims == 3 else torch.channels_last)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        grad = torch.randn_like(y)
        params, params_ref = list(ours.parameters()), list(ref.parameters())
        got = torch.autograd.grad(y, [x] + params, grad)
        want = torch.autograd.grad(y_ref, [x] + params_ref, grad)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)
    assert len(spy) == 2
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 2


@pytest.mark.parametrize("act", [nn.Hardswish, nn.ReLU])
def test_batch_norm_fused_with_its_activation_equals_the_two_apart(act, spy):
    ours, ref = _pair(3, 24)
    x = _input(3, 24, scale=2.0, shift=0.5)  # values on both sides of the activations' kinks
    y = batchnorm.norm_act(ours, act(inplace=True), x)
    y_ref = act()(ref(x))
    assert spy == [1]
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(y)
    got = torch.autograd.grad(y, [x, ours.weight, ours.bias], grad)
    want = torch.autograd.grad(y_ref, [x, ref.weight, ref.bias], grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(ours.running_var, ref.running_var)


@pytest.mark.parametrize("act", [nn.Hardswish, nn.ReLU])
def test_fused_batch_norm_lets_a_nan_through_as_pytorch_does(act):
    """A NaN in a channel makes its statistics NaN; the fused activation must not turn them
    into zeros (a diverged run has to show as one)."""
    ours, ref = _pair(3, 4)
    x = _input(3, 4).detach()
    x[0, 1, 0, 0, 0] = float("nan")
    y, y_ref = batchnorm.norm_act(ours, act(), x), act()(ref(x))
    assert torch.equal(y.isnan(), y_ref.isnan()) and y[:, 1].isnan().all()


@pytest.mark.parametrize("code", [1, 2])
def test_fused_batch_norm_passes_gradcheck(code):
    torch.manual_seed(0)
    x = (torch.randn(2, 3, 2, 3, 3, dtype=torch.float64) * 3).contiguous(memory_format=torch.channels_last_3d)
    w = torch.rand(3, dtype=torch.float64) + 0.5
    b = torch.randn(3, dtype=torch.float64)
    for t in (x, w, b):
        t.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, w, b: BatchNormFunction.apply(x.contiguous(memory_format=torch.channels_last_3d), w, b, 1e-5,
                                                code)[0], (x, w, b))


def test_activations_are_fused_only_on_the_fast_path(spy):
    ours, _ = _pair(3, 4)
    y = batchnorm.norm_act(ours.eval(), nn.Hardswish(), _input(3, 4))  # eval: PyTorch's norm, then the activation
    assert spy == [] and y.min() >= -0.375  # hardswish's minimum
    with pytest.raises(ValueError, match="fused activation needs the fast path"):
        ours(_input(3, 4), activation=2)


def test_fast_batch_norm_keeps_a_large_mean_accurate():
    """Activations far from zero (mean 1000, sd 0.01): a plain sum of squares would cancel in
    fp32, and so would normalising as x * scale + shift. The kernel's shifted sums in double
    and its centring by the mean split in two floats give the float64 reference's result to
    fp32 rounding (measured 5e-7; PyTorch's own batch norm is 2e-2 off here)."""
    ours, _ = _pair(3, 8)
    x = _input(3, 8, scale=0.01, shift=1000.0)
    y = ours(x)
    x64 = x.detach().double()
    mean = x64.mean(dim=(0, 2, 3, 4), keepdim=True)
    var = x64.var(dim=(0, 2, 3, 4), unbiased=False, keepdim=True)
    want = (x64 - mean) / torch.sqrt(var + ours.eps) * ours.weight.double().view(1, -1, 1, 1, 1) \
        + ours.bias.double().view(1, -1, 1, 1, 1)
    torch.testing.assert_close(y.double(), want, rtol=0, atol=1e-5)
    grad = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, [x], grad)
    x64.requires_grad_()
    y64 = torch.nn.functional.batch_norm(x64, None, None, ours.weight.double(), ours.bias.double(), True, 0.0,
                                         ours.eps)
    (dx64,) = torch.autograd.grad(y64, [x64], grad.double())
    torch.testing.assert_close(dx.double(), dx64, rtol=1e-4, atol=dx64.abs().max().item() * 1e-5)


def test_fast_batch_norm_passes_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 2, 3, 3, dtype=torch.float64).contiguous(memory_format=torch.channels_last_3d)
    w = torch.rand(3, dtype=torch.float64) + 0.5
    b = torch.randn(3, dtype=torch.float64)
    for t in (x, w, b):
        t.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, w, b: BatchNormFunction.apply(x.contiguous(memory_format=torch.channels_last_3d), w, b, 1e-5)[0],
        (x, w, b))


def test_fast_batch_norm_does_not_depend_on_the_thread_count():
    ours, _ = _pair(3, 16)
    x = _input(3, 16)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            y = ours(x)
            results.append([y] + list(torch.autograd.grad(y.square().sum(), [x, ours.weight, ours.bias])))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_fast_path_only_where_it_applies(spy):
    ours, _ = _pair(3, 4)
    contiguous = torch.randn(2, 4, 3, 5, 5)
    ours(contiguous)  # not channels-last: PyTorch's
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours(_input(3, 4))
    with kernels.cpu_fast_paths(False):  # the bench's reference
        ours(_input(3, 4))
    ours.eval()(_input(3, 4))  # running statistics: PyTorch's
    assert spy == []
    ours.train()(_input(3, 4))
    assert spy == [1]
    with pytest.raises(ValueError, match="more than 1 value per channel"):  # PyTorch's own error
        ours(torch.randn(1, 4, 1, 1, 1).contiguous(memory_format=torch.channels_last_3d))


def test_models_build_evitvid_batch_norms_with_pytorchs_state_dict():
    from evitvid.models import create_model
    model = create_model("efficientvit_b0_3d", num_verbs=5, num_nouns=3)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    assert norms and all(isinstance(m, batchnorm.BatchNorm3d) for m in norms)
    plain = nn.BatchNorm3d(norms[0].num_features)
    assert norms[0].state_dict().keys() == plain.state_dict().keys()
