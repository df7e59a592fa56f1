"""Every registered model at a tiny size and the model API (timm's tests/test_models.py)."""
from __future__ import annotations

import pytest
import torch

import evitvid
from evitvid.models import EfficientVit3d, EfficientVitFrameAvg, EfficientVitTsm, VideoLogits, get_model_entry
from evitvid.models.efficientvit import LiteMLA
from evitvid.models import layers
from evitvid.models.layers import ConvSpec

from _model_utils import calibrate_bn_

ALL = evitvid.list_models()
# the largest variant's four kinds take 3-4 s each even at the tiny input
CASES = [pytest.param(n, marks=pytest.mark.slow) if n.startswith("efficientvit_l3") else n for n in ALL]
B, T, S = 2, 4, 64


def _input(name: str) -> torch.Tensor:
    kind = get_model_entry(name).kind
    return torch.randn(B, 3, T, S, S) if kind != "image" else torch.randn(B, 3, S, S)


@pytest.mark.parametrize("name", CASES)
def test_forward_backward_tiny(name):
    torch.manual_seed(0)
    model = evitvid.create_model(name, **({} if get_model_entry(name).kind == "image" else
                                          {"num_verbs": 5, "num_nouns": 7}))
    model.train()
    x = _input(name)
    feats = model.forward_features(x)
    if x.ndim == 5:
        steps = model.time_steps(T)[-1] if isinstance(model, EfficientVit3d) else T
        assert feats.shape == (B, model.num_features, steps, S // 32, S // 32)
        out = model.forward_head(feats)
        assert isinstance(out, VideoLogits)
        assert out.verb.shape == (B, 5) and out.noun.shape == (B, 7)
        loss = out.verb.logsumexp(-1).sum() + out.noun.logsumexp(-1).sum()
        logits = torch.cat(out, dim=1)
    else:
        assert feats.shape == (B, model.num_features, S // 32, S // 32)
        logits = model.forward_head(feats)
        assert logits.shape == (B, 1000)
        loss = logits.logsumexp(-1).sum()
    assert torch.isfinite(logits).all()
    assert model.forward_head(feats, pre_logits=True).shape == (B, model.head_hidden_size)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without a gradient: {no_grad}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", ["efficientvit_b0", "efficientvit_b0_frameavg", "efficientvit_b0_tsm",
                                  "efficientvit_b0_3d"])
def test_reset_classifier(name):
    model = evitvid.create_model(name).eval()
    x = _input(name)
    if get_model_entry(name).kind == "image":
        model.reset_classifier(10)
        assert model(x).shape == (B, 10)
        model.reset_classifier(0)
        assert model(x).shape == (B, model.head_hidden_size)
    else:
        assert (model.num_verbs, model.num_nouns) == (97, 300)
        assert model(x).verb.shape == (B, 97) and model(x).noun.shape == (B, 300)
        model.reset_classifier(12, 34)
        out = model(x)
        assert out.verb.shape == (B, 12) and out.noun.shape == (B, 34)


@pytest.mark.parametrize("cls_name", ["efficientvit_b0_frameavg", "efficientvit_b0_tsm", "efficientvit_b0_3d"])
@pytest.mark.parametrize("frames", [1, 2, 4, 8, 16])
def test_video_models_take_any_number_of_frames(cls_name, frames):
    model = evitvid.create_model(cls_name, num_verbs=3, num_nouns=4).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, frames, 32, 32))
    assert out.verb.shape == (1, 3) and torch.isfinite(out.verb).all()


