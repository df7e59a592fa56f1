"""The study's steps end to end on the tiny synthetic set: pretraining, inflation, frames, timing."""
from __future__ import annotations

from pathlib import Path

import pytest

from evitvid import study
from evitvid.data import synth


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> study.DataPaths:
    root = tmp_path_factory.mktemp("synth") / "tiny"
    synth.generate(root, "tiny", seed=0, workers=1, progress=False)
    return study.resolve_data(str(root))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


SMALL = dict(num_frames=4, crop_size=32, epochs=2, batch_size=4)


def test_pretrain_then_inflate_into_3d_and_do_not_train_twice(data, runs):
    pre = study.pretrain_images("pre", model="efficientvit_b0", image_size=32, epochs=1, batch_size=16,
                                max_train=64, val_images=32, runs_root=runs)
    checkpoint = Path(pre.results["checkpoint"])
    assert checkpoint.exists() and 0 <= pre.results["val"]["top1"] <= 1
    run = study.train_video("3d", model="efficientvit_b0_3d", data=data, pretrained=str(checkpoint),
                            runs_root=runs, **SMALL)
    res = run.results
    assert res["epochs"] == 2 and res["val_clips"] == len(study.make_dataset(
        data, "val", num_frames=1, crop_size=32, train=False))
    assert {"verb_top1", "noun_top1", "action_top1", "verb_mean_class_acc"} <= set(res["val"])
    assert len(run.metrics) == 2 and (run.dir / "predictions.csv").exists()
    stamp = run.checkpoint.stat().st_mtime_ns
    again = study.train_video("3d", model="efficientvit_b0_3d", data=data, pretrained=str(checkpoint),
                              runs_root=runs, **SMALL)
    assert again.checkpoint.stat().st_mtime_ns == stamp  # nothing trained twice
    preds = study.predictions_frame(run)
    assert len(preds) == res["val_clips"] and preds["verb_top5"].str.split().str.len().eq(5).all()


def test_frame_averaging_over_frames_and_time(data, runs):
    run = study.train_video("fa", model="efficientvit_b0_frameavg", data=data, runs_root=runs, **SMALL)
    table = study.evaluate_frames(run, (1, 2, 4))
    assert table["frames"].tolist() == [1, 2, 4]
    assert ((table["verb_top1"] >= 0) & (table["verb_top1"] <= 1)).all()
    assert (run.dir / "frames.json").exists()
    timing = study.time_inference("efficientvit_b0_frameavg", (1, 4), crop_size=32, repeats=2, warmup=1)
    assert timing["frames"].tolist() == [1, 4] and (timing["ms_per_clip"] > 0).all()
    pairs = study.reversal_accuracy(run)
    assert set(pairs.columns) == {"pair", "segments", "pair_accuracy"} and len(pairs) >= 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(model="efficientvit_b9_3d"), "unknown model 'efficientvit_b9_3d'"),
    (dict(model="efficientvit_b0_3d", num_frames=0), "num_frames=0"),
    (dict(model="efficientvit_b0_3d", crop_size=-1), "crop_size=-1"),
])
def test_bad_parameters_fail_at_once_naming_them(data, runs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        study.train_video("bad", data=data, runs_root=runs, **kwargs)


def test_missing_data_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset: .*nowhere"):
        study.resolve_data(str(tmp_path / "nowhere"))
    (tmp_path / "annotations").mkdir()
    (tmp_path / "videos").mkdir()
    with pytest.raises(FileNotFoundError, match="train_csv: .*EPIC_100_train.csv"):
        study.resolve_data(str(tmp_path))


@pytest.mark.parametrize("params, match", [
    (dict(models=["efficientvit_b1_frameavg", "efficientvit_x9"]), "models: unknown model 'efficientvit_x9'"),
    (dict(frame_averaging_model="nope"), "frame_averaging_model: unknown model 'nope'"),
    (dict(eval_frames=[1, 0, 4]), r"eval_frames=\[1, 0, 4\]: frame counts must be positive"),
    (dict(num_frames=0), "num_frames=0: must be positive"),
    (dict(lr=-0.1, batch_size=8), "lr=-0.1: must be positive"),
])
def test_check_parameters_names_the_bad_one(params, match):
    with pytest.raises(ValueError, match=match):
        study.check_parameters(**params)


def test_check_parameters_accepts_the_notebook_defaults():
    study.check_parameters(models=["efficientvit_b1_frameavg"], model="efficientvit_b1_3d", num_frames=8,
                           crop_size=64, epochs=3, batch_size=8, lr=0.001, eval_frames=[1, 2, 4, 8, 16])
