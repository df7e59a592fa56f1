"""The study's steps end to end on the tiny synthetic set: parameters, pretraining, inflation,
runs named by their parameters, frames and positions, timing, statistics and verdicts."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats

from evitvid import study
from evitvid.data import synth
from evitvid.engine.trainer import read_checkpoint
from evitvid.runs import Run
from conftest import PROFILES, tiny_copy


@pytest.fixture(scope="module")
def tiny_root(synth_tiny, tmp_path_factory) -> Path:
    return tiny_copy(synth_tiny, tmp_path_factory)


@pytest.fixture(scope="module")
def data(tiny_root) -> study.DataPaths:
    return study.resolve_data(str(tiny_root))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


# train_video's protocol from the cpu profile, made small (no reversal probe, no frame cache)
SMALL = dict(seed=0, **study.training_params(study.load_profile(
    PROFILES / "cpu.yaml", num_frames=4, crop_size=32, epochs=2, batch_size=4, reversal_clips=0, frame_cache=False,
    lr=0.002)))


def tiny_params(tiny_root: Path, runs: Path, **changes) -> study.StudyParams:
    return study.load_profile(PROFILES / "cpu.yaml", **{**dict(
        dataset=str(tiny_root), runs_root=str(runs), seeds=[0, 1], epochs=1, num_frames=4, crop_size=32, batch_size=4,
        max_val=16, reversal_clips=4, inflations=["mean", "centre"], pretrain_image_size=32, pretrain_epochs=1,
        pretrain_batch_size=16, pretrain_max_train=64, pretrain_held_out=32, eval_frames=[1, 2], eval_positions=2,
        bootstrap_resamples=200, time_models=["efficientvit_b0_frameavg"], time_frames=[1, 2], time_crop_size=32),
        **changes})


@pytest.mark.slow
def test_pretrain_then_inflate_into_3d_and_do_not_train_twice(data, runs):
    """The study's path: pictures smaller than the clips (a 24-pixel window of a 32-pixel frame,
    as the cpu profile's 48 of 64), then 32-pixel clips; every weight but the classifier carries
    over whatever the two sizes (no layer depends on the input size)."""
    pre = study.pretrain_images("pre", model="efficientvit_b0", image_size=24, image_scale=32, epochs=1,
                                batch_size=16, lr=4e-3, max_train=64, held_out=32, views=2, runs_root=runs)
    assert pre.results["checkpoint"] == "pre/model.safetensors"  # relative to the runs root: a moved root works
    checkpoint = runs / pre.results["checkpoint"]
    assert checkpoint.exists() and 0 <= pre.results["val"]["top1"] <= 1 and pre.results["val_images"] == 32
    from safetensors.torch import load_file

    from evitvid.models.inflate import is_classifier_key
    weights_2d = load_file(str(checkpoint))
    start = study.initial_model("efficientvit_b0_3d", study.read_splits(data), seed=0, pretrained=str(checkpoint),
                                inflation="mean", inflation_noise=0.5, head="verb_noun", runs_root=runs).state_dict()
    carried = [k for k in weights_2d if not is_classifier_key(k)]
    assert carried and set(carried) <= set(start)
    for key in carried:  # mean inflation: the taps over time sum to the 2D kernel, up to the fp32
        # rounding of w / 3 summed three times (at most 8e-8 relative, measured; exact in float64)
        got = start[key].sum(2) if start[key].ndim == 5 else start[key]
        torch.testing.assert_close(got, weights_2d[key], atol=1e-8, rtol=1e-6, msg=key)
    run = study.train_video("3d", model="efficientvit_b0_3d", data=data, pretrained=str(checkpoint),
                            runs_root=runs, **SMALL)
    res = run.results
    assert run.params["pretrained"] == "pre/model.safetensors" and run.params["inflation"] == "mean"
    assert res["epochs"] == 2 and res["val_clips"] == len(study.read_splits(data).validation)
    assert {"verb_top1", "noun_top1", "action_top1", "verb_mean_class_acc"} <= set(res["val"])
    assert {"cpu", "threads", "versions"} <= set(res["environment"])  # where it ran, recorded
    assert len(run.metrics) == 2 and (run.dir / "predictions.csv").exists() and (run.dir / "logits.npz").exists()
    stamp = run.checkpoint.stat().st_mtime_ns
    again = study.train_video("3d", model="efficientvit_b0_3d", data=data, pretrained=str(checkpoint),
                              runs_root=runs, **SMALL)
    assert again.checkpoint.stat().st_mtime_ns == stamp  # nothing trained twice
    preds = study.predictions_frame(run)
    assert len(preds) == res["val_clips"] and preds["verb_top5"].str.split().str.len().eq(5).all()


def test_an_action_head_run_records_its_classes_and_loads_back_as_trained(data, runs):
    """head=action: one classifier over the action classes of both splits (AVION's order), of which
    the run records the number and a digest; `load_trained` rebuilds them from the data and its
    model predicts what the run wrote. A change of the data's pairs is named, not loaded."""
    run = study.train_video("action", model="efficientvit_b0_3d", data=data, runs_root=runs,
                            **{**SMALL, "head": "action", "epochs": 1, "max_train": 8, "max_val": 4})
    pairs = study.action_pairs(study.read_splits(data))
    assert run.params["head"] == "action" and run.params["actions"] == study.action_record(pairs)
    assert len(pairs) > len(study.read_splits(data).verbs)
    net = study.load_trained(run)
    assert net.actions.pairs == tuple(pairs)
    logits = study.read_logits(run)
    val = study.clip_dataset(data, "val", num_frames=4, crop_size=32, train=False, limit=4)
    with torch.no_grad():
        out = net(torch.stack([val[i]["video"] for i in range(4)]))
    torch.testing.assert_close(out.verb, torch.from_numpy(logits["verb_logits"]), rtol=0, atol=1e-5)
    params = json.loads((run.dir / "params.json").read_text())
    params["actions"]["sha1"] = "0" * 40
    (run.dir / "params.json").write_text(json.dumps(params))
    with pytest.raises(ValueError, match=r"action.*: its data now gives \d+ action classes .*the annotation files "
                                         r"changed"):
        study.load_trained(Run(run.dir))


def test_frame_averaging_over_frames_positions_and_time(data, runs):
    run = study.train_video("fa", model="efficientvit_b0_frameavg", data=data, runs_root=runs, **SMALL)
    table = study.evaluate_frames(run, (1, 2, 4), positions_per_clip=2)
    assert table["frames"].tolist() == [1, 1, 2, 2, 4, 4] and table["position"].tolist()[:2] == [0.25, 0.75]
    assert ((table["verb_top1"] >= 0) & (table["verb_top1"] <= 1)).all()
    per_segment = study.evaluate_frames(run, (2,), per_segment=True)
    assert len(per_segment) == run.results["val_clips"] and per_segment["verb_correct"].dtype == bool
    timing = study.time_inference("efficientvit_b0_frameavg", (1, 4), crop_size=32, repeats=2, warmup=1)
    assert timing["frames"].tolist() == [1, 1, 4, 4] and (timing["ms_per_clip"] > 0).all()


def test_evaluate_frames_samples_as_the_run_trained_and_averages_clips(data, runs):
    """A run trained with dense sampling is evaluated on dense clips at its stride (a TSN
    evaluation would be another model's input): each position is one clip placed there, and
    `average_positions` is one multi-clip evaluation, the positions' logits averaged."""
    from evitvid.engine import evaluate
    from evitvid.metrics import video_metrics
    from evitvid.runtime import set_memory_format
    run = study.train_video("dense", model="efficientvit_b0_3d", data=data, runs_root=runs,
                            **{**SMALL, "sampling": "dense", "clip_stride": 2, "epochs": 1})
    assert (run.params["sampling"], run.params["clip_stride"]) == ("dense", 2)
    table = study.evaluate_frames(run, (4,), positions_per_clip=2, batch_size=4)
    cached = {}
    for path in (run.dir / "frames").glob("*.npz"):
        with np.load(path) as z:
            cached[json.loads(str(z["key"]))["offset"]] = {k: z[k] for k in z.files}
    assert sorted(cached) == [0.25, 0.75] and table["position"].tolist() == [0.25, 0.75]
    assert {json.loads(str(z["key"]))["sampling"] for z in cached.values()} == {"dense"}
    net = set_memory_format(study.load_trained(run), "auto", torch.device("cpu"))  # as evaluate_frames runs it
    clips = study.clip_dataset(data, "val", num_frames=4, crop_size=run.params["crop_size"], train=False,
                               sampling="dense", clip_stride=2, sampling_offset=0.25)
    assert clips.indices(0).tolist() != study.clip_dataset(data, "val", num_frames=4, crop_size=32, train=False,
                                                           sampling_offset=0.25).indices(0).tolist()  # not TSN's
    want = evaluate(net, clips, torch.device("cpu"), 4, progress=False)
    torch.testing.assert_close(torch.from_numpy(cached[0.25]["verb_logits"]), want.logits["verb"], rtol=0, atol=0)
    averaged = study.evaluate_frames(run, (4,), positions_per_clip=2, batch_size=4, average_positions=True)
    assert averaged["position"].tolist() == ["mean"]
    mean = {k: torch.from_numpy((cached[0.25][k].astype(np.float64) + cached[0.75][k]) / 2)
            for k in ("verb_logits", "noun_logits")}
    want = video_metrics(mean["verb_logits"], mean["noun_logits"], *(torch.from_numpy(cached[0.25][k])
                                                                      for k in ("verb", "noun")))
    assert averaged["verb_top1"].item() == pytest.approx(want["verb_top1"], abs=0)


def test_frame_averaging_clips_read_each_frame_once_and_predict_as_the_model(data, runs):
    """Fig. 2's clips of a frame-averaging run (`evaluate_frames`' way for them): every frame a
    segment's clips read goes through the trunk once, and each clip's logits are the model's own
    on that clip. In float64 they agree to 1e-12; in fp32 only to rounding, since the frames
    share batches otherwise (3.7e-7 of the largest logit, 3 ulp, on the embedded set's runs)."""
    from evitvid.study.frames import _frame_averaged_clips
    run = study.train_video("fa", model="efficientvit_b0_frameavg", data=data, runs_root=runs, **SMALL)
    net = study.load_trained(run).double()
    clips = [(1, 0.5), (2, 0.0), (4, 0.0), (4, 0.5)]  # the first three share the middle frame, the last two none
    datasets = {clip: study.clip_dataset(data, "val", num_frames=clip[0], crop_size=run.params["crop_size"],
                                         train=False, sampling_offset=clip[1]) for clip in clips}
    seen, trunk = [], net.forward_features
    net.forward_features = lambda x: seen.append(x.shape[2]) or trunk(x)
    results = _frame_averaged_clips(net, datasets, torch.device("cpu"), frames_per_batch=16)
    segments = range(len(datasets[clips[0]]))
    assert sum(seen) == sum(len(np.unique(np.concatenate([d.indices(i) for d in datasets.values()]))) for i in segments)
    assert sum(seen) < sum(n for n, _ in clips) * len(segments) and max(seen) <= 16  # fewer than the clips hold
    for clip, dataset in datasets.items():
        items = [dataset[i] for i in segments]
        with torch.no_grad():
            want = net(torch.stack([item["video"] for item in items]).double())
        got = results[clip]
        assert got.narration_ids == [item["narration_id"] for item in items]
        assert got.targets["verb"].tolist() == [item["verb"] for item in items]
        torch.testing.assert_close(got.logits["verb"], want.verb, rtol=0, atol=1e-12)
        torch.testing.assert_close(got.logits["noun"], want.noun, rtol=0, atol=1e-12)


def test_evaluate_frames_compiles_once_and_says_when_it_fell_back(data, runs, monkeypatch):
    """`torch_compile=True`: one compile for every clip sampling (also when it fails and eager
    runs instead), and each cached row records whether it ran compiled."""
    from evitvid.study import frames
    run = study.train_video("fa", model="efficientvit_b0_frameavg", data=data, runs_root=runs, **SMALL)
    calls = []

    def fails(net, example):
        calls.append(tuple(example.shape))
        return net, "eager: compiling failed (stand-in)"
    monkeypatch.setattr(frames, "compile_for_inference", fails)
    table = study.evaluate_frames(run, (1, 2), positions_per_clip=2, max_val=3, torch_compile=True)
    assert len(calls) == 1 and calls[0][2] == 1 and len(table) == 4 and not table["compiled"].any()
    eager = study.evaluate_frames(run, (1, 2), positions_per_clip=2, max_val=3)
    assert len(calls) == 1  # another key: the eager rows are computed apart, without compiling
    np.testing.assert_allclose(table["verb_top1"], eager["verb_top1"])


def test_eval_cache_is_keyed_by_every_input(data, runs):
    """A row computed on 3 clips is never served for the whole set (it used to be: keyed by frames only).
    Its own run: the test rewrites the checkpoint."""
    run = study.train_video("fa_cache", model="efficientvit_b0_frameavg", data=data, runs_root=runs, **SMALL)
    few = study.evaluate_frames(run, (2,), max_val=3, per_segment=True)
    full = study.evaluate_frames(run, (2,), per_segment=True)
    assert len(few) == 3 and len(full) == run.results["val_clips"]
    assert len(study.evaluate_frames(run, (2,), max_val=3, per_segment=True)) == 3  # and reused
    keys = [json.loads(str(np.load(p)["key"])) for p in (run.dir / "frames").glob("*.npz")]
    assert {k["max_val"] for k in keys if k["frames"] == 2} >= {3, None}

    def entries():
        return set((run.dir / "frames").glob("*.npz"))

    before = entries()
    study.evaluate_frames(run, (2,), max_val=3, batch_size=2)  # another batch size: its own entry
    assert len(entries() - before) == 1
    # new weights in the checkpoint (e.g. the run trained again): what was cached for the old ones is not served
    state = read_checkpoint(run.checkpoint)
    weights = state["ema"] if state.get("ema") else state["model"]
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.ndim == 2)  # a head's weight
    weights[name] = weights[name] + 1.0
    torch.save(state, run.checkpoint)
    before = entries()
    study.evaluate_frames(run, (2,), max_val=3)
    assert len(entries() - before) == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(model="efficientvit_b9_3d"), "unknown model 'efficientvit_b9_3d'"),
    (dict(model="efficientvit_b0_3d", num_frames=0), "num_frames=0"),
    (dict(model="efficientvit_b0_3d", crop_size=-1), "crop_size=-1"),
    (dict(model="efficientvit_b0_3d", lr=0), "lr=0"),
    (dict(model="efficientvit_b0_3d", pretrained="/nowhere/model.safetensors"), "checkpoint file not found"),
    (dict(model="efficientvit_b0_3d", batch_size=4096), r"smaller than one batch \(batch_size=4096\)"),
])
def test_a_failed_start_names_the_problem_and_writes_nothing(data, runs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        study.train_video("bad", data=data, runs_root=runs, **{**SMALL, **kwargs})
    assert not (runs / "bad").exists()  # the corrected retry is not refused


def test_missing_videos_are_listed_before_training(tiny_root, tmp_path):
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_root, copy)
    chunk = sorted((copy / "videos").glob("*/*.MP4/0.MP4"))[0]  # a chunk that segments lie in
    chunk.unlink()
    data = study.resolve_data(str(copy))
    missing = r"1 video file\(s\) the segments need do not exist: " + re.escape(str(chunk)) + "$"
    with pytest.raises(FileNotFoundError, match=missing):
        study.train_video("x", model="efficientvit_b0_3d", data=data, runs_root=tmp_path / "runs", **SMALL)
    assert not (tmp_path / "runs" / "x").exists()
    shutil.rmtree(chunk.parent)  # the whole video: each of its chunks that segments need is named
    needed = {p for s in study.read_splits(data).train + study.read_splits(data).validation
              if s.video_id == chunk.parent.name.removesuffix(".MP4") for p in
              study.missing_videos(data, [s])}
    assert needed and all(str(chunk.parent) in p for p in needed)


