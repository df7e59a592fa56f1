"""The TSM model (`EfficientVitTsm`, Lin, Gan and Han, ICCV 2019): frame averaging's weights and
cost, the shift itself on hand-built tensors, order-awareness, and loading 2D checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import evitvid
from evitvid.models import EfficientVitFrameAvg, EfficientVitTsm, get_model_entry
from evitvid.models.inflate import is_classifier_key
from evitvid.models.efficientvit import TemporalShift, temporal_shift
from evitvid.models.flops import count_params, model_cost

from _model_utils import calibrate_bn_, randomize_

SIZES = ["b0", "b1", "b2", "b3", "l1", "l2", "l3"]
B, T, S = 2, 4, 32


def _pair(size: str = "b0", seed: int = 0, **tsm_kwargs) -> tuple[EfficientVitTsm, EfficientVitFrameAvg]:
    """A TSM model and a frame-averaging model with the same random weights, batch norms
    calibrated on one clip (so outputs depend on the input), in eval mode."""
    x = torch.randn(B, 3, T, S, S, generator=torch.Generator().manual_seed(seed))
    fa = calibrate_bn_(randomize_(evitvid.create_model(f"efficientvit_{size}_frameavg", num_verbs=3, num_nouns=4),
                                  seed=seed), x)
    tsm = evitvid.create_model(f"efficientvit_{size}_tsm", num_verbs=3, num_nouns=4, **tsm_kwargs)
    tsm.load_state_dict(fa.state_dict(), strict=True)
    return tsm.eval(), fa


# ------------------------------------------------------------------ the shift


def _clip_tensor(frames: int, channels: int, clips: int = 1) -> torch.Tensor:
    """(clips * frames) x channels x 1 x 1, value 100 * clip + 10 * frame + channel + 1 (never 0)."""
    c, t, ch = np.meshgrid(np.arange(clips), np.arange(frames), np.arange(channels), indexing="ij")
    return torch.tensor(100 * c + 10 * t + ch + 1, dtype=torch.float32).reshape(clips * frames, channels, 1, 1)


def test_shift_moves_one_fold_back_and_one_forward_with_zeros_at_the_ends():
    x = _clip_tensor(frames=3, channels=4)  # frame t, channel c: 10 t + c + 1
    got = temporal_shift(x, frames=3, fold=1)[:, :, 0, 0]
    # channel 0 from the next frame, channel 1 from the previous one, channels 2 and 3 stay
    want = torch.tensor([[11., 0., 3., 4.],
                         [21., 2., 13., 14.],
                         [0., 12., 23., 24.]])
    assert torch.equal(got, want)
    assert torch.equal(x[:, :, 0, 0], torch.tensor([[1., 2., 3., 4.], [11., 12., 13., 14.], [21., 22., 23., 24.]]))


def test_shift_keeps_clips_apart():
    x = _clip_tensor(frames=2, channels=4, clips=2)  # clip 1 is rows 2 and 3
    got = temporal_shift(x, frames=2, fold=1)[:, :, 0, 0]
    want = torch.tensor([[11., 0., 3., 4.],
                         [0., 2., 13., 14.],
                         [111., 0., 103., 104.],  # not clip 0's last frame
                         [0., 102., 113., 114.]])
    assert torch.equal(got, want)


def test_shift_of_one_frame_zeroes_both_folds():
    x = _clip_tensor(frames=1, channels=6, clips=3)
    got = temporal_shift(x, frames=1, fold=2)
    assert torch.equal(got[:, :4], torch.zeros_like(got[:, :4]))
    assert torch.equal(got[:, 4:], x[:, 4:])


def test_shift_keeps_channels_last_and_its_gradient_is_the_reverse_shift():
    x = torch.randn(2 * 3, 8, 5, 4)
    cl = x.contiguous(memory_format=torch.channels_last)
    got = temporal_shift(cl, frames=3, fold=2)
    assert got.is_contiguous(memory_format=torch.channels_last) and not got.is_contiguous()
    assert torch.equal(got, temporal_shift(x, frames=3, fold=2))
    assert temporal_shift(x, frames=3, fold=0) is x
    xd = torch.randn(2 * 3, 8, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: temporal_shift(t, 3, 2), (xd,))


@pytest.mark.parametrize("frames, fold, match", [(4, 1, "divide the batch"), (0, 1, "positive"),
                                                 (3, 5, "fold=5")])
def test_shift_refuses_what_it_cannot_do(frames, fold, match):
    with pytest.raises(ValueError, match=match):
        temporal_shift(torch.zeros(6, 8, 2, 2), frames=frames, fold=fold)


# ------------------------------------------------------------------ the model


@pytest.mark.parametrize("size", SIZES)
def test_registered_for_every_size_from_its_2d_model(size):
    entry = get_model_entry(f"efficientvit_{size}_tsm")
    assert entry.kind == "tsm" and entry.cls is EfficientVitTsm and entry.image_model == f"efficientvit_{size}"
    assert entry.arch_args == get_model_entry(f"efficientvit_{size}_frameavg").arch_args
    assert entry.title == f"TSM {size.upper()}"


@pytest.mark.parametrize("size", ["b0", "l1"])
def test_state_dict_is_frame_averagings_and_takes_2d_weights(size):
    tsm = evitvid.create_model(f"efficientvit_{size}_tsm")
    fa = evitvid.create_model(f"efficientvit_{size}_frameavg")
    image = randomize_(evitvid.create_model(f"efficientvit_{size}"), seed=1)
    got, fa_sd, image_sd = tsm.state_dict(), fa.state_dict(), image.state_dict()
    assert list(got) == list(fa_sd) and all(got[k].shape == fa_sd[k].shape for k in got)
    trunk = {k: v for k, v in image_sd.items() if not is_classifier_key(k)}
    assert set(got) - set(trunk) == {k for k in got if is_classifier_key(k)} == {
        "head.verb.weight", "head.verb.bias", "head.noun.weight", "head.noun.bias"}
    assert all(got[k].shape == v.shape for k, v in trunk.items())
    tsm.load_state_dict({**trunk, **{k: v for k, v in got.items() if is_classifier_key(k)}}, strict=True)
    assert all(torch.equal(tsm.state_dict()[k], v) for k, v in trunk.items())
    tsm.load_state_dict(randomize_(fa, seed=2).state_dict(), strict=True)  # a trained frame-averaging model too
    assert torch.equal(tsm.head.verb.weight, fa.head.verb.weight)


def test_shifts_sit_in_every_residual_branch_and_only_there():
    tsm = evitvid.create_model("efficientvit_b0_tsm")
    shifted = {n.removesuffix(".shift") for n, m in tsm.named_modules() if isinstance(m, TemporalShift)}
    residual = {n for n, m in tsm.named_modules() if hasattr(m, "shortcut") and m.shortcut is not None}
    plain = {n for n, m in tsm.named_modules() if hasattr(m, "shortcut") and m.shortcut is None}
    assert shifted == residual and plain and not shifted & plain
    # both branches of an EfficientViT block: attention and MBConv
    assert {"stages.2.blocks.1.context_module", "stages.2.blocks.1.local_module", "stem.res0"} <= shifted
    fa = evitvid.create_model("efficientvit_b0_frameavg")
    assert not any(isinstance(m, TemporalShift) for m in fa.modules())


def test_without_a_shift_it_is_frame_averaging_exactly():
    tsm, fa = _pair(shift_div=10 ** 6)  # fold 0 in every block
    x = torch.randn(B, 3, T, S, S)
    with torch.no_grad():
        a, b = tsm(x), fa(x)
    assert torch.equal(a.verb, b.verb) and torch.equal(a.noun, b.noun)
    shifting, _ = _pair()
    with torch.no_grad():
        assert (shifting(x).verb - b.verb).abs().max() > 1e-3  # the default shift does change the output


@pytest.mark.parametrize("size", ["b0", "l1"])
def test_tsm_sees_frame_order_and_frame_averaging_does_not(size):
    tsm, fa = _pair(size)
    tsm.double(), fa.double()
    x = torch.randn(B, 3, 5, S, S, dtype=torch.float64)
    with torch.no_grad():
        a, b = tsm(x), tsm(x.flip(2))
        fa_a, fa_b = fa(x), fa(x.flip(2))
    assert (a.verb[0] - a.verb[1]).abs().max() > 1e-3  # outputs depend on the input at all
    # reversed, the backward and forward folds swap roles: a change far above float64 rounding (1e-15)
    assert (a.verb - b.verb).abs().max() > 1e-4 * a.verb.abs().max()
    assert torch.equal(fa_a.verb, fa_b.verb) and torch.equal(fa_a.noun, fa_b.noun)


def test_a_frame_meets_its_neighbours_only():
    """Changing the last frame changes the features of the frames within reach of the shifts
    (one frame a block), and frame averaging's of that frame alone."""
    tsm, fa = _pair()
    x = torch.randn(1, 3, T, S, S)
    y = x.clone()
    y[:, :, -1] = torch.randn(3, S, S)
    with torch.no_grad():
        changed = (tsm.forward_features(x) - tsm.forward_features(y)).flatten(3).abs().amax(dim=(0, 1, 3))
        fa_changed = (fa.forward_features(x) - fa.forward_features(y)).flatten(3).abs().amax(dim=(0, 1, 3))
    assert (changed > 1e-4).all()  # 11 shifting blocks: every frame of 4 is within reach
    assert torch.equal(fa_changed[:-1], torch.zeros(T - 1)) and fa_changed[-1] > 1e-4


