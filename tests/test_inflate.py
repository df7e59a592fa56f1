"""I3D inflation: the pure weight surgery, and the boring-video property it buys."""
from __future__ import annotations

import pytest
import torch

import evitvid
from evitvid.models import InflationError, inflate_state_dict, inflate_weight
from evitvid.models.inflate import RANDOM_INFLATIONS

from _model_utils import calibrate_bn_, randomize_, repeat_frames


def test_inflate_weight_repeats_and_divides():
    w = torch.randn(4, 2, 3, 3)
    w3 = inflate_weight(w, 3)
    assert w3.shape == (4, 2, 3, 3, 3)
    for t in range(3):
        torch.testing.assert_close(w3[:, :, t], w / 3)
    torch.testing.assert_close(w3.sum(2), w)
    with pytest.raises(ValueError, match="4D conv weight"):
        inflate_weight(torch.randn(4, 2, 3), 3)


def test_inflate_state_dict_is_pure_and_complete():
    m2 = randomize_(evitvid.create_model("efficientvit_b0_frameavg", num_verbs=5, num_nouns=6))
    m3 = evitvid.create_model("efficientvit_b0_3d", num_verbs=5, num_nouns=6)
    sd2 = m2.state_dict()
    before = {k: v.clone() for k, v in sd2.items()}
    sd3 = inflate_state_dict(sd2, m3)
    assert set(sd3) == set(m3.state_dict())
    assert all(torch.equal(before[k], sd2[k]) for k in sd2)  # input untouched
    key = "stages.0.blocks.0.main.depth_conv.conv.weight"
    torch.testing.assert_close(sd3[key].sum(2), sd2[key])
    assert sd3[key].shape[2] == 3
    # 1x1 convs stay 1x1x1 and keep their values; norms and the head are copied
    pw = "stages.0.blocks.0.main.point_conv.conv.weight"
    torch.testing.assert_close(sd3[pw][:, :, 0], sd2[pw])
    for k in ("stages.0.blocks.0.main.point_conv.norm.running_var", "head.verb.weight", "head.classifier.1.weight"):
        assert torch.equal(sd3[k], sd2[k])
    m3.load_state_dict(sd3, strict=True)


def test_image_classifier_needs_explicit_drop():
    m2 = evitvid.create_model("efficientvit_b0")
    m3 = evitvid.create_model("efficientvit_b0_3d", num_verbs=5, num_nouns=6)
    with pytest.raises(InflationError) as e:
        inflate_state_dict(m2.state_dict(), m3)
    msg = str(e.value)
    assert "head.classifier.4.weight" in msg and "head.verb.weight" in msg and "drop_classifier=True" in msg
    sd3 = inflate_state_dict(m2.state_dict(), m3, drop_classifier=True)
    assert torch.equal(sd3["head.verb.weight"], m3.state_dict()["head.verb.weight"])  # the 3D model's own init
    assert "head.classifier.4.weight" not in sd3


def test_mismatch_names_keys_and_shapes():
    m2 = evitvid.create_model("efficientvit_b1_frameavg", in_chans=4, num_verbs=5)
    m3 = evitvid.create_model("efficientvit_b1_3d", num_verbs=6)
    with pytest.raises(InflationError) as e:
        inflate_state_dict(m2.state_dict(), m3)
    assert "stem.in_conv.conv.weight: 2D (16, 4, 3, 3) vs 3D (16, 3, 3, 3, 3)" in str(e.value)
    assert "head.verb.weight: 2D (5, 1600) vs 3D (6, 1600)" in str(e.value)
    with pytest.raises(InflationError, match=r"\(79\): .* \(and 59 more\)"):  # long lists are cut, with the count
        inflate_state_dict(evitvid.create_model("efficientvit_b0").state_dict(), m3)
    sd = m2.state_dict()
    sd.pop("stem.in_conv.norm.weight")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(InflationError) as e:
        inflate_state_dict(sd, evitvid.create_model("efficientvit_b1_3d"))
    assert "stem.in_conv.norm.weight" in str(e.value) and "extra.weight" in str(e.value)


def _max_relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("size", ["b1", pytest.param("l1", marks=pytest.mark.slow)])  # l1: 5-12 s a case
def test_boring_video_replicate_padding_gives_the_2d_output(size, dtype, bound):
    """A clip of T identical frames through the inflated 3D model (replicated time padding)
    gives the 2D model's features on that frame, and so the same verb/noun logits.

    Exact up to rounding: float64 agrees to 1e-15 (bound 1e-10), fp32 to about 4e-7. Two
    causes of a systematic error are covered: LiteMLA's eps scales with the number of
    frames, and its attention keeps a float64 model's precision."""
    m2 = randomize_(evitvid.create_model(f"efficientvit_{size}_frameavg", num_verbs=7, num_nouns=5), seed=3)
    m3 = evitvid.create_model(f"efficientvit_{size}_3d", time_padding="replicate", num_verbs=7, num_nouns=5)
    m2, m3 = m2.to(dtype).eval(), m3.to(dtype).eval()
    m3.load_state_dict(inflate_state_dict(m2.state_dict(), m3))  # in `dtype`: the division by 3 rounds there
    image = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0), dtype=dtype)
    clip = repeat_frames(image, 8)
    with torch.no_grad():
        f2 = m2.forward_head(m2.forward_features(image[:, :, None]), pre_logits=True)
        f3 = m3.forward_head(m3.forward_features(clip), pre_logits=True)
        o2, o3 = m2(image[:, :, None]), m3(clip)
    assert f2.std() > 1e-2
    assert _max_relative(f3, f2) <= bound
    assert _max_relative(o3.verb, o2.verb) <= bound
    assert _max_relative(o3.noun, o2.noun) <= bound


