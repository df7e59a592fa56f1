"""Smoke run of every notebook of the book with tiny parameters (papermill), checking that each
wrote its run folder: the same code path as `make study`, at a size CI can afford."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ["00_data", "01_frame_averaging", "02_image_pretraining", "03_3d_inflated", "04_results", "05_explorer",
             "06_performance"]
TINY = dict(num_frames=4, crop_size=32, epochs=1, batch_size=4, max_val=16)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    from evitvid.data import synth
    root = tmp_path_factory.mktemp("synth") / "tiny"
    synth.generate(root, "tiny", seed=0, workers=1, progress=False)
    return str(root)


def parameters(name: str, dataset: str, runs_root: Path) -> dict:
    common = dict(dataset=dataset, runs_root=str(runs_root))
    return {
        "00_data": common,
        "02_image_pretraining": dict(runs_root=str(runs_root), model="efficientvit_b0", image_size=32, epochs=1,
                                     batch_size=16, max_train=64),
        "01_frame_averaging": dict(common, models=["efficientvit_b0_frameavg"], eval_frames=[1, 2],
                                   time_models=["efficientvit_b0_frameavg"], time_frames=[1, 2],
                                   time_crop_size=32, **TINY),
        "03_3d_inflated": dict(common, model="efficientvit_b0_3d", frame_averaging_model="efficientvit_b0_frameavg",
                               **TINY),
        "04_results": dict(runs_root=str(runs_root), model_3d="efficientvit_b0_3d",
                           frame_averaging_model="efficientvit_b0_frameavg"),
        "05_explorer": dict(common, model_3d="efficientvit_b0_3d", frame_averaging_model="efficientvit_b0_frameavg",
                            gallery_size=2),
        "06_performance": dict(runs_root=str(runs_root), preset="smoke", torch_compile=False),
    }[name]


# 02 first: 01 and 03 then reuse its (tiny) pretraining instead of the default one.
ORDER = ["00_data", "02_image_pretraining", "01_frame_averaging", "03_3d_inflated", "04_results", "05_explorer",
         "06_performance"]


def test_every_notebook_is_in_the_order_and_the_toc():
    assert sorted(ORDER) == NOTEBOOKS == sorted(p.stem for p in BOOK.glob("[0-9]*.ipynb"))
    toc = (ROOT / "_toc.yml").read_text()
    assert all(f"file: {name}" in toc for name in NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_thin_with_a_literal_parameters_cell(name):
    nb = nbformat.read(BOOK / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: one cell tagged 'parameters'"
    body = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "def " not in body and "class " not in body, f"{name}: code belongs in evitvid/"
    for line in tagged[0].source.splitlines():
        value = line.split("#")[0].split("=", 1)[1].strip() if "=" in line.split("#")[0] else ""
        if value:
            import ast
            ast.literal_eval(value)  # literals only


@pytest.mark.slow
def test_all_notebooks_run_and_write_their_runs(tmp_path, dataset, runs_root):
    for name in ORDER:
        papermill.execute_notebook(str(BOOK / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                                   parameters=parameters(name, dataset, runs_root), cwd=str(BOOK), kernel_name="python3",
                                   progress_bar=False)
    finished = {p.parent.name: json.loads(p.read_text()) for p in runs_root.glob("*/results.json")}
    bench = finished.pop("06_performance")
    assert bench["preset"] == "smoke" and bench["depthwise"] and bench["onnx"][0]["status"] == "ok"
    assert {"latency_vs_frames.png", "attention_scaling.png", "achieved_gflops.png"} <= {
        p.name for p in (runs_root / "06_performance" / "figures").iterdir()}
    assert set(finished) == {"02_pretrain_efficientvit_b0", "01_frame_averaging_efficientvit_b0_frameavg",
                             "03_3d_random_efficientvit_b0_3d", "03_3d_inflated_efficientvit_b0_3d"}
    assert all("val" in r for r in finished.values())
    fa = runs_root / "01_frame_averaging_efficientvit_b0_frameavg"
    assert {"accuracy_vs_frames.csv", "time_vs_frames.csv", "predictions.csv", "metrics.json"} <= {
        p.name for p in fa.iterdir()}
    assert (runs_root / "04_results" / "paper_vs_ours.csv").exists()
    assert (runs_root / "00_data" / "figures" / "class_distribution.png").exists()
    # 03 used the pretraining run of 02, inflated
    assert json.loads((runs_root / "03_3d_inflated_efficientvit_b0_3d" / "params.json").read_text())[
        "pretrained"].endswith("02_pretrain_efficientvit_b0/model.safetensors")


def test_a_bad_parameter_fails_at_once_naming_it(tmp_path, dataset, runs_root):
    with pytest.raises(papermill.PapermillExecutionError, match="num_frames=0"):
        papermill.execute_notebook(str(BOOK / "03_3d_inflated.ipynb"), str(tmp_path / "bad.ipynb"),
                                   parameters=dict(parameters("03_3d_inflated", dataset, runs_root), num_frames=0,
                                                   pretrained=None),
                                   cwd=str(BOOK), kernel_name="python3", progress_bar=False)
