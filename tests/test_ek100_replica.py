"""The real-data path as a GPU user runs it, on the CPU: notebooks 01 and 03 through papermill
with `-p profile ek100` (and every other `ek100*.yaml` profile in book/params) on a replica of
EPIC-KITCHENS-100's layout written here.

The replica: a few hundred real rows of the official validation split (from the shared
folder; the test skips without it), written as both the train and the validation CSV of an
annotations folder beside the real class files; AVION's 15-second chunks
(`P01/P01_11.MP4/0.MP4`, `15.MP4`, ...) for every second of those rows' videos, at 30 fps as
AVION's copy, tiny frames (one lossless chunk encoded once and linked for every full chunk,
each video's shorter last chunk encoded on its own); and, for each checkpoint the profile
names (a timm hub name, or a file on the user's machine such as mit-han-lab's b0-r224.pt),
a timm-format checkpoint of the model's 2D image model with random weights (no network here).

What the profile sets is kept (models, 16 frames a clip, classes, recipe, no frame cache,
the timing's 224 x 224) except what a CPU cannot afford in CI's time or a test machine has: 2
clips to train and 2 to validate at 112 x 112 (at the profile's 224 x 224 the 3D notebook took
three times as long; the memory test below measures training steps at 224), 1 epoch, batch 2
in one pass, 2 loader workers, 1 clip played backwards, 1 and 16 frames (not 1 to 16) in the
frames curve and the timing. A notebook whose methods the profile lacks must refuse in one
line (ek100_code had no frame averaging when this was written). At the paper's batch of 32
clips in one pass (ek100.yaml takes them in 4 passes of 8), notebook 03 must stop on memory
before training, in the line that names batch_size.
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import nbformat
import pytest
from conftest import find_shared, make_frames, write_video

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PROFILES = sorted(p.stem for p in (BOOK / "params").glob("ek100*.yaml"))
ROWS = 300  # the first rows of the validation split: P01_11 to P01_14, 91 chunks
CHUNK_SECONDS, FPS, HEIGHT, WIDTH = 15, 30, 48, 64
SMALL = dict(max_train=2, max_val=2, epochs=1, batch_size=2, accum_steps=1, num_workers=2, reversal_clips=1,
             eval_frames=[1, 16], eval_positions=2, time_frames=[1, 16], bootstrap_resamples=200, crop_size=112)
NOTEBOOKS = {"01_frame_averaging": "frame_averaging", "03_3d_inflated": "3d_"}  # the methods each trains


def _shared_ek100() -> Path:
    shared = find_shared()
    if shared is None or not (shared / "ek100" / "EPIC_100_validation.csv").exists():
        pytest.skip("the shared folder's EK100 annotations are not here")
    return shared / "ek100"


@pytest.fixture(scope="module")
def replica(tmp_path_factory) -> dict:
    """{"annotations_dir", "videos_dir", "root"}."""
    source = _shared_ek100()
    root = tmp_path_factory.mktemp("ek100")
    annotations = root / "epic-kitchens-100-annotations"
    annotations.mkdir()
    with (source / "EPIC_100_validation.csv").open(newline="") as f:
        reader = csv.reader(f)
        header, rows = next(reader), [row for _, row in zip(range(ROWS), reader)]
    for split in ("train", "validation"):
        with (annotations / f"EPIC_100_{split}.csv").open("w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
    for name in ("EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv", "EPIC_100_video_info.csv"):
        (annotations / name).write_bytes((source / name).read_bytes())

    with (source / "EPIC_100_video_info.csv").open(newline="") as f:
        duration = {r["video_id"]: float(r["duration"]) for r in csv.DictReader(f)}
    videos = root / "EK100_320p_15sec_30fps_libx264"
    full = write_video(root / "full_chunk.MP4", make_frames(0, CHUNK_SECONDS * FPS, HEIGHT, WIDTH), fps=FPS)
    for video_id in sorted({row[header.index("video_id")] for row in rows}):
        folder = videos / video_id.split("_")[0] / f"{video_id}.MP4"
        folder.mkdir(parents=True)
        chunks = math.ceil(duration[video_id] / CHUNK_SECONDS)
        for k in range(chunks - 1):
            os.link(full, folder / f"{k * CHUNK_SECONDS}.MP4")
        last = round((duration[video_id] - (chunks - 1) * CHUNK_SECONDS) * FPS)
        write_video(folder / f"{(chunks - 1) * CHUNK_SECONDS}.MP4", make_frames(0, last, HEIGHT, WIDTH), fps=FPS)

    return {"annotations_dir": annotations, "videos_dir": videos, "root": root}


def _stand_ins(profile: str, folder: Path) -> dict:
    """The profile's `pretrained` (a checkpoint per model: a timm name, or a file on the user's
    machine), each replaced by a timm-format checkpoint of the model's 2D image model, random
    weights, written to `folder` once per image model."""
    import torch
    from safetensors.torch import save_file

    from evitvid import create_model, study
    from evitvid.models import get_model_entry

    named = study.load_profile(profile, profiles=BOOK / "params").pretrained
    assert isinstance(named, dict), f"{profile}.yaml: expected a checkpoint per model, got {named!r}"
    out = {}
    for model in named:
        image_model = get_model_entry(model).image_model
        path = folder / f"{image_model}.safetensors"
        if not path.exists():
            torch.manual_seed(0)
            save_file({k: v.contiguous() for k, v in create_model(image_model).state_dict().items()}, str(path))
        out[model] = str(path)
    return out


def _errors(path: Path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)
    return [f"{output.get('ename')}: {output.get('evalue')}" for cell in notebook.cells
            for output in cell.get("outputs", []) if output.get("output_type") == "error"]


def _run(name: str, out: Path, parameters: dict) -> None:
    papermill.execute_notebook(str(BOOK / f"{name}.ipynb"), str(out), parameters=parameters, cwd=str(BOOK),
                               kernel_name="python3", progress_bar=False)


@pytest.mark.slow  # two notebooks and up to four training runs of the profile's models: one to two minutes
@pytest.mark.parametrize("profile", PROFILES)
def test_the_ek100_notebooks_run_on_a_replica_of_its_layout(profile, replica, tmp_path):
    from evitvid import study

    runs = tmp_path / "runs"
    parameters = dict(profile=profile, annotations_dir=str(replica["annotations_dir"]),
                      videos_dir=str(replica["videos_dir"]), runs_root=str(runs),
                      pretrained=_stand_ins(profile, replica["root"]), **SMALL)
    params = study.load_profile(profile, profiles=BOOK / "params",
                                **{k: v for k, v in parameters.items() if k != "profile"})
    methods = study.study_methods(params)
    for name, prefix in NOTEBOOKS.items():
        out = tmp_path / f"{name}.ipynb"
        if any(key.startswith(prefix) for key in methods):
            _run(name, out, parameters)
            assert _errors(out) == [], name
        else:
            with pytest.raises(papermill.PapermillExecutionError, match="methods: this profile has none of the "
                                                                        "methods this step trains"):
                _run(name, out, parameters)
    finished = {p.parent.name: json.loads(p.read_text()) for p in runs.glob("*/results.json")}
    trained = {name: result for name, result in finished.items() if "val" in result and "model" in result}
    assert len(trained) == len(methods) * len(params.seeds), sorted(finished)
    for name, result in trained.items():
        assert result["train_clips"] == 2 and result["val_clips"] == 2 and result["num_frames"] == 16, name
        assert 0 <= result["val"]["verb_top1"] <= 1 and "action_top1" in result["val"], name
        assert (runs / name / "predictions.csv").exists() and (runs / name / "logits.npz").exists(), name
        recorded = json.loads((runs / name / "params.json").read_text())
        assert recorded["data"]["annotations_dir"] == str(replica["annotations_dir"]) and recorded["crop_size"] == 112
        if recorded["pretrained"]:  # the stand-in for the checkpoint the profile names
            assert recorded["pretrained"].endswith(".safetensors")
    assert {result["model"] for result in trained.values()} == {m.model for m in methods.values()}
    if any(key.startswith("frame_averaging") for key in methods):
        assert (runs / "01_frame_averaging" / "figures" / "accuracy_vs_frames.png").exists()
    assert (runs / "03_3d_inflated" / "reversal_at_initialisation.csv").exists()


@pytest.mark.slow  # a kernel, the data, and a step measured at 1 and 2 clips of 16 x 224 x 224: about 30 s
def test_the_paper_batch_stops_on_memory_in_the_notebook_not_in_the_oom_killer(replica, tmp_path):
    from evitvid.engine.memory import HEADROOM, device_memory

    if device_memory("cpu").available * HEADROOM > 28e9:  # the 3D B1's 32 clips take about 31.5 GB
        pytest.skip("this machine may hold the 3D B1's batch of 32: the notebook would train it")
    runs = tmp_path / "runs"
    parameters = dict(profile="ek100", annotations_dir=str(replica["annotations_dir"]),
                      videos_dir=str(replica["videos_dir"]), runs_root=str(runs),
                      pretrained=_stand_ins("ek100", replica["root"]), max_train=32, max_val=2, num_workers=2,
                      batch_size=32, accum_steps=1)  # the paper's 32 clips in one pass (ek100.yaml: 8 x 4)
    with pytest.raises(papermill.PapermillExecutionError,
                       match=r"MemoryFitError: batch_size=32: one training step of 32 clips of 3 x 16 x 224 x 224 "
                             r"needs about .* use batch_size=\d+ with accum_steps=\d+"):
        _run("03_3d_inflated", tmp_path / "03.ipynb", parameters)
    assert not list(runs.glob("3d_*"))  # stopped before any run folder