def test_run_names_do_not_depend_on_where_the_checkout_is(tiny_root, tmp_path):
    """The same dataset, found from two places (a checkout moved or cloned elsewhere): the data
    record the run names hash is the same, and reading the record back finds the files of the
    place it is read from."""
    records, names = [], []
    for place in ("here", "elsewhere"):
        shutil.copytree(tiny_root, tmp_path / place / "synth-tiny")
        data = study.resolve_data("synth:tiny", data_root=tmp_path / place)
        assert data.train_csv == tmp_path / place / "synth-tiny" / "annotations" / "EPIC_100_train.csv"
        assert str(tmp_path) not in json.dumps(data.record)
        record = json.loads(json.dumps(data.record))
        assert study.DataPaths.from_record(record, tmp_path / place).videos == data.videos
        records.append(data.record)
        names.append(study.run_name("x", dict(model="efficientvit_b0_3d", data=data.record)))
    assert records[0] == records[1] and names[0] == names[1]


def test_missing_data_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset: .*nowhere"):
        study.resolve_data(str(tmp_path / "nowhere"))
    (tmp_path / "annotations").mkdir()
    (tmp_path / "videos").mkdir()
    with pytest.raises(FileNotFoundError, match="train_csv: .*EPIC_100_train.csv"):
        study.resolve_data(str(tmp_path))


def _segments(layout: dict) -> list:
    """Three segments of each video of `layout` ({participant: [video number, ...]}), in file order."""
    from evitvid.data.annotations import Segment
    return [Segment(f"{p}_{v:02d}_{k}", p, f"{p}_{v:02d}", None, 10.0 * k, 10.0 * k + 5, 600 * k, 600 * k + 300)
            for p, videos in layout.items() for v in videos for k in range(3)]


def test_the_tuning_split_holds_out_whole_training_videos_of_many_participants():
    """`Splits.tuning`: a fifth of the training videos, whole, spread over the participants as the
    embedded set's are (19 participants of 8 training videos, one unseen participant's videos and
    2 of each other's for validation); a function of the video ids alone."""
    train = _segments({f"P{p:02d}": range(1, 9) for p in range(1, 20)})
    validation = _segments({**{f"P{p:02d}": (9, 10) for p in range(1, 20)}, "P20": range(1, 11)})
    splits = study.Splits(train, validation, ["take"], ["cup"])
    tuned = splits.tuning(0.2)
    ids = lambda segments: [s.narration_id for s in segments]  # noqa: E731
    videos = lambda segments: {s.video_id for s in segments}  # noqa: E731
    # every training segment in exactly one part, no validation segment in either
    assert sorted(ids(tuned.train) + ids(tuned.validation)) == sorted(ids(train))
    assert not set(ids(tuned.validation)) & set(ids(validation)) and not set(ids(tuned.train)) & set(ids(validation))
    # whole videos: a tuning video's every segment is held out, none of the others'
    assert not videos(tuned.train) & videos(tuned.validation)
    assert len(tuned.validation) == 3 * len(videos(tuned.validation))
    assert len(videos(tuned.validation)) == round(0.2 * 19 * 8) == 30
    assert {s.participant_id for s in tuned.validation} == {f"P{p:02d}" for p in range(1, 20)}
    assert (tuned.verbs, tuned.nouns) == (splits.verbs, splits.nouns)
    # the same videos whatever the order of the rows, and the file order kept within each part
    shuffled = study.Splits(train[::-1], validation, ["take"], ["cup"]).tuning(0.2)
    assert videos(shuffled.validation) == videos(tuned.validation)
    assert ids(tuned.train) == [i for i in ids(train) if i in set(ids(tuned.train))]
    assert videos(splits.tuning(0.3).validation) != videos(tuned.validation)
    one = study.Splits(_segments({"P01": [1]}), validation, ["take"], ["cup"])
    for fraction, split in ((0.0, splits), (1.0, splits), (0.2, one)):
        with pytest.raises(ValueError, match=rf"tune_fraction={fraction}: must be in \(0, 1\) and hold out at "
                                             r"least one of the \d+ training videos and keep another"):
            split.tuning(fraction)


def test_the_tuning_split_names_a_run_only_where_a_run_reads_it():
    """`split: validation` (cpu.yaml's) trains as before the tuning split existed: the new fields
    enter no run's name (CONTRIBUTING.md, Run folders: the recorded study keeps its runs), and
    `tune_fraction` is not read. `split: tune` renames every video run and records the share."""
    cpu = study.load_profile(PROFILES / "cpu.yaml")
    assert (cpu.split, cpu.tune_fraction) == ("validation", 0.2)

    def names(params):
        return {k: [s.name for s in group] for k, group in study.method_runs(params).items()}
    before = names(cpu)
    assert study.training.recipe_record(study.training_params(cpu, lr=1.0)) == {}
    assert names(cpu.replace(tune_fraction=0.5)) == before
    tune = cpu.replace(split="tune")
    assert study.training.recipe_record(study.training_params(tune, lr=1.0)) == {"split": "tune", "tune_fraction": 0.2}
    tuned = names(tune)
    assert tuned.keys() == before.keys() and not {n for g in tuned.values() for n in g} & {
        n for g in before.values() for n in g}
    assert names(tune.replace(tune_fraction=0.25)) != tuned
    # the image pretraining reads no video: the tuning study starts from the same run
    assert [s.name for s in study.pretraining_specs(tune)] == [s.name for s in study.pretraining_specs(cpu)]
    spec = study.method_runs(tune, ["3d_random"])["3d_random"][0]
    assert (spec.kwargs["split"], spec.kwargs["tune_fraction"]) == ("tune", 0.2)
    for change, match in ((dict(split="test"), r"split='test': one of validation, tune"),
                          (dict(tune_fraction=1.0), r"tune_fraction=1.0: must be a number between 0 and 1")):
        with pytest.raises(study.ParameterError, match=match):
            study.load_profile(PROFILES / "cpu.yaml", **change)


def test_each_method_may_train_at_its_own_learning_rate():
    """`lr` is one number for every method, or {method key: rate} naming each method of the
    profile: a mapping that repeats the number names the same runs, a method's own rate renames
    its runs only, and a missing or unknown key is refused before anything is named."""
    cpu = study.load_profile(PROFILES / "cpu.yaml", lr=0.002, inflations=["mean", "centre"])
    methods = study.study_methods(cpu)

    def names(params):
        return {k: [s.name for s in group] for k, group in study.method_runs(params).items()}
    before = names(cpu)
    same = cpu.replace(lr={k: cpu.lr for k in methods})
    assert names(same) == before and study.method_rates(same) == {k: (cpu.lr,) for k in methods}
    own = cpu.replace(lr={**same.lr, "3d_random": 0.004})
    changed = names(own)
    assert [k for k in methods if changed[k] != before[k]] == ["3d_random"]
    assert not set(changed["3d_random"]) & set(before["3d_random"])
    assert {s.kwargs["lr"] for s in study.method_runs(own, ["3d_random"])["3d_random"]} == {0.004}
    missing = {k: v for k, v in same.lr.items() if k != "3d_centre"}
    with pytest.raises(study.ParameterError, match=r"^lr: no rate for 3d_centre \(this profile's methods: "
                                                   r"frame_averaging, .*; give each one rate, or one number for "
                                                   r"all\)$"):
        study.method_runs(cpu.replace(lr=missing))
    with pytest.raises(study.ParameterError, match=r"^lr: unknown method key\(s\) '3d_inflated' \(this profile's"):
        study.method_runs(cpu.replace(lr={**same.lr, "3d_inflated": 0.002}))
    # a single run of a profile with a rate per method needs its own (python -m evitvid train --lr)
    with pytest.raises(study.ParameterError, match=r"^lr: the profile gives each method its own rate"):
        study.training_params(own)
    assert study.training_params(own, lr=0.001)["lr"] == 0.001
    # a profile that narrows its base's methods keeps the base's rates; a single run finds its method's
    narrow = own.replace(methods=("frame_averaging", "3d_random"), inflations=("mean",))
    assert study.method_rates(narrow) == {"frame_averaging": (cpu.lr,), "3d_random": (0.004,)}
    assert study.run_rate(own, "efficientvit_b0_3d", False, "mean") == 0.004
    assert study.run_rate(own.replace(lr={**own.lr, "3d_centre": 0.001}), "efficientvit_b0_3d", True, "centre") == 0.001
    with pytest.raises(study.ParameterError, match=r"none of them trains efficientvit_b1_3d from image weights: give "
                                                   r"this run's \(python -m evitvid train --lr RATE\)$"):
        study.run_rate(own, "efficientvit_b1_3d", True, "mean")
    assert study.run_rate(cpu, "efficientvit_b1_3d", True, "mean") == cpu.lr  # one rate for every run
    for change, match in ((dict(lr={"3d_random": 0}), r"lr=\{'3d_random': 0\}: every method's rate must be "
                                                      r"positive"),
                          (dict(lr={}), r"lr=\{\}: every method's rate must be positive"),
                          (dict(lr={"3d_random": 1e-7}), r"min_lr=1e-06: must be a number from 0 to lr \(1e-07\)")):
        with pytest.raises(study.ParameterError, match=match):
            study.load_profile(PROFILES / "cpu.yaml", **change)
    # papermill passes a mapping as text
    typed = "{" + ", ".join(f"{k}: {v}" for k, v in own.lr.items()) + "}"
    assert study.notebook_parameters("cpu", {"lr": typed}, profiles=PROFILES).lr == own.lr