def test_video_models_reject_image_input():
    with pytest.raises(ValueError, match="B x C x T x H x W"):
        evitvid.create_model("efficientvit_b0_3d")(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("frames", [1, 2, 5, 8])
@pytest.mark.parametrize("channels_last", [False, True])
def test_frame_averaging_gives_identical_logits_for_a_clip_played_backwards(frames, channels_last):
    x = torch.randn(2, 3, frames, 32, 32)
    model = calibrate_bn_(evitvid.create_model("efficientvit_b0_frameavg", num_verbs=3, num_nouns=4), x)
    model.set_channels_last(channels_last)
    with torch.no_grad():
        a, b = model(x), model(x.flip(2))
    assert (a.verb[0] - a.verb[1]).abs().max() > 1e-3  # outputs depend on the input at all
    assert torch.equal(a.verb, b.verb) and torch.equal(a.noun, b.noun)  # bit for bit, not within rounding


@pytest.mark.parametrize("channels_last", [False, True])
def test_frame_averaging_splits_where_the_frames_meet(channels_last):
    """Each frame's features, then their classified mean: the model's forward bit for bit; and a
    frame's features do not depend on the frames beside it (in float64, to 1e-12: other batch
    shapes round otherwise)."""
    x = torch.randn(2, 3, 5, 32, 32)
    model = calibrate_bn_(evitvid.create_model("efficientvit_b0_frameavg", num_verbs=3, num_nouns=4), x)
    model.set_channels_last(channels_last)
    with torch.no_grad():
        whole, features = model(x), model.frame_features(x)
        split = model.classify_frames(features)
        model.double()
        together, alone = model.frame_features(x.double()), model.frame_features(x[:, :, 1:2].double())
    assert features.shape == (2, 5, model.head.in_conv.conv.out_channels)
    assert torch.equal(whole.verb, split.verb) and torch.equal(whole.noun, split.noun)
    torch.testing.assert_close(alone[:, 0], together[:, 1], rtol=0, atol=1e-12)


def test_frame_mean_is_the_mean_and_symmetric():
    from evitvid.models.efficientvit import frame_mean
    for frames in range(1, 10):
        x = torch.randn(3, frames, 7, dtype=torch.float64)
        torch.testing.assert_close(frame_mean(x), x.mean(dim=1), rtol=1e-12, atol=1e-12)
        x32 = torch.randn(3, frames, 7) * 1e3
        assert torch.equal(frame_mean(x32), frame_mean(x32.flip(1)))


def test_3d_model_sees_frame_order():
    x = torch.randn(2, 3, 5, 32, 32)
    model = calibrate_bn_(evitvid.create_model("efficientvit_b0_3d", num_verbs=3, num_nouns=4), x)
    with torch.no_grad():
        a, b = model(x), model(x.flip(2))
    assert (a.verb[0] - a.verb[1]).abs().max() > 1e-3  # outputs depend on the input at all
    assert (a.verb - b.verb).abs().max() > 1e-4


def test_3d_modules_mirror_2d_names():
    m2 = evitvid.create_model("efficientvit_b1_frameavg")
    m3 = evitvid.create_model("efficientvit_b1_3d")
    assert list(m2.state_dict()) == list(m3.state_dict())
    n3d = [n for n, m in m3.named_modules() if isinstance(m, torch.nn.Conv3d)]
    n2d = [n for n, m in m2.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert n3d == n2d and len(n3d) > 50
    assert not any(isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d)) for m in m3.modules())


def test_time_kernels_and_strides_per_stage():
    model = evitvid.create_model("efficientvit_b0_3d", time_kernels=(1, 3, 3, 5, 1), time_strides=(1, 2, 1, 1, 1))
    stem_conv = model.stem.in_conv.conv
    assert stem_conv.kernel_size == (1, 3, 3) and stem_conv.stride == (1, 2, 2)
    down = model.stages[0].blocks[0].main.depth_conv.conv  # the strided depthwise conv of stage 1
    assert down.kernel_size == (3, 3, 3) and down.stride == (2, 2, 2)
    assert model.stages[2].blocks[1].context_module.main.aggreg[0][0].kernel_size == (5, 5, 5)
    assert model.stages[3].blocks[0].main.depth_conv.conv.kernel_size == (1, 3, 3)
    assert model.stages[0].blocks[0].main.inverted_conv.conv.kernel_size == (1, 1, 1)
    feats = model.forward_features(torch.randn(1, 3, 8, 64, 64))
    assert feats.shape[2] == 4  # one time stride of 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(time_kernels=(3, 3, 3)), "time_kernels needs one entry for the stem and one per stage"),
    (dict(time_kernels=(3, 3, 2, 3, 3)), "entry 2 \\(stage 2\\).*odd"),
    (dict(time_strides=0), "time stride must be a positive integer"),
    (dict(time_padding="reflect"), "time_padding must be one of"),
])
def test_bad_3d_configuration_names_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evitvid.create_model("efficientvit_b0_3d", **kwargs)


@pytest.mark.parametrize("name", ["efficientvit_b0_3d", "efficientvit_b0_frameavg", "efficientvit_b0_tsm",
                                  "efficientvit_b0"])
def test_channels_last_changes_layout_not_values(name):
    torch.manual_seed(0)
    base = evitvid.create_model(name, **({} if get_model_entry(name).kind == "image" else dict(num_verbs=3,
                                                                                             num_nouns=4)))
    other = evitvid.create_model(name, **({} if get_model_entry(name).kind == "image" else dict(num_verbs=3,
                                                                                              num_nouns=4)))
    other.load_state_dict(base.state_dict())
    assert other.set_channels_last() is other and other.channels_last
    assert other.stem.in_conv.conv.weight.is_contiguous(memory_format=layers.channels_last_format(
        other.stem.in_conv.conv.weight.ndim))
    x = _input(name)
    seen = []
    for m in other.modules():
        if isinstance(m, LiteMLA):
            m.proj.register_forward_pre_hook(lambda mod, args: seen.append(layers.is_channels_last(args[0])))
    outs = []
    for model in (base, other):
        model.eval()  # fixed batch-norm statistics: train mode's tiny batches amplify rounding 1000-fold
        out = model(x)
        logits = out if isinstance(out, torch.Tensor) else out.verb
        logits.square().sum().backward()
        outs.append((logits, [p.grad for p in model.parameters()]))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-4, atol=1e-4)
    # all gradients as one vector: a few are zero up to rounding alone
    g0, g1 = (torch.cat([g.flatten() for g in grads if g is not None]) for _, grads in outs)
    assert (g0 - g1).norm() <= 1e-4 * g0.norm()
    assert seen and all(seen)  # LiteMLA hands its output on channels-last, without a layout change
    other.set_channels_last(False)
    assert all(m.weight.is_contiguous() for m in other.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))


