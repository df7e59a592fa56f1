"""Many runs at once (`evitvid.study.jobs`): the order runs start in, what a missing or
failing run does, and that a run trained in a worker is the run trained in this process."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evitvid import study
from evitvid.data import synth
from evitvid.runs import Run
from evitvid.study import jobs
from evitvid.study.jobs import RunSpec, threads_per_run
from conftest import CPU_BASE, PROFILES, tiny_copy


@pytest.fixture(scope="module")
def tiny_root(synth_tiny, tmp_path_factory) -> Path:
    return tiny_copy(synth_tiny, tmp_path_factory)


def tiny_params(tiny_root: Path, runs: Path, **changes) -> study.StudyParams:
    return study.load_profile(PROFILES / "cpu.yaml", **{**dict(
        dataset=str(tiny_root), runs_root=str(runs), seeds=[0], epochs=2, num_frames=4, crop_size=32, batch_size=4,
        max_val=8, reversal_clips=2, inflations=["mean"], methods=["frame_averaging", "3d_random"],
        pretrain_image_size=32, pretrain_epochs=1, pretrain_batch_size=16, pretrain_max_train=64,
        pretrain_held_out=32), **changes})


def test_threads_share_the_cores_out():
    assert [threads_per_run(p, cores=2) for p in (1, 2, 3)] == [2, 1, 1]
    assert threads_per_run(2, cores=8) == 4


def test_a_run_needing_an_unknown_run_is_refused_before_anything_trains(tmp_path):
    spec = RunSpec("b", {"runs_root": str(tmp_path)}, "B", needs=("a",))
    with pytest.raises(ValueError, match=r"run b \(B\) needs a, which is neither finished nor in the list"):
        study.train_runs([spec])
    assert list(tmp_path.iterdir()) == []


def test_the_study_lists_the_pretraining_first_then_what_needs_nothing(tiny_root, tmp_path):
    params = tiny_params(tiny_root, tmp_path, seeds=[0, 1], methods=["frame_averaging", "3d_random", "3d_inflated"],
                         machine_check=True)
    assert not [s for s in study.study_runs(params.replace(machine_check=False)) if s.environment]
    assert study.plan.trains_check(params) and not study.plan.trains_check(params.replace(split="tune"))
    specs = study.study_runs(params)
    kinds = [(s.kind, bool(s.needs)) for s in specs]
    assert kinds == [("pretraining", False)] + [("video", False)] * 3 + [("video", True)] * 4
    pretraining = specs[0].name
    assert all(s.needs == (pretraining,) for s in specs[4:])
    # the spread between machines: seed 0 of 3D random init again, under another instruction set
    spread = [s for s in specs if s.environment]
    assert len(spread) == 1 and spread[0].kwargs["seed"] == 0 and spread[0].kwargs["model"] == "efficientvit_b0_3d"
    assert set(spread[0].environment) == {"ONEDNN_MAX_CPU_ISA"}


@pytest.mark.slow
def test_workers_train_each_run_after_what_it_needs_and_as_this_process_would(tiny_root, tmp_path):
    """Two workers of one thread each: the frame-averaging run starts only once its pretraining
    is finished, while the random-init run trains beside the pretraining; and each run computes
    exactly what it computes alone in this process on one thread (same losses to the last bit)."""
    params = tiny_params(tiny_root, tmp_path / "workers", parallel_runs=2)
    lines: list[str] = []
    specs = [s for s in study.study_runs(params) if not s.environment]
    assert [s.label for s in specs] == ["image pretraining (efficientvit_b0)", "3D, random init, seed 0",
                                        "frame averaging, seed 0"]
    prepared: list[int] = []

    def prepare(cores: int) -> None:  # the videos' data: made beside the pretraining, before any video run
        prepared.append(cores)
        lines.append("prepare")
    trained = study.train_runs(specs, parallel=2, log=lines.append, prepare=prepare)
    started = [line.removeprefix("started ") for line in lines if line.startswith("started ")]
    finished = [line for line in lines if line.startswith("[")]
    assert prepared == [jobs.available_cores() - threads_per_run(2)]
    assert lines.index("started image pretraining (efficientvit_b0)") < lines.index("prepare") < \
        lines.index("started 3D, random init, seed 0")
    assert not any(line.startswith("[") for line in lines[:lines.index("prepare")])  # beside the pretraining
    assert started[:2] == ["image pretraining (efficientvit_b0)", "3D, random init, seed 0"]
    assert lines.index("started frame averaging, seed 0") > next(
        i for i, line in enumerate(lines) if line.startswith("[") and "image pretraining" in line)
    assert len(finished) == 3 and all(run.complete for run in trained.values())
    assert all(run.results["environment"]["threads"] == 1 for run in trained.values())

    alone = tiny_params(tiny_root, tmp_path / "alone", parallel_runs=1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        for spec in [s for s in study.study_runs(alone) if not s.environment]:
            here = Run(Path(jobs._train(spec, 1, False)))  # the workers' unit of work, here
            there = trained[spec.name]
            assert [m["train_loss"] for m in here.metrics] == [m["train_loss"] for m in there.metrics], spec.label
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_failing_run_is_named_and_nothing_starts_after_it(tiny_root, tmp_path):
    """The run beside it finishes (its epochs are not thrown away); the one waiting never starts."""
    params = tiny_params(tiny_root, tmp_path, seeds=[0, 1], methods=["3d_random", "frame_averaging_random"])
    runs = study.method_runs(params)
    first, beside = runs["3d_random"]
    waiting = runs["frame_averaging_random"][0]
    broken = RunSpec(first.name, dict(first.kwargs, lr=-1.0), "broken")
    lines: list[str] = []
    with pytest.raises(RuntimeError, match=r"run 3d_random_b0_3d_seed0-\w+ \(broken\): .*lr=-1.0"):
        study.train_runs([broken, beside, waiting], parallel=2, log=lines.append)
    assert any(line.startswith(f"run {first.name} (broken) failed") for line in lines)
    assert beside.complete and not (tmp_path / waiting.name).exists() and not (tmp_path / first.name).exists()


@pytest.mark.slow
def test_a_failing_preparation_is_named_and_no_video_run_starts(tiny_root, tmp_path):
    """The pretraining beside it finishes; nothing that reads videos starts; the error names it.
    Without a video run to train, nothing is prepared."""
    params = tiny_params(tiny_root, tmp_path, methods=["3d_random"])
    specs = [s for s in study.study_runs(params) if not s.environment]
    pretraining = study.pretraining_specs(tiny_params(tiny_root, tmp_path, methods=["frame_averaging"]))
    lines: list[str] = []

    def prepare(cores: int) -> None:
        raise FileNotFoundError("videos/P01_01.MP4: no such file")
    with pytest.raises(RuntimeError, match=r"preparing the videos' data: videos/P01_01.MP4: no such file"):
        study.train_runs(pretraining + specs, parallel=2, log=lines.append, prepare=prepare)
    assert pretraining[0].complete and not any(s.complete or (tmp_path / s.name).exists() for s in specs)
    assert "preparing the videos' data failed: videos/P01_01.MP4: no such file" in lines

    def never(cores: int) -> None:
        raise AssertionError("prepared without a video run to train")
    assert study.train_runs(pretraining, parallel=2, log=lines.append, prepare=never)[pretraining[0].name].complete


def test_naming_the_runs_of_an_embedded_dataset_generates_nothing(tiny_root, tmp_path, monkeypatch):
    """A run's name hashes what names its data; the study names its runs (and starts the
    pretraining) before the dataset exists, and `prepare_data` generates it."""
    def generate(*args, **kwargs):
        raise AssertionError("generated while only naming")
    monkeypatch.setattr(synth, "generate", generate)
    params = study.load_profile(PROFILES / "cpu.yaml", runs_root=str(tmp_path / "runs"))
    named = study.study_data(params, generate=False)
    assert named.record["dataset"] == "synth:default"
    assert named.videos == synth.default_out_dir("default", data_root=params.data_root) / "videos"
    specs = study.study_runs(params)
    methods = study.study_methods(params)
    assert len(specs) == 1 + len(methods) * len(params.seeds)  # pretraining, methods (the check is recorded)
    assert not (tmp_path / "runs").exists()
    made: list[tuple] = []
    monkeypatch.setattr(synth, "generate", lambda **kwargs: made.append(kwargs) or tiny_root)  # stands in
    monkeypatch.setattr(study.plan, "build_frame_caches",
                        lambda data, crop, workers, tune_fraction: made.append((crop, workers, tune_fraction)))
    data = study.prepare_data(params, cores=1)
    # the validation split's caches: no tuning split carved (cpu.yaml's split is validation)
    assert made == [dict(preset="default", seed=0, data_root=params.data_root, workers=1),
                    (params.crop_size, 1, None)]
    assert data.record == named.record


def test_the_study_command_lists_every_run_and_whether_it_is_finished(tiny_root, tmp_path, capsys):
    import yaml

    from evitvid.cli import main
    profile = tmp_path / "tiny.yaml"
    profile.write_text(yaml.safe_dump(dict(base=CPU_BASE, dataset=str(tiny_root), runs_root=str(tmp_path / "runs"),
                                           seeds=[0], methods=["frame_averaging", "3d_random"],
                                           inflations=["mean"], machine_check=True)))
    assert main(["study", "--profile", str(profile), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["todo"] * 4  # pretraining, 3D, its spread run, frame averaging
    assert lines[0].split()[1].startswith("02_pretrain_efficientvit_b0-")
    assert lines[-1].endswith(f"(after {lines[0].split()[1]})")
    assert not (tmp_path / "runs").exists()  # listing trains nothing