@pytest.mark.slow
def test_a_tuning_run_trains_and_evaluates_on_its_own_videos_and_frame_caches(tiny_root, tmp_path):
    """A run with `split="tune"` trains on the training videos but the tuning ones and evaluates
    on those: its "val" is the tuning split, never a validation segment. Its frame caches: the
    training split's (shared with the validation runs, of which it reads a part) and one of the
    tuning videos at the evaluation size; the validation split's cache is untouched."""
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_root, copy, ignore=shutil.ignore_patterns("cache"))  # this test's own frame caches
    data = study.resolve_data(str(copy))
    splits = study.read_splits(data)
    tuned = splits.tuning(0.2)
    small = {**SMALL, "frame_cache": True}
    plain = study.train_video("plain", model="efficientvit_b0_frameavg", data=data, runs_root=tmp_path / "runs",
                              **small)
    tune = study.train_video("tune", model="efficientvit_b0_frameavg", data=data, runs_root=tmp_path / "runs",
                             **{**small, "split": "tune"})
    assert "split" not in plain.params and (tune.params["split"], tune.params["tune_fraction"]) == ("tune", 0.2)
    assert (tune.results["train_clips"], tune.results["val_clips"]) == (len(tuned.train), len(tuned.validation))
    assert plain.results["val_clips"] == len(splits.validation)
    assert set(study.read_logits(tune)["narration_id"]) == {s.narration_id for s in tuned.validation}
    assert set(study.read_logits(plain)["narration_id"]) == {s.narration_id for s in splits.validation}
    caches = {}
    for folder in (copy / "cache").glob("frames-*"):
        caches.setdefault(folder.name.split("-")[1], []).append(set(json.loads((folder / "index.json").read_text())))
    train_ids, val_ids = ({s.narration_id for s in part} for part in (splits.train, splits.validation))
    assert caches["40"] == [train_ids]  # the training size (crop 32 x 1.25): one cache, both runs read it
    assert set(map(frozenset, caches["32"])) == {frozenset(val_ids),  # the evaluation size: validation, tuning
                                                 frozenset(s.narration_id for s in tuned.validation)}
    assert len(caches["32"]) == 2


@pytest.mark.slow
def test_the_methods_train_once_per_seed_and_give_every_table(tiny_root, runs):
    params = tiny_params(tiny_root, runs)
    methods = study.study_methods(params)
    assert list(methods) == ["frame_averaging", "frame_averaging_random", "tsm", "3d_random", "3d_mean", "3d_centre",
                             "3d_paper_random", "3d_paper_mean"]
    assert [m.ablation for m in methods.values()] == [False, False, False, False, False, True, False, False]
    # an inflated method against random initialisation of its own architecture
    assert study.inflation_comparisons(methods) == [("3d_mean", "3d_random"), ("3d_centre", "3d_random"),
                                                    ("3d_paper_mean", "3d_paper_random")]
    assert study.every_comparison(methods) == [*study.MAIN_COMPARISONS, ("3d_centre", "3d_random"),
                                               ("3d_paper_mean", "3d_paper_random")]
    assert study.architecture_comparisons(methods) == [("3d_paper_random", "3d_random"), ("3d_paper_mean", "3d_mean")]
    trained = study.train_methods(params)
    assert {k: len(v) for k, v in trained.items()} == {k: 2 for k in methods}
    assert all(r.complete for group in trained.values() for r in group)
    assert trained["3d_centre"][0].params["inflation"] == "centre"
    assert trained["3d_random"][0].params["pretrained"] is None
    assert trained["frame_averaging"][0].params["pretrained"].startswith("02_pretrain_efficientvit_b0-")
    assert "val_reversal_change" in trained["3d_random"][0].metrics[-1]
    assert trained["frame_averaging"][0].metrics[-1]["val_reversal_change"] == 0.0  # exactly blind to order
    assert trained["tsm"][0].params["pretrained"] == trained["frame_averaging"][0].params["pretrained"]
    # the same parameters name the same runs: nothing trains again
    again = study.train_methods(params)
    assert {r.dir for g in again.values() for r in g} == {r.dir for g in trained.values() for r in g}
    # another value, another run
    other = study.method_runs(tiny_params(tiny_root, runs, lr=0.004), ["3d_random"])["3d_random"][0].name
    assert other != trained["3d_random"][0].name and other.startswith("3d_random_b0_3d_seed0-")
    # an inflation NAME_replicate: NAME's weights, the end frames repeated as time padding
    controls = tiny_params(tiny_root, runs, inflations=["mean", "mean_replicate", "centre_only"])
    specs = study.method_runs(controls, ["3d_mean", "3d_mean_replicate", "3d_centre_only"])
    replicate, mean = specs["3d_mean_replicate"][0].kwargs, specs["3d_mean"][0].kwargs
    assert (replicate["inflation"], replicate["time_padding"]) == ("mean", "replicate")
    assert (mean["inflation"], mean["time_padding"]) == ("mean", "zeros")
    assert specs["3d_mean"][0].name == trained["3d_mean"][0].name  # the main method's runs are unchanged

    splits = study.read_splits(study.study_data(params))
    acc = study.accuracy(trained, methods, resamples=200)
    assert set(acc["head"]) == {"verb", "noun", "action"} and (acc["low"] <= acc["accuracy"]).all()
    assert (acc["accuracy"] <= acc["high"]).all() and (acc["seeds"] == 2).all()
    table = study.summary(acc, study.baselines(splits))
    assert "order-blind ceiling" in table.index and "majority class" in table.index
    diffs = study.differences(trained, methods, [("3d_mean", "3d_random")], resamples=200)
    assert list(diffs.columns)[:2] == ["verb difference (points)", "verb 95% interval"]
    pairs = study.pair_accuracy(trained, methods, splits, resamples=200)
    assert set(pairs["kind"]) <= {"end state", "motion"}
    kinds = study.kind_accuracy(trained, methods, splits, resamples=200)
    evaluated = len(study.segments_by_seed(trained["3d_random"][:1]))
    assert (kinds.groupby("key")["segments"].sum() == evaluated).all()  # every segment in exactly one kind
    assert ((kinds["low"] <= kinds["accuracy"] + 1e-9) & (kinds["accuracy"] <= kinds["high"] + 1e-9)).all()
    choice = study.pair_choice_tests(trained, methods, splits, [("tsm", "frame_averaging"), ("3d_mean", "nowhere")],
                                     resamples=200)
    assert set(choice["comparison"]) == {"temporal shift (TSM) − frame averaging"}  # a method not trained: no row
    assert ((choice["low"] <= choice["difference"]) & (choice["difference"] <= choice["high"])).all()
    assert (choice["mdd"] > 0).all() and (choice["power"] == 0.8).all()
    shown = study.pair_choice_summary(choice)
    assert list(shown.index) == ["temporal shift (TSM) − frame averaging"]
    assert list(shown.columns) == ["end state (points)", "motion (points)", "all pairs (points)"]
    for r in choice.itertuples():  # each kind's cell is its row, "no segments" where the kind has none
        assert shown.loc[r.comparison, f"{r.kind} (points)"] == \
            f"{r.difference:+.1f} [{r.low:+.1f}, {r.high:+.1f}], mdd {r.mdd:.1f}"
    assert (shown == "no segments").sum().sum() == 3 - len(choice)
    # the verb claims kind by kind: each kind's segments once, all of them the claim's own test
    by_kind = study.kind_difference_tests(trained, methods, splits, [*study.CLAIM_COMPARISONS, ("3d_mean", "nowhere")],
                                          resamples=200)
    claimed = {f"{methods[a].label} − {methods[b].label}" for a, b in study.CLAIM_COMPARISONS}
    assert set(by_kind["comparison"]) == claimed
    for (a, b), rows in by_kind.groupby(["a", "b"], sort=False):
        every = rows.set_index("kind").loc["all verbs"]
        assert rows.loc[rows["kind"] != "all verbs", "segments"].sum() <= every["segments"] == evaluated
        whole = study.difference_test(trained[a], trained[b], "verb", resamples=200).t_interval
        assert (every["difference"], every["low"], every["high"]) == pytest.approx((whole.estimate, whole.low,
                                                                                    whole.high))
    assert ((by_kind["low"] <= by_kind["difference"]) & (by_kind["difference"] <= by_kind["high"])).all()
    assert list(study.kind_difference_summary(by_kind).columns) == [f"{k} (points)" for k in (*study.KINDS,
                                                                                              "all verbs")]
    assert set(pairs["method"]) == {m.label for m in methods.values()}
    assert ((pairs["low"] <= pairs["accuracy"] + 1e-9) & (pairs["accuracy"] <= pairs["high"] + 1e-9)).all()
    curves = study.learning_curves(trained, methods)
    assert len(curves) == 8 * 2 * params.epochs
    plateau = study.plateau_table(curves)
    assert list(plateau.index) == [m.label for m in methods.values()]
    assert (plateau["epochs"] == curves["epoch"].max()).all()
    frames = study.frames_curve({"frame_averaging": trained["frame_averaging"]}, methods, (1, 2), 2, resamples=200,
                                max_val=params.max_val)
    assert frames["frames"].tolist() == [1, 2]
    verdicts = study.verdict_table(trained, methods, splits, positions=2, max_val=params.max_val, resamples=200)
    assert set(study.VERDICT_COLUMNS) <= set(verdicts.columns)
    assert set(verdicts["verdict"]) <= set(study.VERDICTS)
    # the four claims between methods, one Holm family (adjusted p never below the raw t test's)
    claims = verdicts.iloc[:len(study.CLAIMS)]
    assert claims["finding"].tolist() == [c.finding for c in study.CLAIMS]
    assert claims["p_holm"].between(0, 1).all() and (claims["mdd"] >= 0).all()
    tsm = study.pair_choice_test(trained["tsm"], trained["frame_averaging"], splits, resamples=200)
    assert claims["ours"].iloc[3] == round(tsm.t_interval.estimate, 2) and claims["p_holm"].iloc[3] >= tsm.t_p - 1e-9
    assert not claims["why"].str.contains("p = 0.000").any()  # a p value too small for 3 decimals reads "< 0.001"
    # saturation from 1 to 16 frames as the paper claims it, 8 to 16 beside it; no GPU here: not testable
    assert verdicts["finding"].str.endswith("help little (Fig. 2)").sum() == 1
    assert verdicts["finding"].str.contains("from 8 to 16 frames").sum() == 1
    # the paper's EK100 levels: not testable on the embedded testbed; on EK100, each level against its interval
    levels = verdicts[verdicts["finding"].str.contains("EPIC-KITCHENS-100")]
    assert levels["verdict"].tolist() == ["not testable here"] and levels["ours"].isna().all()
    on_ek100 = study.verdict_table(trained, methods, splits, positions=2, max_val=params.max_val, resamples=200,
                                   on_ek100=True)
    levels = on_ek100[on_ek100["finding"].str.startswith("verb top-1 on EPIC-KITCHENS-100")]
    assert levels["finding"].str.contains("L1").sum() == 0  # the L1 was not trained: no row
    assert len(levels) == 3 and not levels["ours"].isna().any()
    paper = levels["paper"].str.rstrip(" %").astype(float)
    inside = (levels["ci_low"] <= paper) & (paper <= levels["ci_high"])
    assert (levels["verdict"] == inside.map({True: "reproduced", False: "not reproduced"})).all()
    html = study.verdict_display(verdicts).to_html()
    assert all(why in html for why in verdicts["why"])  # every reason shown whole, not cut at 50 characters
    assert study.seed_spread(trained, methods).shape[0] == 8
    # the claims between methods, judged again with the paper's code's 3D model
    architecture = study.architecture_verdicts(trained, methods, resamples=200)
    assert architecture.shape[0] == 3 and "not tested" not in set(architecture["paper's code: verdict"])
    assert study.architecture_numbers(architecture)["architecture_sentence"]