@pytest.mark.parametrize("tokens", [4, 16, 40])
def test_lite_mla_quadratic_and_linear_forms_agree(tokens):
    torch.manual_seed(0)
    mla = LiteMLA(32, 32, dim=16, spec=ConvSpec(), norm_eps=1e-5)
    q, k, v = (torch.relu(torch.randn(2, 2, tokens, 16)) for _ in range(3))
    attn = mla._attn.__func__  # linear form above `dim` tokens, quadratic at or below
    att = q @ k.transpose(-1, -2)
    expected = (att @ v) / (att.sum(-1, keepdim=True) + mla.eps)
    torch.testing.assert_close(attn(mla, q, k, v), expected, atol=1e-5, rtol=1e-4)


def test_lite_mla_eps_scales_with_frames():
    """Over T x H x W tokens the normaliser is T times one frame's: eps follows, so T copies of
    a frame's tokens give that frame's attention exactly (in float64)."""
    torch.manual_seed(0)
    mla = LiteMLA(32, 32, dim=16, spec=ConvSpec(), norm_eps=1e-5).double()
    q, k, v = (torch.relu(torch.randn(1, 2, 6, 16, dtype=torch.float64)) * 1e-3 for _ in range(3))
    one = mla._attn(q, k, v)
    four = mla._attn(q.repeat(1, 1, 4, 1), k.repeat(1, 1, 4, 1), v.repeat(1, 1, 4, 1), frames=4)
    torch.testing.assert_close(four[..., :6, :], one, rtol=1e-12, atol=0)
    unscaled = mla._attn(q.repeat(1, 1, 4, 1), k.repeat(1, 1, 4, 1), v.repeat(1, 1, 4, 1), frames=1)
    assert (unscaled[..., :6, :] - one).abs().max() > 1e-6  # the small values make eps matter


def test_lite_mla_keeps_float64(monkeypatch):
    model = evitvid.create_model("efficientvit_b0_3d", num_verbs=3, num_nouns=4).double().eval()
    seen = []
    original = LiteMLA._attn
    monkeypatch.setattr(LiteMLA, "_attn", lambda self, q, k, v, frames=1: seen.append(q.dtype)
                        or original(self, q, k, v, frames))
    with torch.no_grad():
        model(torch.randn(1, 3, 4, 64, 64, dtype=torch.float64))
    assert seen and all(dt == torch.float64 for dt in seen)


def test_lite_mla_runs_attention_in_fp32_under_bf16_autocast(monkeypatch):
    model = evitvid.create_model("efficientvit_b0_3d", num_verbs=3, num_nouns=4).eval()
    seen = []
    original = LiteMLA._attn

    def spy(self, q, k, v, frames=1):
        seen.append((q.dtype, torch.is_autocast_enabled("cpu")))
        return original(self, q, k, v, frames)

    monkeypatch.setattr(LiteMLA, "_attn", spy)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(1, 3, 4, 64, 64))
    assert seen and all(dt == torch.float32 and not autocast for dt, autocast in seen)
    assert out.verb.dtype == torch.bfloat16 and torch.isfinite(out.verb.float()).all()


def test_model_classes():
    assert isinstance(evitvid.create_model("efficientvit_l1_3d"), EfficientVit3d)
    assert isinstance(evitvid.create_model("efficientvit_l1_frameavg"), EfficientVitFrameAvg)
    # not a frame-averaging model: its frames meet, so it has no frame_features of frames alone
    tsm = evitvid.create_model("efficientvit_l1_tsm")
    assert isinstance(tsm, EfficientVitTsm) and not isinstance(tsm, EfficientVitFrameAvg)


def test_drop_path_drops_residual_branches_in_training_only():
    torch.manual_seed(0)
    plain = evitvid.create_model("efficientvit_b0_3d", num_verbs=3, num_nouns=4)
    dropped = evitvid.create_model("efficientvit_b0_3d", num_verbs=3, num_nouns=4, drop_path_rate=0.5)
    assert plain.state_dict().keys() == dropped.state_dict().keys()  # no parameters of its own
    dropped.load_state_dict(plain.state_dict())
    rates = [b.drop_path.drop_prob for b in dropped._shortcut_blocks()[1:]]
    assert rates == sorted(rates) and rates[-1] == 0.5  # rising to the rate at the last block
    x = torch.randn(2, 3, 4, 32, 32)
    plain.eval(), dropped.eval()
    with torch.no_grad():
        assert torch.equal(plain(x).verb, dropped(x).verb)
        dropped.train(), plain.train()
        torch.manual_seed(1)
        assert not torch.allclose(plain(x).verb, dropped(x).verb)
    with pytest.raises(ValueError, match="drop_path_rate"):
        evitvid.create_model("efficientvit_b0", drop_path_rate=1.0)
