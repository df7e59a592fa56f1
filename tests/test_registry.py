"""The model registry: names, kinds, the 2D model behind each video model, and its refusals."""
from __future__ import annotations

import pytest

import evitvid
from evitvid.models import get_model_entry
from evitvid.models.registry import register_model

ALL = evitvid.list_models()


def test_registry_lists_every_size_in_four_kinds():
    sizes = ["b0", "b1", "b2", "b3", "l1", "l2", "l3"]
    expected = sorted([f"efficientvit_{s}{suffix}" for s in sizes for suffix in ("", "_frameavg", "_tsm", "_3d")]
                      + ["efficientvit_b0_3d_paper", "efficientvit_b1_3d_paper"])
    assert ALL == expected
    assert evitvid.list_models("*_3d") == sorted(f"efficientvit_{s}_3d" for s in sizes)
    assert {get_model_entry(n).kind for n in ALL} == {"image", "frameavg", "tsm", "3d"}


def test_unknown_name_raises_listing_valid_names():
    with pytest.raises(ValueError, match="efficientvit_b1_3d") as e:
        evitvid.create_model("efficientvit_b9")
    assert "unknown model 'efficientvit_b9'" in str(e.value)


def test_unknown_kwarg_raises_type_error_listing_valid_ones():
    with pytest.raises(TypeError, match="num_verbs") as e:
        evitvid.create_model("efficientvit_b1", num_verbs=10)  # a 2D image model has num_classes
    assert "num_classes" in str(e.value)
    with pytest.raises(TypeError, match="time_kernels"):
        evitvid.create_model("efficientvit_b1_frameavg", time_kernels=3)
    with pytest.raises(TypeError, match="shift_div"):
        evitvid.create_model("efficientvit_b1_frameavg", shift_div=8)  # TSM's, not frame averaging's


def test_every_entry_names_its_registered_image_model():
    for name in ALL:
        entry = get_model_entry(name)
        base = get_model_entry(entry.image_model)
        assert base.kind == "image" and {k: entry.arch_args[k] for k in base.arch_args} == base.arch_args, name
        assert entry.variant or entry.arch_args == base.arch_args, name  # only a named variant adds settings
    assert get_model_entry("efficientvit_l1_3d").image_model == "efficientvit_l1"


def test_registering_twice_or_with_an_unknown_kind_raises():
    entry = get_model_entry("efficientvit_b0")
    with pytest.raises(ValueError, match="registered twice"):
        register_model("efficientvit_b0", entry.cls, entry.arch_args, "image", "efficientvit_b0")
    with pytest.raises(ValueError, match="kind must be one of"):
        register_model("efficientvit_b0_4d", entry.cls, entry.arch_args, "4d", "efficientvit_b0")
    assert "efficientvit_b0_4d" not in evitvid.list_models()