def test_the_testbeds_counts_come_from_its_classes():
    """Verbs, nouns and reversed pairs are counted from the splits' classes, never typed: a pair
    needs both of its verbs, and an end-state pair is one the vocabulary says an end state tells."""
    from types import SimpleNamespace
    splits = SimpleNamespace(verbs=["take", "put", "rotate-clockwise", "rotate-anticlockwise", "open", "wash"],
                             nouns=["bag", "dress"])
    assert study.testbed_numbers(splits) == {"verb_classes": "6", "noun_classes": "2", "reversed_pairs": "2",
                                             "end_state_pairs": "1"}  # open has no close: no pair


def test_a_verdicts_p_value_reads_below_a_thousandth_rather_than_zero():
    from evitvid.study.verdicts import _p_text
    assert [_p_text(p) for p in (0.0, 0.00049, 0.001, 0.0123, 0.5)] == ["< 0.001", "< 0.001", "= 0.001", "= 0.012",
                                                                         "= 0.500"]


def test_a_recorded_study_reads_back_and_knows_its_protocol(tiny_root, runs, tmp_path):
    """`study --record`: the learning curves and provenance of finished runs, written to a folder
    and read back; a record stops matching its profile when the protocol changes."""
    params = tiny_params(tiny_root, runs)
    trained = study.train_methods(params)  # the runs of the test above (nothing trains twice)
    recorded = study.record_study(params, tmp_path / "rec", "tiny")
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["learning_curves.csv", "record.json"]
    assert len(recorded.curves) == sum(len(r.metrics) for group in trained.values() for r in group)
    assert recorded.epochs == params.epochs and recorded.about["profile"] == "tiny"
    assert recorded.about["runs"] == {k: [r.name for r in group] for k, group in trained.items()}
    assert recorded.about["environment"]["threads"] >= 1 and recorded.about["training_minutes"] >= 0
    again = study.read_recorded(tmp_path / "rec")
    pd.testing.assert_frame_equal(again.curves, recorded.curves)
    assert study.recorded_runs_match(again, params)
    assert not study.recorded_runs_match(again, tiny_params(tiny_root, runs, lr=0.004))
    assert not study.recorded_runs_match(again, tiny_params(tiny_root, runs, seeds=[0]))
    with pytest.raises(FileNotFoundError, match=r"keeps no params.json.*record it with --record-runs"):
        again.method_runs()
    # --record-runs: each run's logits and files beside the curves, read as the runs themselves
    kept = study.record_study(params, tmp_path / "kept", "tiny", keep_runs=True).method_runs()
    assert {k: [r.name for r in group] for k, group in kept.items()} == recorded.about["runs"]
    for key, group in trained.items():
        for original, copy in zip(group, kept[key]):
            assert sorted(p.name for p in copy.dir.iterdir()) == sorted(study.RUN_FILES)
            assert copy.results == original.results
            # the machine's folders are not kept; everything else of the run's parameters is
            assert copy.params == {k: v for k, v in original.params.items() if k not in ("runs_root", "data_root")}
            assert study.results.per_seed_top1([copy]) == study.results.per_seed_top1([original])
    assert study.read_recorded(tmp_path / "kept").machine_spread() is None  # the profile trained no check
    # notebook 03's controls: for a profile with the main inflation only, a record's inflations and
    # kept runs; a profile that trains controls of its own, or names no record, reads its own 3D runs
    record, main_only = study.read_recorded(tmp_path / "kept"), params.replace(inflations=("mean",))
    widened, controls = study.inflation_controls(main_only, trained, record)
    assert widened == params and {k: [r.dir for r in g] for k, g in controls.items()} == \
        {k: [r.dir for r in g] for k, g in kept.items()}
    own = (params, {k: g for k, g in trained.items() if k in ("3d_random", "3d_mean", "3d_centre")})
    assert study.inflation_controls(params, trained, record) == own == study.inflation_controls(params, trained, None)
    with pytest.raises(ValueError, match=r"kept: its runs are not this profile's protocol .* record it again"):
        study.inflation_controls(main_only.replace(lr=0.004), trained, record)
    # with machine_check, the instruction-set check's two runs are kept and read back
    checked = params.replace(machine_check=True)
    with pytest.raises(FileNotFoundError, match=r"oneDNN .*: no finished run .* train it first"):
        study.record_study(checked, tmp_path / "checked", "tiny", keep_runs=True)
    here, elsewhere = study.machine_spread(checked)
    with_check = study.record_study(checked, tmp_path / "checked", "tiny", keep_runs=True)
    here_kept, elsewhere_kept = with_check.machine_spread()
    assert here_kept.name == here.name == trained["3d_random"][0].name and elsewhere_kept.name == elsewhere.name
    assert elsewhere_kept.results == elsewhere.results and "ONEDNN_MAX_CPU_ISA" in elsewhere_kept.params["environment"]
    # the chapters' check: the profile's own when it trains one, else its record's, else none
    own_check = study.instruction_set_check(checked, record)
    kept_check = study.instruction_set_check(params, with_check)
    assert (own_check.here.dir, own_check.elsewhere.dir, own_check.source) == (here.dir, elsewhere.dir, "this machine")
    assert (kept_check.here.dir, kept_check.elsewhere.dir) == (here_kept.dir, elsewhere_kept.dir)
    assert kept_check.source == f"the machine that recorded the controls study ({with_check.location})"
    assert study.instruction_set_check(params, record) is None and study.instruction_set_check(params, None) is None
    # the motion study's paragraph, from such a record: its dataset resolved again, its pairs read
    record = study.read_recorded(tmp_path / "kept")
    assert record.about["command"].endswith(" --record-runs") and "--record-runs" not in recorded.about["command"]
    assert record.data(params.data_root).train_csv == study.study_data(params).train_csv
    splits, methods = record.splits(params.data_root), study.study_methods(params)
    assert splits == study.read_splits(study.study_data(params))
    pairs = study.pair_accuracy(kept, methods, splits, resamples=50)
    tests = study.pair_choice_tests(kept, methods, splits, study.MOTION_COMPARISONS, resamples=50)
    numbers = study.motion_study_numbers(record, pairs, tests, splits)
    assert numbers["motion_study_intro"].startswith(f"{len(kept)} methods (frame averaging; ")
    assert f") at 4 frames per clip, 1 epochs and {len(params.seeds)} seeds" in numbers["motion_study_intro"]
    motion_rows = pairs[pairs["kind"] == "motion"]
    if not motion_rows.empty:  # the tiny set's first validation segments hold a motion pair
        assert numbers["motion_study_sentence"].startswith(motion_rows["pair"].iloc[0] + ": at best ")
        assert "Choosing within the motion pairs, temporal shift (TSM) − frame averaging: " in \
            numbers["motion_study_sentence"]
    assert study.motion_study_numbers(None, pairs, tests, splits)["motion_study_sentence"].startswith(
        "No motion study")
    assert study.read_recorded(None) is None and study.read_tuning(None) is None  # a profile's null: no record
    (tmp_path / "rec" / "learning_curves.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"rec/learning_curves.csv: no recorded study here"):
        study.read_recorded(tmp_path / "rec")


@pytest.mark.slow
def test_a_tuning_study_records_every_rate_and_chooses_on_the_tuning_split(tiny_root, runs, tmp_path):
    """`study --record` of a tuning study (`split: tune`, `lr_grid`): a run per method and rate,
    each evaluated on the tuning videos; the record keeps each row's method key and rate, and
    `tuned_rates` picks the rate with the best last-epoch verb top-1 (a tie to the smaller)."""
    params = tiny_params(tiny_root, runs, split="tune", lr_grid=[0.001, 0.004], seeds=[0],
                         methods=["frame_averaging_random", "3d_random"])
    trained = study.train_methods(params)
    assert {k: [r.params["lr"] for r in g] for k, g in trained.items()} == {
        "frame_averaging_random": [0.001, 0.004], "3d_random": [0.001, 0.004]}
    tuning_ids = {s.narration_id for s in study.read_splits(study.study_data(params)).tuning(0.2).validation}
    for run in (r for group in trained.values() for r in group):
        assert (run.params["split"], run.params["tune_fraction"]) == ("tune", 0.2)
        assert set(study.read_logits(run)["narration_id"]) <= tuning_ids
    recorded = study.record_study(params, tmp_path / "tune", "tiny_tune")
    assert set(zip(recorded.curves["method_key"], recorded.curves["peak_lr"])) == {
        (k, lr) for k in trained for lr in (0.001, 0.004)}
    again = study.read_recorded(tmp_path / "tune")
    assert study.recorded_runs_match(again, params)
    tuned = study.tuned_rates(again)
    for key, group in trained.items():
        finals = {r.params["lr"]: round(r.metrics[-1]["val_verb_top1"], 6) for r in group}
        assert tuned[key] == min(lr for lr, v in finals.items() if v == max(finals.values()))
    # a profile that gives each method the chosen rate names its runs at it
    chosen = tiny_params(tiny_root, runs, lr=tuned, seeds=[0], methods=["frame_averaging_random", "3d_random"])
    assert {k: [s.kwargs["lr"] for s in g] for k, g in study.method_runs(chosen).items()} == {
        k: [v] for k, v in tuned.items()}


def _curves(finals: dict, epochs: int) -> pd.DataFrame:
    """Learning curves rising linearly to each (method, seed)'s final verb top-1 (a fraction)."""
    return pd.DataFrame([{"method": m, "seed": seed, "epoch": e, "val_verb_top1": end * e / epochs,
                          "val_noun_top1": 0.5}
                         for m, ends in finals.items() for seed, end in enumerate(ends) for e in range(1, epochs + 1)])


def test_budget_comparison_says_which_differences_cross_zero_with_more_epochs():
    from types import SimpleNamespace
    methods = {"a": SimpleNamespace(label="A"), "b": SimpleNamespace(label="B"), "c": SimpleNamespace(label="C")}
    short = _curves({"A": [0.50, 0.52, 0.54], "B": [0.40, 0.42, 0.44], "C": [0.30, 0.50, 0.40]}, 8)
    long = _curves({"A": [0.60, 0.62, 0.64], "B": [0.70, 0.72, 0.74]}, 16)  # no C at 16 epochs
    table = study.budget_comparison([("8 epochs", short), ("16 epochs", long)], methods,
                                    [("a", "b"), ("c", "b"), ("a", "x")])
    assert list(table.index) == ["A − B"]  # C is missing from one budget, x from the methods
    row = table.loc["A − B"]
    assert (row["8 epochs (points)"], row["16 epochs (points)"]) == (10.0, -10.0)
    assert (row["8 epochs: interval"], row["16 epochs: interval"]) == ("above 0", "below 0")
    welch = stats.ttest_ind([50, 52, 54], [40, 42, 44], equal_var=False).confidence_interval(0.95)
    assert row["8 epochs: 95% over seeds"] == f"[{welch.low:+.1f}, {welch.high:+.1f}]"  # seeds unpaired

    about = {"environment": {"cpu": "Some CPU", "cores": 2}, "commit": "0123456789abcdef+changes",
             "recorded": "2026-12-06T05:00:00+00:00", "training_minutes": 24.6, "profile": "cpu_long",
             "params": {"epochs": 16}}
    recorded = study.RecordedStudy(Path("book/recorded/x"), long, about)
    numbers = study.longer_budget_numbers(recorded, short, methods, 8, comparisons=[("a", "b")])
    assert "on Some CPU (2 cores, 25 minutes of training) and recorded at commit 0123456+changes on 2026-12-06" \
        in numbers["long_intro"]
    assert "2 methods (A; B) with 3 seeds" in numbers["long_intro"]
    assert numbers["long_findings"].startswith("At 16 epochs 2 of 2 methods were still gaining")
    assert "1 of 1 differences stand elsewhere against 0 with more epochs (A − B: above 0 at 8 epochs, below 0 " \
           "at 16 epochs)" in numbers["long_findings"]
    steady_curves = _curves({"A": [0.60, 0.62, 0.64], "B": [0.50, 0.52, 0.54]}, 16)
    steady = study.longer_budget_numbers(study.RecordedStudy(Path("book/recorded/x"), steady_curves, about), short,
                                         methods, 8, comparisons=[("a", "b")])
    assert "lies on the same side of 0 at 16 epochs as at 8 epochs" in steady["long_findings"]
    assert study.longer_budget_numbers(None, short, methods, 8)["long_findings"] == "Not measured for this profile."


def test_the_committed_record_is_of_the_cpu_long_profile_as_it_reads_today(monkeypatch):
    """book/recorded/cpu_long (what the results chapter sets beside make study's runs) was trained
    under cpu_long.yaml's protocol: a change to the protocol (cpu.yaml or cpu_long.yaml) renames
    the runs and fails here until `make study-long` records again. cpu_long changes nothing of cpu's
    protocol but the epochs."""
    cpu, long = study.load_profile(PROFILES / "cpu.yaml"), study.load_profile(PROFILES / "cpu_long.yaml")
    protocol = study.training_params(cpu, lr=1.0)
    assert {k: v for k, v in study.training_params(long, lr=1.0).items() if protocol[k] != v} == {
        "epochs": long.epochs} and long.epochs > cpu.epochs and long.seeds == cpu.seeds
    if cpu.longer_budget is None:  # the embedded set's generator 3 made the last record stale
        pytest.skip("cpu.yaml names no longer-budget record: make study-long records one for this testbed")
    recorded = study.read_recorded(cpu.longer_budget)
    assert recorded.epochs == long.epochs
    # a run's name hashes what names its data (preset, generator version, seed), not the files:
    # naming cpu_long's runs generates nothing

    def generate(*args, **kwargs):
        raise AssertionError("naming the runs generated the dataset")
    monkeypatch.setattr(synth, "generate", generate)
    assert study.recorded_runs_match(recorded, long), "the recorded runs are not cpu_long's: run make study-long"
    curves = recorded.curves
    assert set(curves.groupby(["method", "seed"]).size()) == {long.epochs}
    assert curves["method"].nunique() == len(recorded.about["runs"]) and curves["seed"].nunique() == len(long.seeds)


def test_the_controls_study_is_cpus_3d_runs_with_the_inflation_controls_and_the_check(monkeypatch):
    """cpu_controls.yaml (make study-controls): cpu.yaml's protocol and its two 3D runs (the same
    runs, trained once), the four inflation controls and the instruction-set check, which cpu.yaml
    leaves to it; its committed record keeps those runs' logits and names the runs the profile
    names today."""
    def generate(*args, **kwargs):
        raise AssertionError("naming the runs generated the dataset")
    monkeypatch.setattr(synth, "generate", generate)
    cpu, controls = study.load_profile(PROFILES / "cpu.yaml"), study.load_profile(PROFILES / "cpu_controls.yaml")
    assert study.training_params(controls, lr=1.0) == study.training_params(cpu, lr=1.0)
    assert list(study.study_methods(controls)) == ["3d_random", "3d_mean", "3d_mean_noise", "3d_centre",
                                                   "3d_centre_only", "3d_mean_replicate"]
    shared = ["3d_random", "3d_mean"]
    assert {k: [s.name for s in g] for k, g in study.method_runs(controls, shared).items()} == \
        {k: [s.name for s in g] for k, g in study.method_runs(cpu, shared).items()}
    assert [s.kwargs["seed"] for s in study.study_runs(controls) if s.environment] == [0]
    assert not [s for s in study.study_runs(cpu) if s.environment] and cpu.inflations == ("mean",)
    if cpu.controls_study is None:  # as cpu_long's: a change to the embedded dataset makes a record stale
        pytest.skip("cpu.yaml names no controls study record: make study-controls records one for this testbed")
    recorded = study.read_recorded(cpu.controls_study)
    assert study.recorded_runs_match(recorded, controls), "the recorded runs are not cpu_controls': make study-controls"
    widened, runs = study.inflation_controls(cpu, {}, recorded)
    assert list(runs) == list(study.study_methods(controls)) and widened.inflations == controls.inflations
    here, elsewhere = recorded.machine_spread()
    assert here.name == runs["3d_random"][0].name and elsewhere.params["environment"]


def test_the_motion_study_is_cpus_protocol_at_8_frames_on_the_motion_preset(monkeypatch):
    """cpu_motion.yaml (make study-motion): cpu.yaml's protocol but the frames per clip and the
    dataset's preset, the methods the order-dependent claims compare; its committed record
    (book/recorded/cpu_motion) keeps its runs' logits and names the runs the profile names today."""
    cpu, motion = study.load_profile(PROFILES / "cpu.yaml"), study.load_profile(PROFILES / "cpu_motion.yaml")
    assert {k: v for k, v in study.training_params(motion, lr=1.0).items()
            if study.training_params(cpu, lr=1.0)[k] != v} == {"num_frames": 8}
    assert motion.dataset == "synth:motion" and motion.seeds == cpu.seeds and motion.lr == cpu.lr
    assert list(study.study_methods(motion)) == ["frame_averaging", "tsm", "3d_random", "3d_mean"]
    if cpu.motion_study is None:  # as cpu_long's: a change to the embedded dataset makes a record stale
        pytest.skip("cpu.yaml names no motion study record: make study-motion records one for this testbed")
    record = Path(cpu.motion_study)

    def generate(*args, **kwargs):
        raise AssertionError("naming the runs generated the dataset")
    monkeypatch.setattr(synth, "generate", generate)
    recorded = study.read_recorded(record)
    assert study.recorded_runs_match(recorded, motion), "the recorded runs are not cpu_motion's: make study-motion"
    runs = recorded.method_runs()
    assert all(len(group) == len(motion.seeds) for group in runs.values())
    # the splits come from the preset's plan (nothing generated): every run's validation segments in them
    splits = recorded.splits()
    truth = {s.narration_id: s.verb_class for s in splits.validation}
    for group in runs.values():
        for run in group:
            z = study.read_logits(run)
            assert not {"runs_root", "data_root"} & set(run.params)  # no machine's folders in the repository
            assert len(z["narration_id"]) == len(truth)
            assert all(truth[i] == v for i, v in zip(z["narration_id"].tolist(), z["verb"].tolist()))


def test_planned_splits_are_the_generated_sets(synth_tiny):
    """The embedded dataset's splits read from its plan alone equal those of the generated files."""
    assert study.read_planned_splits("synth:tiny") == study.read_splits(study.resolve_data(str(synth_tiny)))
    with pytest.raises(ValueError, match="only the embedded dataset"):
        study.read_planned_splits(str(synth_tiny))


def test_a_recorded_study_of_the_embedded_set_reads_its_splits_from_the_plan_of_its_version(tmp_path, synth_tiny):
    record = tmp_path / "rec"
    run = record / "runs" / "a_seed0"
    run.mkdir(parents=True)
    (record / "learning_curves.csv").write_text("method,seed,epoch,val_verb_top1\nA,0,1,0.5\n")
    (record / "record.json").write_text(json.dumps({"params": {"dataset": "synth:tiny"}, "runs": {"a": ["a_seed0"]},
                                                   "environment": {}}))
    for name in study.RUN_FILES:
        (run / name).write_text("{}")
    data = {"dataset": "synth:tiny", "generator_version": synth.GENERATOR_VERSION, "seed": 0}
    (run / "params.json").write_text(json.dumps({"data": data}))
    assert study.read_recorded(record).splits() == study.read_splits(study.resolve_data(str(synth_tiny)))
    (run / "params.json").write_text(json.dumps({"data": {**data, "generator_version": synth.GENERATOR_VERSION - 1}}))
    with pytest.raises(ValueError, match="rec: the runs trained on the embedded dataset of .* record the study again"):
        study.read_recorded(record).splits()


MAIN_METHODS = ["frame_averaging", "frame_averaging_random", "tsm", "3d_random", "3d_mean", "3d_paper_random",
                "3d_paper_mean"]


def test_the_tuning_study_trains_each_main_method_at_every_rate_on_the_tuning_split():
    """cpu_tune.yaml: cpu.yaml's protocol but the split, the main methods, one seed, a run per rate
    of its grid; cpu.yaml's lr is not read (the grid replaces it), so choosing a rate from the
    record does not rename the record's runs. Naming them trains and generates nothing."""
    cpu, tune = study.load_profile(PROFILES / "cpu.yaml"), study.load_profile(PROFILES / "cpu_tune.yaml")
    # the 4-frame reading pins its count, whatever cpu.yaml's (the count the study chose)
    assert {k: v for k, v in study.training_params(tune, lr=1.0).items()
            if study.training_params(cpu, lr=1.0)[k] != v} == {"split": "tune", **({"num_frames": 4}
                                                                                  if cpu.num_frames != 4 else {})}
    rates = set(cpu.lr.values()) if isinstance(cpu.lr, dict) else {cpu.lr}  # per method once tuned
    assert tune.seeds == (0,) and len(tune.lr_grid) >= 3 and rates <= set(tune.lr_grid) and cpu.lr_grid == ()
    assert list(study.study_methods(tune)) == MAIN_METHODS
    assert study.method_rates(tune) == {k: tune.lr_grid for k in MAIN_METHODS}
    # the tuning study's second reading: the same grid at 2 frames per clip
    two = study.load_profile(PROFILES / "cpu_tune_2_frames.yaml")
    assert {k: v for k, v in study.training_params(two, lr=1.0).items()
            if study.training_params(tune, lr=1.0)[k] != v} == {"num_frames": 2} and two.lr_grid == tune.lr_grid
    specs = study.method_runs(tune)
    for key, group in specs.items():
        assert [(s.kwargs["lr"], s.kwargs["seed"]) for s in group] == [(r, 0) for r in tune.lr_grid]
        assert all(s.kwargs["split"] == "tune" and f"_lr{s.kwargs['lr']:g}_seed0-" in s.name for s in group)
    names = {k: [s.name for s in g] for k, g in specs.items()}
    rates = {k: 0.001 * (i + 1) for i, k in enumerate(study.study_methods(cpu))}
    assert {k: [s.name for s in g] for k, g in study.method_runs(tune.replace(lr=rates)).items()} == names
    # the image pretraining of make study, and no run for the spread between machines (not the book's)
    runs = study.study_runs(tune)
    assert [s.name for s in runs if s.kind == "pretraining"] == [s.name for s in study.pretraining_specs(cpu)]
    assert len(runs) == 1 + len(MAIN_METHODS) * len(tune.lr_grid)
    for change, match in ((dict(lr_grid=[0.001, 0.002]), r"lr_grid=\[0.001, 0.002\]: a grid of rates is chosen on "
                                                         r"the tuning split, never on validation"),
                          (dict(lr_grid=[0.001, 0.001], split="tune"), r"lr_grid=\[0.001, 0.001\]: must be a list "
                                                                       r"of distinct positive rates")):
        with pytest.raises(study.ParameterError, match=match):
            study.load_profile(PROFILES / "cpu.yaml", **change)


def _tuning_record(tmp_path, finals: dict, epochs: int = 3, split: str = "tune", frames: int = 4):
    """A tuning study's record: {(method key, rate): [verb top-1 at the last epoch per seed]}, each
    run's curve rising to it except where its best epoch is the first (an earlier peak)."""
    rows = []
    for (key, lr), ends in finals.items():
        for seed, end in enumerate(ends):
            for epoch in range(1, epochs + 1):
                top1 = 0.99 if key == "peaks_early" and epoch == 1 else end * epoch / epochs
                seconds = 10 * frames if key == "a" else 5 * frames + 15  # an epoch's time grows with the frames
                rows.append({"method": key.upper(), "method_key": key, "peak_lr": lr, "seed": seed, "epoch": epoch,
                             "val_verb_top1": top1, "epoch_seconds": seconds})
    runs = {k: [] for k, _ in finals}
    return study.RecordedStudy(tmp_path, pd.DataFrame(rows), {
        "params": {"epochs": epochs, "split": split, "num_frames": frames}, "runs": runs, "environment": {}})


def test_tuned_rates_pick_each_methods_best_rate_at_the_last_epoch(tmp_path):
    recorded = _tuning_record(tmp_path, {
        ("a", 0.001): [0.50, 0.60], ("a", 0.002): [0.70, 0.40], ("a", 0.004): [0.55, 0.54],  # means .55 .55 .545
        ("b", 0.001): [0.30, 0.30], ("b", 0.004): [0.40, 0.20], ("b", 0.002): [0.35, 0.37],  # the best in the middle
        ("peaks_early", 0.001): [0.40, 0.40], ("peaks_early", 0.002): [0.50, 0.50]})
    # a tie goes to the smaller rate; only the last epoch counts, averaged over the seeds
    assert study.tuned_rates(recorded) == {"a": 0.001, "b": 0.002, "peaks_early": 0.002}
    # a profile's methods: an inflation ablation takes its architecture's main inflated method's rate
    method = study.Method
    methods = {"a": method("a", "A", "efficientvit_b0_frameavg", True),
               "3d_mean": method("3d_mean", "3D", "efficientvit_b0_3d", True, "mean"),
               "3d_centre": method("3d_centre", "3D centre", "efficientvit_b0_3d", True, "centre", ablation=True)}
    recorded.curves.loc[recorded.curves["method_key"] == "b", "method_key"] = "3d_mean"
    recorded.about["runs"] = {"a": [], "3d_mean": [], "peaks_early": []}
    assert study.tuned_rates(recorded, methods) == {"a": 0.001, "3d_mean": 0.002, "3d_centre": 0.002}
    # the book's table: each trained method's accuracy at every rate (mean over seeds, %) and its choice
    table = study.tuning_table(recorded, methods)
    assert list(table.index) == ["A", "3D", "peaks_early"] and list(table.columns) == [
        "4 frames, lr 0.001", "4 frames, lr 0.002", "4 frames, lr 0.004", "chosen lr (4 frames)"]
    assert table.loc["3D"].tolist() == [30.0, 36.0, 30.0, "0.002"]
    assert table.loc["A", "4 frames, lr 0.002"] == 55.0 and table.loc["A", "chosen lr (4 frames)"] == "0.001"
    numbers = study.tuning_numbers(recorded)
    assert numbers["tuning_edge"] == ("1 of 3 methods chose the grid's smallest rate (0.001), so their best may lie "
                                      "below it")
    assert numbers["tuning_frames"] == "4 frames per clip, the only count the tuning study read"
    assert set(study.tuning_numbers(None).values()) == {"no tuning study is recorded for this profile"}
    with pytest.raises(ValueError, match=r"the tuning study did not train 3d_mean \(it trained a, peaks_early\), "
                                         r"so it gives no rate for 3d_mean"):
        study.tuned_rates(_tuning_record(tmp_path, {("a", 0.001): [0.5], ("peaks_early", 0.002): [0.5]}), methods)
    with pytest.raises(ValueError, match=r"no main inflated method of efficientvit_b0_3d among the methods, so no "
                                         r"rate for 3d_centre"):
        study.tuned_rates(recorded, {k: m for k, m in methods.items() if k != "3d_mean"})
    # what cannot choose is refused, naming why
    with pytest.raises(ValueError, match=r"not a tuning study \(split 'validation'\): rates are chosen on the "
                                         r"tuning split, never on validation"):
        study.tuned_rates(_tuning_record(tmp_path, {("a", 0.001): [0.5]}, split="validation"))
    short = _tuning_record(tmp_path, {("a", 0.001): [0.5], ("a", 0.002): [0.6]})
    with pytest.raises(ValueError, match=r"the run of a at lr 0.002, seed 0, stops at epoch 2 of 3"):
        study.tuned_rates(study.RecordedStudy(tmp_path, short.curves.iloc[:-1], short.about))
    old = _tuning_record(tmp_path, {("a", 0.001): [0.5]})
    with pytest.raises(ValueError, match=r"learning_curves.csv: missing column\(s\) peak_lr"):
        study.tuned_rates(study.RecordedStudy(tmp_path, old.curves.drop(columns="peak_lr"), old.about))


def _write_reading(folder, recorded):
    folder.mkdir(parents=True)
    recorded.curves.to_csv(folder / "learning_curves.csv", index=False)
    (folder / "record.json").write_text(json.dumps(recorded.about))


def test_a_tuning_study_chooses_the_frame_count_then_each_methods_rate_at_it(tmp_path):
    """`read_tuning`: a folder of readings, one per frame count, over the same methods and rates.
    `tuned_frames` compares the counts with every method at its own best rate (the mean over the
    methods of their best last-epoch accuracy; a tie to fewer frames), and `tuned_rates` reads the
    rates at the chosen count; the table shows every count and rate."""
    four = {("a", 0.001): [0.50], ("a", 0.002): [0.60], ("b", 0.001): [0.40], ("b", 0.002): [0.30]}
    two = {("a", 0.001): [0.70], ("a", 0.002): [0.20], ("b", 0.001): [0.10], ("b", 0.002): [0.35]}
    # the best of each method: 4 frames (0.60 + 0.40) / 2 = 0.50, 2 frames (0.70 + 0.35) / 2 = 0.525
    _write_reading(tmp_path / "t" / "4_frames", _tuning_record(tmp_path, four, frames=4))
    _write_reading(tmp_path / "t" / "2_frames", _tuning_record(tmp_path, two, frames=2))
    tuning = study.read_tuning(tmp_path / "t")
    assert list(tuning.readings) == [2, 4] and study.frames_means(tuning) == {2: 0.525, 4: 0.5}
    assert study.tuned_frames(tuning) == 2
    assert study.tuned_rates(tuning) == {"a": 0.001, "b": 0.002}  # 2 frames' rates, not 4's (0.002, 0.001)
    table = study.tuning_table(tuning, {})
    assert list(table.columns) == ["2 frames, lr 0.001", "2 frames, lr 0.002", "4 frames, lr 0.001",
                                   "4 frames, lr 0.002", "chosen lr (2 frames)"]
    assert table.loc["b"].tolist() == [10.0, 35.0, 40.0, 30.0, "0.002"]
    assert study.tuning_numbers(tuning)["tuning_frames"] == (
        "2 frames per clip (the methods' verb top-1 on the tuning split, each at its best rate, averages 52.5 % at 2, "
        "50.0 % at 4)")
    # a: 40 s against 20 s an epoch, b: 35 against 25; the median of 2.0 and 1.4
    assert study.tuning_numbers(tuning)["tuning_epoch_cost"].startswith(
        "an epoch at 4 frames took 1.7 times as long as at 2 (the median over the 2 methods of their median epoch;")
    # a tie goes to fewer frames: the cheaper clip
    tied = {**two, ("b", 0.002): [0.30]}  # 2 frames: (0.70 + 0.30) / 2, as 4 frames
    _write_reading(tmp_path / "tie" / "4_frames", _tuning_record(tmp_path, four, frames=4))
    _write_reading(tmp_path / "tie" / "2_frames", _tuning_record(tmp_path, tied, frames=2))
    assert study.tuned_frames(study.read_tuning(tmp_path / "tie")) == 2
    # what cannot be read as one study is refused, naming the folder
    _write_reading(tmp_path / "twice" / "a", _tuning_record(tmp_path, four, frames=4))
    _write_reading(tmp_path / "twice" / "b", _tuning_record(tmp_path, two, frames=4))
    with pytest.raises(ValueError, match=r"twice: a and b are both at 4 frames per clip"):
        study.read_tuning(tmp_path / "twice")
    _write_reading(tmp_path / "other" / "4_frames", _tuning_record(tmp_path, four, frames=4))
    _write_reading(tmp_path / "other" / "2_frames", _tuning_record(tmp_path, {("a", 0.001): [0.5]}, frames=2))
    with pytest.raises(ValueError, match=r"other: its readings train other methods or rates"):
        study.read_tuning(tmp_path / "other")
    _write_reading(tmp_path / "val" / "4_frames", _tuning_record(tmp_path, four, split="validation"))
    with pytest.raises(ValueError, match=r"not a tuning study \(split 'validation'\)"):
        study.read_tuning(tmp_path / "val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: no recorded reading in the tuning study's folder"):
        study.read_tuning(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"no reading at 8 frames per clip \(it holds 2, 4\)"):
        tuning.at(8)


def test_cpu_yaml_frames_and_rates_are_those_the_committed_tuning_study_chose(monkeypatch):
    """cpu.yaml's num_frames and lr, once it gives each method its own rate, are what
    `tuned_frames` and `tuned_rates` read from the tuning study it names (`tuning`:
    book/recorded/cpu_tune, `make study-tune`), whose readings were recorded under cpu_tune.yaml's
    and cpu_tune_2_frames.yaml's protocols as they read today: a change to either renames the runs
    and fails here until the tuning study is recorded again."""
    cpu = study.load_profile(PROFILES / "cpu.yaml")
    if cpu.tuning is None:
        assert not isinstance(cpu.lr, dict), "cpu.yaml gives each method a rate but names no tuning study it came from"
        pytest.skip("cpu.yaml names no tuning study (tuning: null) and has one lr for every method: make "
                    "study-tune records book/recorded/cpu_tune, whose choices cpu.yaml's num_frames and lr then are")
    tuning = study.read_tuning(cpu.tuning)
    assert Path(cpu.tuning).name == "cpu_tune"
    profiles = {4: "cpu_tune", 2: "cpu_tune_2_frames"}

    def generate(*args, **kwargs):
        raise AssertionError("naming the runs generated the dataset")
    monkeypatch.setattr(synth, "generate", generate)
    assert sorted(tuning.readings) == sorted(profiles)
    for frames, recorded in tuning.readings.items():
        tune = study.load_profile(PROFILES / f"{profiles[frames]}.yaml")
        assert recorded.about["profile"] == profiles[frames] and recorded.path.name == f"{frames}_frames"
        assert study.recorded_runs_match(recorded, tune), f"the {frames}-frame reading is not {profiles[frames]}'s " \
                                                           "runs: run make study-tune"
        assert set(recorded.curves["peak_lr"]) == set(tune.lr_grid)
    assert cpu.num_frames == study.tuned_frames(tuning), (
        f"cpu.yaml's num_frames is not the tuning study's choice: {study.tuned_frames(tuning)}")
    assert isinstance(cpu.lr, dict), "cpu.yaml names a tuning study: its lr must be the rates that study chose"
    # the rates of cpu.yaml's methods and of the inflation controls its recorded study trains (cpu_controls.yaml)
    methods = {**study.study_methods(cpu), **study.study_methods(study.load_profile(PROFILES / "cpu_controls.yaml"))}
    assert cpu.lr == study.tuned_rates(tuning, methods), (
        f"cpu.yaml's lr is not the tuning study's choice: {study.tuned_rates(tuning, methods)}")


def test_plateau_table_measures_the_change_over_the_last_epochs():
    rows = [{"method": "A", "seed": seed, "epoch": epoch, "val_verb_top1": verb + 0.02 * seed, "val_noun_top1": 0.5}
            for seed in (0, 1) for epoch, verb in enumerate([0.1, 0.2, 0.3, 0.35])]
    table = study.plateau_table(pd.DataFrame(rows), last=2)
    assert table.loc["A", "epochs"] == 3
    assert table.loc["A", "verb top-1 at the end (%)"] == pytest.approx(36.0)
    assert table.loc["A", "verb: change since epoch 1 (points)"] == pytest.approx(15.0)
    assert table.loc["A", "noun: change since epoch 1 (points)"] == 0
    # validated every second epoch (val_every 2): the change spans the last 2 validations, 4 epochs
    sparse = pd.DataFrame([{"method": "A", "seed": 0, "epoch": e, "val_verb_top1": 0.1 * e if e % 2 == 0 else None,
                            "val_noun_top1": 0.5 if e % 2 == 0 else None} for e in range(1, 9)])
    table = study.plateau_table(sparse, last=2)
    assert table.loc["A", "verb: change since epoch 4 (points)"] == pytest.approx(40.0)
    assert "since epoch 4" in study.plateau_sentence(sparse)


def test_difference_drift_follows_each_comparison_over_the_last_epochs():
    """A learns faster than B until the end (their difference still moving); C and B gain alike
    (theirs fixed): the table pairs seeds and says which difference moved, and by how much."""
    from types import SimpleNamespace
    curves = [{"method": method, "seed": seed, "epoch": epoch, "val_verb_top1": base + rate * epoch + 0.01 * seed}
              for method, base, rate in (("A", 0.2, 0.04), ("B", 0.1, 0.02), ("C", 0.3, 0.02))
              for seed in (0, 1) for epoch in (1, 2, 3, 4)]
    methods = {k: SimpleNamespace(label=k) for k in "ABC"}
    drift = study.difference_drift(pd.DataFrame(curves), methods, [("a", "b")], last=2)
    assert drift.empty  # keys, not labels: no such methods
    methods = {"a": methods["A"], "b": methods["B"], "c": methods["C"]}
    drift = study.difference_drift(pd.DataFrame(curves), methods, [("a", "b"), ("c", "b")], last=2)
    assert list(drift.columns) == ["epoch 2", "epoch 3", "epoch 4", "moved since epoch 2 (points)"]
    assert drift.loc["A − B"].tolist() == pytest.approx([14.0, 16.0, 18.0, 4.0])
    assert drift.loc["C − B", "moved since epoch 2 (points)"] == pytest.approx(0.0)
    assert study.drift_sentence(drift) == ("over the same epochs the differences behind the verdicts moved by at "
                                           "most 4.0 points (A − B: +4.0)")


def test_pretraining_sentence_reads_the_last_epoch_and_claims_no_more():
    levelled = study.pretraining_sentence(0.3)
    assert "end of this schedule" in levelled and "%" not in levelled  # no target it should reach
    assert "still climbing" in study.pretraining_sentence(2.7)
    assert "still climbing" in study.pretraining_sentence(-1.5)  # a change either way is not a plateau


def test_budget_sentence_never_reads_training_time_as_the_whole_study():
    """Training is only part of make study: 36 minutes of training within a 45-minute budget
    must not say the study fitted it (the whole run took 55)."""
    under = study.budget_sentence(36.2, "every method with 3 seeds for 4 epochs")
    assert under.startswith("36 of the 45 minutes") and "come on top" in under and "within" not in under
    assert "dataset beside the image pretraining, inside this span" in under  # where its generation went
    over = study.budget_sentence(47.0, "every method with 3 seeds for 4 epochs")
    assert over.startswith("more than the 45 minutes") and "faster training step" in over


def test_the_training_time_is_the_span_of_runs_side_by_side_not_their_sum():
    """Two runs of 10 minutes each, side by side, then one of 5: 15 minutes passed, 25 of runs."""
    from types import SimpleNamespace

    def run(started, minutes, key="a", seed=0):
        return SimpleNamespace(params={"seed": seed, "epochs": 8}, metrics=[{"epoch": 1, "epoch_seconds": 60 * minutes,
                               "step_seconds": 50 * minutes, "data_seconds": 10 * minutes}],
                               results={"train_seconds": 60 * minutes, "environment": {"threads": 1, "cores": 2},
                                        "wall_clock": {"started": started, "finished": started + 60 * minutes}})
    first, beside, last = run(1000.0, 10), run(1000.0, 10, seed=1), run(1600.0, 5, seed=2)
    assert study.training_span([first, beside, last]) == pytest.approx(15.0)
    numbers = study.budget_numbers({"a": [first, beside, last]}, {"a": SimpleNamespace(label="A")}, {})
    assert (numbers["train_minutes"], numbers["run_minutes"]) == ("15", "25")
    assert numbers["side_by_side"] == "3 runs, at most 2 at a time, on 1 thread(s) each"
    assert numbers["budget_sentence"].startswith("15 of the 45 minutes")
    last.results.pop("wall_clock")  # a run trained before the clock was kept: the sum, said as such
    assert study.training_span([first, last]) is None
    assert study.budget_numbers({"a": [first, last]}, {"a": SimpleNamespace(label="A")}, {})["train_minutes"] == "15"


def test_plateau_sentence_reads_the_same_changes_as_the_table():
    from types import SimpleNamespace

    from evitvid.study.curves import plateau_sentence

    def run(seed, verbs):
        return SimpleNamespace(params={"seed": seed}, metrics=[
            {"epoch": e + 1, "val_verb_top1": v, "val_noun_top1": 0.5} for e, v in enumerate(verbs)])
    methods = {"a": SimpleNamespace(label="A"), "b": SimpleNamespace(label="B")}
    runs = {"a": [run(0, [0.1, 0.2, 0.3, 0.35]), run(1, [0.1, 0.2, 0.3, 0.33])],  # +15 and +13 points
            "b": [run(0, [0.2, 0.3, 0.301, 0.302])]}                                 # +0.2 points
    sentence = plateau_sentence(study.learning_curves(runs, methods))
    assert sentence.startswith("1 of 2 methods were still gaining at least 1 point")
    assert "most: A, +14.0 points" in sentence
    flat = study.learning_curves({"b": runs["b"]}, methods)
    assert "every method moved by less than 1 point" in plateau_sentence(flat)
    assert "not evidence of a plateau" in plateau_sentence(flat)  # a flat cosine end proves nothing
    assert "too few validated epochs" in plateau_sentence(flat, last=4)
    assert "too few validated epochs" in plateau_sentence(study.learning_curves({}, methods))  # nothing trained yet


def test_machine_spread_says_when_the_two_runs_computed_the_same_numbers():
    """Limiting oneDNN to the CPU's own best instruction set changes nothing: the book must not
    read that +0.0 as the spread between machines."""
    from types import SimpleNamespace

    def run(losses, verb, isa=None):
        return SimpleNamespace(params={"seed": 0, "model": "b0_3d", "pretrained": None,
                                       **({"environment": {"ONEDNN_MAX_CPU_ISA": isa}} if isa else {})},
                               metrics=[{"epoch": e + 1, "train_loss": x} for e, x in enumerate(losses)],
                               results={"val": {"verb_top1": verb, "noun_top1": 0.5, "action_top1": 0.2},
                                        "environment": {"cpu_capability": "AVX512"}})
    here = run([2.5, 2.0], 0.40)
    runs = {"a": [here, run([2.4, 2.1], 0.35)]}
    same = study.spread_numbers(runs, study.InstructionSetCheck(here, run([2.5, 2.0], 0.40, "AVX2"), "this machine"))
    assert same["machine_change"].startswith("+0.0 points") and "measures nothing" in same["machine_change"]
    assert same["seed_range"] == "5.0 points"
    assert same["machine_check_sentence"] == ("seed 0 of b0_3d from random initialisation, trained on this machine "
                                              "and again with oneDNN limited to the AVX2 instruction set, one step "
                                              "below the best that CPU runs (AVX512)")
    moved = study.spread_numbers(runs, study.InstructionSetCheck(here, run([2.5, 2.0000001], 0.42, "AVX2"), "X"))
    assert moved["machine_change"] == "+2.0 points"
    assert study.machine_table(study.InstructionSetCheck(here, run([2.5], 0.42, "AVX2"), "X"))[
        "verb top-1 (%)"].tolist() == ["40.0", "42.0"]
    none = study.spread_numbers(runs, None)  # a profile without a check: said, not measured
    assert none["seed_range"] == "5.0 points" and none["machine_change"].startswith("nothing here")
    assert study.machine_table(None).empty
    assert not study.same_computation(run([], 0.4), run([], 0.4))  # no epochs: nothing to compare


def test_finished_methods_names_the_notebook_that_trains_them(tiny_root, tmp_path):
    params = tiny_params(tiny_root, tmp_path, pretrained=None, methods=["3d_random"])
    with pytest.raises(FileNotFoundError, match="run notebook 03_3d_inflated first"):
        study.finished_methods(params)


def test_a_notebook_whose_methods_the_profile_lacks_says_so_before_anything_trains(tiny_root, tmp_path):
    # notebook 01 on a profile without frame averaging: its list of keys is empty
    params = tiny_params(tiny_root, tmp_path, pretrained=None, methods=["3d_random"])
    with pytest.raises(ValueError, match=r"^methods: this profile has none of the methods this step trains \(it has "
                                         r"3d_random\); add one to `methods`"):
        study.train_methods(params, [key for key in study.study_methods(params) if key.startswith("frame_averaging")])
    assert list(tmp_path.iterdir()) == []  # nothing trained, no run folder


def test_profiles_refuse_unknown_keys_and_bad_values(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 1\n")
    with pytest.raises(study.ParameterError, match=r"unknown key 'epochz'; valid: .*epochs"):
        study.load_profile(bad)
    bad.write_text("epochs: [1\n")
    with pytest.raises(study.ParameterError, match=r"bad.yaml: line 2.*not valid YAML"):
        study.load_profile(bad)
    with pytest.raises(study.ParameterError, match=r"num_frames=0: must be a positive integer"):
        study.load_profile(PROFILES / "cpu.yaml", num_frames=0)
    with pytest.raises(study.ParameterError, match=r"frame_averaging_models: unknown model 'efficientvit_x9'"):
        study.load_profile(PROFILES / "cpu.yaml", frame_averaging_models=["efficientvit_x9"])
    with pytest.raises(study.ParameterError, match=r"eval_frames=\[1, 0, 4\]"):
        study.load_profile(PROFILES / "cpu.yaml", eval_frames=[1, 0, 4])
    with pytest.raises(study.ParameterError, match="profile 'nope'"):
        study.load_profile("nope", profiles=PROFILES)
    with pytest.raises(study.ParameterError, match=r"decoder='opencv': one of auto, decord, pyav"):
        study.load_profile(PROFILES / "cpu.yaml", decoder="opencv")
    with pytest.raises(study.ParameterError, match=r"pretrain_image_scale=32: must be null or an integer >= "
                                                   r"pretrain_image_size \(48\)"):
        study.load_profile(PROFILES / "cpu.yaml", pretrain_image_size=48, pretrain_image_scale=32)
    for change, match in ((dict(optimizer="lamb"), r"optimizer='lamb': one of adamw, sgd"),
                          (dict(sampling="uniform"), r"sampling='uniform': one of tsn, dense"),
                          (dict(min_lr="1e-6"), r"min_lr='1e-6': must be a number from 0 to lr"),
                          (dict(lr_scaling_batch=0), r"lr_scaling_batch=0: must be a positive integer or null"),
                          (dict(mixup_prob=1.5), r"mixup_prob=1.5: must be a probability"),
                          (dict(cutmix_alpha=-1.0), r"cutmix_alpha=-1.0: must be a number >= 0"),
                          (dict(accum_steps=0), r"accum_steps=0: must be a positive integer"),
                          (dict(head="verb"), r"head='verb': one of verb_noun, action"),
                          (dict(clip_grad_norm=0.0), r"clip_grad_norm=0.0: must be positive or null")):
        with pytest.raises(study.ParameterError, match=match):
            study.load_profile(PROFILES / "cpu.yaml", **change)


def test_a_run_records_the_recipe_only_where_it_departs_from_the_first_runs(tiny_root, tmp_path):
    """cpu.yaml's recipe is the one the study's first runs trained with: runs record none of it
    (their names stay those of the record in book/recorded/). A departure is recorded and
    renames the runs, and so are the settings it brings into play (dense sampling's stride)."""
    cpu = study.load_profile(PROFILES / "cpu.yaml")
    record = study.training.recipe_record
    assert record(study.training_params(cpu, lr=1.0)) == {}
    dense = study.load_profile(PROFILES / "cpu.yaml", sampling="dense", clip_stride=3, mixup_alpha=0.8, head="action")
    assert record(study.training_params(dense, lr=1.0)) == {"sampling": "dense", "clip_stride": 3, "head": "action",
                                                    "mixup_alpha": 0.8, "cutmix_alpha": 0.0, "mixup_prob": 1.0}
    unclipped = cpu.replace(clip_grad_norm=None)  # (an override of None means "the profile's value")
    assert record(study.training_params(unclipped, lr=1.0)) == {"clip_grad_norm": None}
    # a stride without dense sampling changes nothing, and is not recorded
    assert record(study.training_params(study.load_profile(PROFILES / "cpu.yaml", clip_stride=3), lr=1.0)) == {}
    params = tiny_params(tiny_root, tmp_path)
    names = {k: [s.name for s in v] for k, v in study.method_runs(params).items()}
    sgd = study.method_runs(params.replace(optimizer="sgd"))
    assert all(s.name not in names[k] for k, group in sgd.items() for s in group)
    assert all(s.kwargs["optimizer"] == "sgd" and s.kwargs["accum_steps"] == 1 for g in sgd.values() for s in g)


def test_dense_sampling_reaches_the_clips(data):
    tsn = study.clip_dataset(data, "val", num_frames=4, crop_size=32, train=False, limit=1)
    dense = study.clip_dataset(data, "val", num_frames=4, crop_size=32, train=False, limit=1, sampling="dense",
                               clip_stride=3)
    assert np.diff(dense.indices(0)).tolist() == [3, 3, 3]
    assert np.diff(tsn.indices(0)).min() > 3  # TSN spreads the 4 frames over the whole segment


def test_the_decoder_reads_the_data_and_names_the_run(tiny_root):
    """`decoder` reaches the dataset's video source and is part of the record runs hash; PyAV and
    decord give the same clip here (the synthetic H.264 files decode identically)."""
    auto, pyav = (study.resolve_data(str(tiny_root), decoder=d) for d in ("auto", "pyav"))
    assert study.DataPaths.from_record(pyav.record).decoder == "pyav" and pyav.record["decoder"] == "pyav"
    assert study.run_name("x", {"data": auto.record}) != study.run_name("x", {"data": pyav.record})
    clips = [study.clip_dataset(d, "val", num_frames=4, crop_size=32, train=False, limit=1) for d in (auto, pyav)]
    assert [c.source.backend for c in clips] == ["auto", "pyav"]
    assert torch.equal(clips[0][0]["video"], clips[1][0]["video"])
    with pytest.raises(ValueError, match=r"decoder: unknown video backend 'opencv'; valid: auto, decord, pyav"):
        study.resolve_data(str(tiny_root), decoder="opencv")


def test_notebook_parameters_refuse_a_misspelt_name():
    namespace = {"profile": "cpu", "epochs": 3, "seeds": None, "torch": torch, "json": json.dumps, "_x": 1}
    assert study.notebook_parameters("cpu", namespace, profiles=PROFILES).epochs == 3
    assert study.notebook_parameters("cpu", namespace, profiles=PROFILES).seeds == (0, 1, 2)  # None: the profile's
    with pytest.raises(study.ParameterError, match=r"unknown notebook parameter 'epochz'"):
        study.notebook_parameters("cpu", {**namespace, "epochz": 5}, profiles=PROFILES)


def test_the_book_profiles_load():
    cpu, ek100 = study.load_profile(PROFILES / "cpu.yaml"), study.load_profile(PROFILES / "ek100.yaml")
    assert cpu.dataset == "synth:default" and ek100.annotations_dir and ek100.num_frames == 16
    assert list(study.study_methods(ek100)) == ["frame_averaging", "frame_averaging_l1", "3d_random", "3d_mean"]
    # ek100.yaml starts from cpu.yaml: what it does not name keeps cpu's value
    own = yaml.safe_load((PROFILES / "ek100.yaml").read_text())
    assert own["base"] == "cpu" and "weight_decay" not in own and ek100.weight_decay == cpu.weight_decay
    assert ek100.epochs == own["epochs"] != cpu.epochs
    # ek100_code.yaml, the paper's code: ek100.yaml's data, the code's model and recipe
    code = study.load_profile(PROFILES / "ek100_code.yaml")
    assert yaml.safe_load((PROFILES / "ek100_code.yaml").read_text())["base"] == "ek100"
    assert code.annotations_dir == ek100.annotations_dir and code.runs_root == ek100.runs_root
    assert list(study.study_methods(code)) == ["frame_averaging", "3d_random", "3d_mean"]
    assert code.frame_averaging_models == ("efficientvit_b0_frameavg",)
    assert (code.model_3d, code.head, code.sampling, code.optimizer, code.clip_grad_norm) == (
        "efficientvit_b0_3d_paper", "action", "tsn", "sgd", None)
    assert code.lr * code.batch_size * code.accum_steps / code.lr_scaling_batch == pytest.approx(7.5e-4)
    assert (code.mixup_alpha, code.cutmix_alpha, code.mixup_switch_prob, code.label_smoothing) == (0.8, 1.0, 0.5, 0.1)
    # every profile of the book loads
    assert {p.stem for p in PROFILES.glob("*.yaml")} == {"cpu", "cpu_controls", "cpu_long", "cpu_motion", "cpu_tune",
                                                         "cpu_tune_2_frames", "ek100", "ek100_code"}
    assert all(study.load_profile(p) for p in PROFILES.glob("*.yaml"))


def test_every_value_is_written_once_in_the_cpu_profile():
    """Parameters, once: `StudyParams` has no defaults, cpu.yaml names every field, and the
    training functions have no default for anything a profile sets (a second set of values
    could drift from the profile's, as `train_video`'s epochs=12 once did from cpu.yaml's 4)."""
    import dataclasses
    import inspect

    from evitvid.engine import TrainConfig
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               for f in dataclasses.fields(study.StudyParams))
    assert set(yaml.safe_load((PROFILES / "cpu.yaml").read_text())) == set(study.StudyParams.names())

    def defaulted(function, names):
        signature = inspect.signature(function).parameters
        assert set(names) <= set(signature)
        return [n for n in names if signature[n].default is not inspect.Parameter.empty]

    assert defaulted(study.train_video, [*study.PROTOCOL, "seed"]) == []
    cpu = study.load_profile(PROFILES / "cpu.yaml")
    assert defaulted(study.pretrain_images, ["model", *study.pretraining_params(cpu)]) == []
    assert [f.name for f in dataclasses.fields(TrainConfig) if f.default is dataclasses.MISSING] == [
        "epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "label_smoothing", "seed", "optimizer",
        "lr_scaling_batch", "min_lr", "mixup_alpha", "cutmix_alpha", "mixup_prob", "mixup_switch_prob", "accum_steps",
        "grad_checkpointing", "clip_grad_norm"]
    cpu = study.load_profile(PROFILES / "cpu.yaml")
    assert study.training_params(cpu, lr=1.0) == {**{k: getattr(cpu, k) for k in study.PROTOCOL}, "lr": 1.0}


def test_a_profile_starts_from_its_base_or_names_everything(tmp_path):
    partial = tmp_path / "partial.yaml"
    partial.write_text("epochs: 2\n")
    with pytest.raises(study.ParameterError, match=r"partial.yaml: a profile without a base must name every "
                                                   r"parameter .*missing: dataset, annotations_dir"):
        study.load_profile(partial)
    partial.write_text(f"base: {PROFILES / 'cpu.yaml'}\nepochs: 2\n")  # a name would be looked up beside it
    assert study.load_profile(partial) == study.load_profile(PROFILES / "cpu.yaml", epochs=2)
    child = tmp_path / "child.yaml"
    child.write_text("base: partial.yaml\nseeds: [5]\n")  # a base file next to the profile
    assert study.load_profile(child) == study.load_profile(PROFILES / "cpu.yaml", epochs=2, seeds=[5])
    partial.write_text("base: child.yaml\n")
    with pytest.raises(study.ParameterError, match=r"child.yaml: its bases form a loop"):
        study.load_profile(child)
    partial.write_text("base: nowhere\n")
    with pytest.raises(study.ParameterError, match=r"profile 'nowhere' \(the base of .*partial.yaml\)"):
        study.load_profile(partial)


def test_reversal_probe_is_zero_for_frame_averaging_and_not_for_3d(data):
    val = study.clip_dataset(data, "val", num_frames=4, crop_size=32, train=False, limit=4)
    probe = study.ReversalProbe(val, 4)
    torch.manual_seed(0)
    fa = __import__("evitvid").create_model("efficientvit_b0_frameavg", num_verbs=14, num_nouns=5)
    torch.manual_seed(0)
    model_3d = __import__("evitvid").create_model("efficientvit_b0_3d", num_verbs=14, num_nouns=5)
    assert probe(fa.train())["reversal_change"] == 0.0 and fa.training  # mode restored
    assert probe(model_3d)["reversal_change"] > 0


def test_benchmark_run_is_reused_only_under_the_same_preset_definition(tmp_path, monkeypatch):
    from evitvid import bench
    calls = []
    monkeypatch.setattr(bench, "benchmark", lambda cfg, log=None: calls.append(cfg) or {"preset": cfg.preset})
    params = study.load_profile(PROFILES / "cpu.yaml", bench_preset="smoke", bench_compile=False,
                                runs_root=str(tmp_path))
    first = study.benchmark_run("perf", params)
    assert study.benchmark_run("perf", params).dir == first.dir
    assert len(calls) == 1  # the same parameters and preset: reused
    # a run measured under an older definition of the preset is measured again, in the same folder
    recorded = json.loads((first.dir / "params.json").read_text())
    recorded["config"]["train"] = []
    (first.dir / "params.json").write_text(json.dumps(recorded))
    again = study.benchmark_run("perf", params)
    assert len(calls) == 2 and again.dir == first.dir and again.complete
    assert json.loads((again.dir / "params.json").read_text())["config"]["train"] != []


def test_seed_difference_is_welchs_interval_and_needs_two_seeds():
    from scipy import stats

    from evitvid.study.intervals import agreed_sign, seed_difference
    a, b = [40.0, 55.0, 35.0], [41.0, 36.0, 42.0]
    d = seed_difference(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d.estimate == pytest.approx(np.mean(a) - np.mean(b)) and (d.low, d.high) == pytest.approx((ci.low, ci.high))
    assert d.sign == 0 and seed_difference([1.0], b) is None
    assert seed_difference([30.0, 30.0], [20.0, 20.0]).low == 10.0  # nothing varies: no width
    tight = study.Interval(3.9, 0.2, 7.8)  # over segments, above 0
    assert agreed_sign(tight, None) == 1 and agreed_sign(tight, d) == 0  # the seeds disagree: no finding
    assert agreed_sign(tight, seed_difference([50.0, 52.0, 51.0], [40.0, 41.0, 42.0])) == 1


def test_pretraining_numbers_say_how_the_items_compare_with_the_clips():
    from types import SimpleNamespace
    run = SimpleNamespace(metrics=[{"val_top1": 0.80}, {"val_top1": 0.886}],
                          params={"image_size": 64, "image_scale": 96, "held_out": 2500},
                          results={"train_images": 27500, "val": {"top1": 0.886}})
    numbers = study.pretraining_numbers({"efficientvit_b0": run}, clip_size=64)
    assert (numbers["pretrain_images"], numbers["pretrain_held_out"]) == ("27,500", "2,500")
    assert numbers["pretrain_item_scale"] == "1.5 times as large as in the 64-pixel clips"
    assert numbers["pretrain_picture"] == "64 x 64 pixels, with items and textures as large as in a 96-pixel frame"
    assert numbers["pretrain_last_change"] == "+8.6 points" and "still climbing" in \
        numbers["pretrain_end_sentence"]
    same = SimpleNamespace(**{**vars(run), "params": {"image_size": 48, "image_scale": 64, "held_out": 2500}})
    assert study.pretraining_numbers({"m": same}, clip_size=64)["pretrain_item_scale"] == \
        "as large as in the 64-pixel clips"
    assert study.pretraining_numbers({"m": run})["pretrain_item_scale"] == "n/a"


def test_list_parameters_take_the_forms_papermill_users_type():
    """`papermill ... -p seeds '[0, 1]'` hands the notebook the text "[0, 1]" (papermill's `-p`
    parses numbers and booleans only); it, a one-value `-p seeds 0` and `-y 'seeds: [0]'` all
    give a tuple of integers."""
    from papermill.cli import _resolve_type
    for typed, seeds in (("[0, 1]", (0, 1)), ("[0]", (0,)), ("0", (0,))):
        value = _resolve_type(typed)
        assert study.notebook_parameters("cpu", {"seeds": value}, profiles=PROFILES).seeds == seeds
    assert study.notebook_parameters("cpu", {"seeds": [2]}, profiles=PROFILES).seeds == (2,)
    params = study.notebook_parameters("cpu", {"inflations": "[mean, centre]"}, profiles=PROFILES)
    assert params.inflations == ("mean", "centre")
    with pytest.raises(study.ParameterError, match=r"seeds=\['x'\]: must be a non-empty list of integers"):
        study.notebook_parameters("cpu", {"seeds": "[x]"}, profiles=PROFILES)
    # a mapping of checkpoints, as README's EK100 section types it
    typed = _resolve_type('{"efficientvit_b0_3d_paper": "/w/b0-r224.pt", "efficientvit_b0_frameavg": "/w/b0.pt"}')
    params = study.notebook_parameters("ek100_code", {"pretrained": typed}, profiles=PROFILES)
    assert params.pretrained == {"efficientvit_b0_3d_paper": "/w/b0-r224.pt", "efficientvit_b0_frameavg": "/w/b0.pt"}
    with pytest.raises(study.ParameterError, match="pretrained=.*not a mapping"):
        study.notebook_parameters("cpu", {"pretrained": "{a: [b"}, profiles=PROFILES)


def test_verb_kinds_name_each_verbs_pair_kind_by_key():
    assert study.verb_kinds(["take", "rotate-clockwise", "move-right", "shake", "wash"]) == [
        "end state", "motion", "motion", "unpaired", "unpaired"]  # wash: an EK100 verb the vocabulary does not pair


def test_verdict_numbers_group_the_findings_by_verdict():
    verdicts = pd.DataFrame({"finding": ["3D beats frame averaging", "Frame averaging saturates", "Time grows"],
                             "verdict": ["reproduced", "reproduced", "inconclusive"]})
    numbers = study.verdict_numbers(verdicts)
    assert numbers["verdicts_reproduced"] == "3D beats frame averaging; frame averaging saturates"
    assert numbers["verdicts_inconclusive"] == "time grows"
    assert numbers["verdicts_not_reproduced"] == numbers["verdicts_not_tested"] == "none"