def test_boring_video_zero_padding_differs_at_the_clip_ends():
    """Documented behaviour: zero time padding makes the end frames see a zero frame, so
    the features are no longer the 2D ones, and first/last frames differ from the middle."""
    m2 = randomize_(evitvid.create_model("efficientvit_b0_frameavg"), seed=4).eval()
    m3 = evitvid.create_model("efficientvit_b0_3d", time_padding="zeros").eval()
    m3.load_state_dict(inflate_state_dict(m2.state_dict(), m3))
    clip = repeat_frames(torch.randn(1, 3, 64, 64), 5)
    with torch.no_grad():
        stem = m3.stem.in_conv(clip)  # one 3-tap conv: only frames 0 and 4 see the padding
        f2 = m2.forward_head(m2.forward_features(clip[:, :, :1]), pre_logits=True)
        f3 = m3.forward_head(m3.forward_features(clip), pre_logits=True)
    torch.testing.assert_close(stem[:, :, 1], stem[:, :, 2])  # the middle is still boring
    assert (stem[:, :, 0] - stem[:, :, 2]).abs().max() > 1e-3  # the ends are not
    assert (f3 - f2).abs().max() > 1e-2


@pytest.mark.parametrize("method", ["mean", "mean_noise", "centre", "centre_only"])
def test_every_inflation_keeps_the_2d_kernel_as_the_sum_over_time(method):
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    w3 = inflate_weight(w, 3, method, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(w3.sum(2), w, rtol=1e-12, atol=1e-12)
    asymmetry = (w3 - w3.flip(2)).abs().max().item()
    symmetric = method in ("mean", "centre_only")  # I3D's mean and the pure centre are symmetric in time
    assert (asymmetry == 0) == symmetric
    again = inflate_weight(w, 3, method, generator=torch.Generator().manual_seed(0))
    other = inflate_weight(w, 3, method, generator=torch.Generator().manual_seed(1))
    assert torch.equal(w3, again) and (method in RANDOM_INFLATIONS) != torch.equal(w3, other)
    if method == "centre_only":  # the image kernel on the present frame, nothing on its neighbours
        assert torch.equal(w3[:, :, 1], w) and not w3[:, :, 0].any() and not w3[:, :, 2].any()


def test_random_inflation_needs_a_generator_and_a_known_name():
    with pytest.raises(ValueError, match="seeded torch.Generator"):
        inflate_weight(torch.randn(2, 2, 3, 3), 3, "centre")
    with pytest.raises(ValueError, match="inflation must be one of"):
        inflate_weight(torch.randn(2, 2, 3, 3), 3, "median")


@pytest.fixture(scope="module")
def image_checkpoint(tmp_path_factory):
    from safetensors.torch import save_file
    m2 = randomize_(evitvid.create_model("efficientvit_b0", num_classes=10), seed=7)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in m2.state_dict().items()}, str(path))
    return path


def _reversal_change(model, clip) -> float:
    with torch.no_grad():
        a, b = model(clip).verb, model(clip.flip(2)).verb
    return ((a - b).abs().max() / a.abs().max()).item()


def test_mean_inflation_is_blind_to_time_reversal_at_initialisation(image_checkpoint):
    """The mechanism behind finding (c): I3D's mean inflation with symmetric (zero) time padding
    makes the whole network give the same verb logits for a clip and its reversal; random
    initialisation and the asymmetric inflations do not.

    Batch-norm statistics are set from the batch first, as in training: with the default ones
    (mean 0, variance 1) every model's output barely depends on its input, and a randomly
    initialised one changes by only 1e-5 under reversal. Measured here: mean 1e-14, random
    1.5, mean_noise 0.8, centre 1.1 (relative change of the verb logits). The pure centre
    inflation is symmetric too, and as blind as the mean."""
    torch.manual_seed(0)
    clip = torch.randn(4, 3, 8, 64, 64, dtype=torch.float64)
    changes = {}
    for init in ("random", "mean", "mean_noise", "centre", "centre_only"):
        torch.manual_seed(1)
        kw = {} if init == "random" else dict(pretrained=image_checkpoint, inflation=init, inflation_seed=3)
        model = evitvid.create_model("efficientvit_b0_3d", num_verbs=7, num_nouns=5, **kw).double()
        changes[init] = _reversal_change(calibrate_bn_(model, clip), clip)
    assert max(changes["mean"], changes["centre_only"]) < 1e-12, changes
    assert min(changes["random"], changes["mean_noise"], changes["centre"]) > 0.1, changes


def test_inflation_options_are_checked(image_checkpoint):
    with pytest.raises(ValueError, match="needs pretrained weights"):
        evitvid.create_model("efficientvit_b0_3d", inflation="centre")
    with pytest.raises(Exception, match="3D models only"):
        evitvid.create_model("efficientvit_b0_frameavg", pretrained=image_checkpoint, inflation="centre")
