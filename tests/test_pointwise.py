"""1 x 1 x 1 convolutions trained on one thread at small batches: oneDNN forward, matrix-product
backward, gradients equal to the exact sums and laid out channels-last."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from evitvid.models import layers
from evitvid.models.pointwise import PointwiseConvFunction, takes_slow_path


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("sliced_grad", [False, True])
def test_pointwise_backward_equals_the_exact_sums_and_stays_channels_last(groups, bias, sliced_grad, one_thread,
                                                                          monkeypatch):
    torch.manual_seed(0)
    conv = layers.set_conv_layout(layers.Conv3d(8, 12, 1, groups=groups, bias=bias), channels_last=True)
    x = torch.randn(3, 8, 2, 5, 5).contiguous(memory_format=torch.channels_last_3d).requires_grad_()
    calls = []
    apply = PointwiseConvFunction.apply
    monkeypatch.setattr(PointwiseConvFunction, "apply", lambda *a: calls.append(1) or apply(*a))
    y = conv(x)
    assert calls == [1] and layers.is_channels_last(y)
    grad = torch.randn(3, 24, 2, 5, 5).contiguous(memory_format=torch.channels_last_3d)
    # a channel slice of a wider gradient, as the backward of LiteMLA's concatenation gives
    grad = grad[:, 6:18] if sliced_grad else grad[:, :12].contiguous()
    params = [x, conv.weight] + ([conv.bias] if bias else [])
    got = torch.autograd.grad(y, params, grad)
    assert layers.is_channels_last(got[0])
    assert got[1].stride() == conv.weight.stride()
    exact = [p.detach().double().requires_grad_() for p in params]
    y64 = F.conv3d(exact[0], exact[1], exact[2] if bias else None, groups=groups)
    torch.testing.assert_close(y.double(), y64.detach(), rtol=1e-5, atol=1e-5)
    want = torch.autograd.grad(y64, exact, grad.double())
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-5)


def test_pointwise_path_only_where_pytorch_would_take_slow_conv3d(one_thread):
    pointwise = layers.Conv3d(8, 8, 1)
    small, large = torch.randn(8, 8, 2, 4, 4), torch.randn(16, 8, 2, 4, 4)
    assert takes_slow_path(small, pointwise) and not takes_slow_path(large, pointwise)
    assert not takes_slow_path(small, layers.Conv3d(8, 8, 3, padding=1))
    assert not takes_slow_path(small, layers.Conv3d(8, 8, 1, stride=(1, 2, 2)))
    torch.set_num_threads(2)
    assert not takes_slow_path(small, pointwise)


def test_a_training_step_on_one_thread_at_batch_8_has_pytorchs_gradients(one_thread, monkeypatch):
    """The whole 3D model: its gradients with the pointwise backward against the same model with
    PyTorch's backward (`slow_conv3d`) for those convolutions, every other path the same."""
    from evitvid.models import create_model
    calls = []
    apply = PointwiseConvFunction.apply
    monkeypatch.setattr(PointwiseConvFunction, "apply", lambda *a: calls.append(a[3]) or apply(*a))
    torch.manual_seed(0)
    model = create_model("efficientvit_b0_3d", num_verbs=5, num_nouns=3)
    model.set_channels_last()
    x = torch.randn(8, 3, 4, 64, 64).contiguous(memory_format=torch.channels_last_3d)
    grads = []
    for pointwise in (True, False):
        if not pointwise:
            monkeypatch.setattr(layers, "takes_slow_path", lambda *a: False)
        model.zero_grad(set_to_none=True)
        verb, noun = model(x)
        (verb.square().mean() + noun.square().mean()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert 1 in calls and any(groups > 1 for groups in calls)  # dense and grouped (LiteMLA's aggregation)
    for name, want in grads[1].items():
        torch.testing.assert_close(grads[0][name], want, rtol=1e-4, atol=1e-6, msg=name)
