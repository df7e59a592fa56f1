"""Checkpoint round trips in timm's and mit-han-lab's formats, hub resolution, and clear errors."""
from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import evitvid
from evitvid.models import CheckpointError, convert_mit_state_dict, read_state_dict

from _model_utils import calibrate_bn_, randomize_, repeat_frames


def to_mit_names(sd: dict, family: str) -> dict:
    """Written independently of the library's converter: timm names -> mit-han-lab names."""
    out = {}
    for key, value in sd.items():
        if key.startswith("head."):
            new = (key.replace("head.in_conv.", "head.op_list.0.")
                   .replace("head.classifier.0.", "head.op_list.2.linear.")
                   .replace("head.classifier.1.", "head.op_list.2.norm.")
                   .replace("head.classifier.4.", "head.op_list.3.linear."))
        else:
            parts = key.split(".")
            if parts[0] == "stem":
                index = 0 if parts[1] == "in_conv" else int(parts[1][3:]) + 1
                stem = "backbone.input_stem" if family == "b" else "backbone.stages.0"
                new = ".".join([stem, "op_list", str(index)] + parts[2:])
            else:  # stages.S.blocks.J.rest
                stage = int(parts[1]) + (0 if family == "b" else 1)
                new = ".".join(["backbone", "stages", str(stage), "op_list", parts[3]] + parts[4:])
        out[new] = value
    return out


@pytest.fixture(scope="module")
def b1():
    return randomize_(evitvid.create_model("efficientvit_b1"), seed=7).eval()


def _logits(model, x):
    with torch.no_grad():
        return model(x)


X = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("suffix", [".safetensors", ".bin", ".pth"])
def test_timm_format_round_trip(tmp_path, b1, suffix):
    path = tmp_path / f"model{suffix}"
    sd = b1.state_dict()
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif suffix == ".pth":
        torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, path)  # DDP-wrapped
    else:
        torch.save(sd, path)
    model = evitvid.create_model("efficientvit_b1", pretrained=path).eval()
    torch.testing.assert_close(_logits(model, X), _logits(b1, X), atol=0, rtol=0)


@pytest.mark.parametrize("size", ["b1", "l1"])
def test_mit_format_round_trip(tmp_path, size):
    ref = randomize_(evitvid.create_model(f"efficientvit_{size}"), seed=11).eval()
    mit = to_mit_names(ref.state_dict(), size[0])
    # real key names of the mit-han-lab checkpoints, spelled out
    known = {"b1": ["backbone.input_stem.op_list.0.conv.weight",
                    "backbone.input_stem.op_list.1.main.depth_conv.conv.weight",
                    "backbone.stages.2.op_list.1.context_module.main.qkv.conv.weight",
                    "backbone.stages.2.op_list.1.context_module.main.aggreg.0.0.weight"],
             "l1": ["backbone.stages.0.op_list.0.conv.weight", "backbone.stages.0.op_list.1.main.conv1.conv.weight",
                    "backbone.stages.4.op_list.1.context_module.main.qkv.conv.weight"]}[size]
    assert set(known + ["head.op_list.2.norm.weight", "head.op_list.3.linear.bias"]) <= set(mit)
    path = tmp_path / f"efficientvit-{size}.pt"
    torch.save({"state_dict": mit}, path)
    assert read_state_dict(path).keys() == ref.state_dict().keys()
    model = evitvid.create_model(f"efficientvit_{size}", pretrained=path).eval()
    torch.testing.assert_close(_logits(model, X), _logits(ref, X), atol=0, rtol=0)


def test_convert_mit_rejects_foreign_keys():
    with pytest.raises(CheckpointError, match="backbone.neck.0.weight"):
        convert_mit_state_dict({"backbone.neck.0.weight": torch.zeros(1)})