def test_one_frame_clip_shifts_in_zeros_from_both_ends():
    tsm, _ = _pair()
    seen = []
    for m in tsm.modules():
        if isinstance(m, TemporalShift):
            m.register_forward_hook(lambda mod, args, out: seen.append((args[0], out, args[0].shape[1] // 8)))
    with torch.no_grad():
        out = tsm(torch.randn(B, 3, 1, S, S))
    assert out.verb.shape == (B, 3) and torch.isfinite(out.verb).all()
    assert len(seen) == 11  # B0's residual blocks
    for before, after, fold in seen:
        assert fold > 0 and torch.equal(after[:, :2 * fold], torch.zeros_like(after[:, :2 * fold]))
        assert torch.equal(after[:, 2 * fold:], before[:, 2 * fold:])


def test_frames_are_set_for_a_forward_pass_only():
    tsm = evitvid.create_model("efficientvit_b0_tsm", num_verbs=3, num_nouns=4).eval()
    with torch.no_grad():
        tsm(torch.randn(1, 3, 3, S, S))
    shift = next(m for m in tsm.modules() if isinstance(m, TemporalShift))
    assert shift.frames is None
    with pytest.raises(RuntimeError, match="number of frames is not set"):
        shift(torch.zeros(3, 8, 2, 2))
    with pytest.raises(ValueError, match="B x C x T x H x W"):
        tsm(torch.randn(1, 3, S, S))


@pytest.mark.parametrize("shift_div", [1, 0, 2.5, True])
def test_bad_shift_div_names_the_parameter(shift_div):
    with pytest.raises(ValueError, match="shift_div must be an integer >= 2"):
        evitvid.create_model("efficientvit_b0_tsm", shift_div=shift_div)


@pytest.mark.parametrize("size", ["b0", "l1"])
def test_parameters_and_macs_are_frame_averagings(size):
    tsm = model_cost(f"efficientvit_{size}_tsm", (3, T, 64, 64))
    fa = model_cost(f"efficientvit_{size}_frameavg", (3, T, 64, 64))
    assert tsm.gmacs > 0 and tsm.gmacs == fa.gmacs  # the shift is copies: no multiply-adds
    assert count_params(evitvid.create_model(f"efficientvit_{size}_tsm")) == count_params(
        evitvid.create_model(f"efficientvit_{size}_frameavg")) == round(tsm.params_m * 1e6)


def test_grad_checkpointing_recomputes_with_the_clips_frames():
    """The backward pass recomputes each stage after the forward pass has returned: its shifts
    must see the same frames then (identical gradients, not merely close ones)."""
    tsm, _ = _pair()
    x = torch.randn(B, 3, T, S, S)
    grads = []
    for checkpointing in (False, True):
        tsm.zero_grad()
        tsm.set_grad_checkpointing(checkpointing)
        out = tsm(x)
        (out.verb.square().sum() + out.noun.square().sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in tsm.parameters()]))
    assert grads[0].abs().max() > 0 and torch.equal(grads[0], grads[1])


def test_create_model_loads_a_2d_checkpoint_and_trains(tmp_path):
    image = randomize_(evitvid.create_model("efficientvit_b0"), seed=5)
    path = tmp_path / "b0.safetensors"
    save_file({k: v.contiguous() for k, v in image.state_dict().items()}, str(path))
    torch.manual_seed(0)
    tsm = evitvid.create_model("efficientvit_b0_tsm", pretrained=path, num_verbs=5, num_nouns=6)
    torch.manual_seed(0)
    fa = evitvid.create_model("efficientvit_b0_frameavg", pretrained=path, num_verbs=5, num_nouns=6)
    want = image.state_dict()
    got = tsm.state_dict()
    assert all(torch.equal(got[k], v) for k, v in want.items() if not is_classifier_key(k))
    assert all(torch.equal(got[k], v) for k, v in fa.state_dict().items())  # what frame averaging loads
    tsm.train().set_channels_last()
    out = tsm(torch.randn(B, 3, T, S, S))
    assert out.verb.shape == (B, 5) and out.noun.shape == (B, 6)
    (out.verb.logsumexp(-1).sum() + out.noun.logsumexp(-1).sum()).backward()
    no_grad = [n for n, p in tsm.named_parameters() if p.grad is None]
    assert not no_grad, f"parameters without a gradient: {no_grad}"
    assert all(torch.isfinite(p.grad).all() for p in tsm.parameters())


def test_exports_to_onnx_with_a_dynamic_batch(tmp_path):
    from evitvid.inference import export_onnx, onnx_session, run_onnx
    tsm, _ = _pair()
    shape = (3, T, S, S)
    session = onnx_session(export_onnx(tsm, tmp_path / "tsm.onnx", shape), threads=1)
    clip = torch.randn(3, *shape)  # batch 3, exported at batch 1
    with torch.no_grad():
        ref = tsm(clip)
    out = run_onnx(session, clip)
    # fp32 convolutions summed in another order: the same 1e-4 as tests/test_export.py
    np.testing.assert_allclose(out["verb"], ref.verb.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["noun"], ref.noun.numpy(), atol=1e-4, rtol=0)