def test_pretrained_3d_and_frameavg_from_a_2d_checkpoint(tmp_path, b1, caplog):
    """A 2D ImageNet checkpoint into video models: inflated for 3D, as is for frame averaging;
    the 1000-way classifier is dropped with a log line, the rest carries over."""
    path = tmp_path / "b1.safetensors"
    save_file({k: v.contiguous() for k, v in b1.state_dict().items()}, str(path))
    mit_path = tmp_path / "b1.pt"
    torch.save({"state_dict": to_mit_names(b1.state_dict(), "b")}, mit_path)
    image = X[:1]
    with torch.no_grad():
        want = b1.forward_head(b1.forward_features(image), pre_logits=True)
    # from INFO up: dropping a classifier that cannot fit is what every inflation from an image
    # model does, a fact to log rather than a problem to warn about
    with caplog.at_level(logging.INFO, logger="evitvid"):
        fa = evitvid.create_model("efficientvit_b1_frameavg", pretrained=path, num_verbs=4, num_nouns=3).eval()
    assert "classifier" in caplog.text and "dropped" in caplog.text
    m3 = evitvid.create_model("efficientvit_b1_3d", pretrained=mit_path, time_padding="replicate").eval()
    with torch.no_grad():
        got_fa = fa.forward_head(fa.forward_features(repeat_frames(image, 3)), pre_logits=True)
        got_3d = m3.forward_head(m3.forward_features(repeat_frames(image, 3)), pre_logits=True)
    torch.testing.assert_close(got_fa, want, atol=1e-5, rtol=1e-5)
    # a boring clip through the inflated model with replicated time padding: the 2D output up to
    # fp32 rounding (about 1e-6 here; the inflation divides by 3 in fp32), as in test_inflate
    torch.testing.assert_close(got_3d, want, atol=1e-5, rtol=1e-5)


def test_frameavg_checkpoint_inflates_into_3d_with_its_heads(tmp_path):
    clip = torch.randn(2, 3, 4, 64, 64)
    fa = calibrate_bn_(randomize_(evitvid.create_model("efficientvit_b0_frameavg", num_verbs=4, num_nouns=3)), clip)
    path = tmp_path / "fa.pth"
    torch.save(fa.state_dict(), path)
    m3 = evitvid.create_model("efficientvit_b0_3d", pretrained=path, num_verbs=4, num_nouns=3)
    assert torch.equal(m3.head.verb.weight, fa.head.verb.weight)


def test_wrong_architecture_names_file_and_keys(tmp_path):
    path = tmp_path / "b2.pth"
    torch.save(evitvid.create_model("efficientvit_b2").state_dict(), path)
    with pytest.raises(CheckpointError) as e:
        evitvid.create_model("efficientvit_b1", pretrained=path)
    assert str(path) in str(e.value) and "stem.in_conv.conv.weight" in str(e.value)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        evitvid.create_model("efficientvit_b1_3d", pretrained=path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_checkpoint_names_the_file(tmp_path, b1, suffix):
    path = tmp_path / f"cut{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in b1.state_dict().items()}, str(path))
    else:
        torch.save(b1.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: cannot read checkpoint")):
        evitvid.create_model("efficientvit_b1", pretrained=path)


def test_missing_and_non_state_dict_files(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pth: checkpoint file not found"):
        evitvid.create_model("efficientvit_b0", pretrained=tmp_path / "nope.pth")
    path = tmp_path / "other.pth"
    torch.save({"epoch": 3, "config": {"lr": 0.1}}, path)
    with pytest.raises(CheckpointError, match="no state dict found"):
        evitvid.create_model("efficientvit_b0", pretrained=path)


def test_timm_hub_name_offline_fails_clearly(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(CheckpointError) as e:
        evitvid.create_model("efficientvit_b1", pretrained="timm:efficientvit_b1.r288_in1k")
    msg = str(e.value)
    assert "timm/efficientvit_b1.r288_in1k" in msg and "pretrained=PATH" in msg


def test_timm_hub_name_resolves_through_the_hub_cache(tmp_path, monkeypatch, b1):
    """The hub path end to end, served from a populated cache as huggingface_hub lays it out."""
    import huggingface_hub.constants as hf_constants
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = tmp_path / "hub" / "models--timm--efficientvit_b1.r288_in1k"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in b1.state_dict().items()},
              str(repo / "snapshots" / commit / "model.safetensors"))
    model = evitvid.create_model("efficientvit_b1", pretrained="timm:efficientvit_b1.r288_in1k").eval()
    torch.testing.assert_close(_logits(model, X), _logits(b1, X), atol=0, rtol=0)


def test_a_runs_own_checkpoint_as_pretrained_is_refused_in_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "params.json").write_text("{}")
    torch.save({"model": {}, "rng": {"numpy": np.random.get_state()}}, run / "checkpoint.pt")
    with pytest.raises(CheckpointError) as e:
        read_state_dict(run / "checkpoint.pt")
    assert len(str(e.value).splitlines()) == 1 and "a training run's checkpoint" in str(e.value)
    (tmp_path / "broken.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError) as e:
        read_state_dict(tmp_path / "broken.pt")
    assert len(str(e.value).splitlines()) == 1 and "broken.pt: cannot read checkpoint" in str(e.value)
