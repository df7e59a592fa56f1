"""Smoke run of every notebook of the book on a tiny profile (papermill), checking that each
wrote its run folder: the same code path as `make study`, at a size CI can afford."""
from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from conftest import CPU_BASE, tiny_copy

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
# the book's notebooks, from the table of contents (the one list of them; the Makefile reads it too)
NOTEBOOKS = [entry["file"] for part in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]
             for entry in part["chapters"] if entry["file"][:2].isdigit()]
# 02 first: 01 and 03 then reuse its (tiny) pretraining.
ORDER = sorted(NOTEBOOKS, key=lambda name: name != "02_image_pretraining")


@pytest.fixture(scope="module")
def tiny_profile(synth_tiny, tmp_path_factory) -> Path:
    root = tiny_copy(synth_tiny, tmp_path_factory)
    runs = tmp_path_factory.mktemp("runs")
    profile = runs.parent / "tiny.yaml"
    profile.write_text(yaml.safe_dump(dict(base=CPU_BASE,
        dataset=str(root), runs_root=str(runs), seeds=[0, 1], epochs=1, num_frames=4, crop_size=32, batch_size=4,
        max_val=16, reversal_clips=4, inflations=["mean", "centre", "centre_only"], machine_check=True,
        pretrain_image_size=32,
        pretrain_epochs=1, pretrain_batch_size=16, pretrain_max_train=64, pretrain_held_out=32,
        eval_frames=[1, 2, 8, 16],
        eval_positions=2, bootstrap_resamples=200, time_models=["efficientvit_b0_frameavg"], time_frames=[1, 2],
        time_crop_size=32, bench_preset="smoke", bench_compile=False, gallery_size=2)))
    return profile


def test_every_notebook_is_in_the_order_and_the_toc():
    assert sorted(ORDER) == sorted(NOTEBOOKS) == sorted(p.stem for p in BOOK.glob("[0-9]*.ipynb"))
    assert ORDER[0] == "02_image_pretraining" and len(NOTEBOOKS) == 7
    made = subprocess.run(["make", "-s", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-C", str(ROOT),
                           "-p", "-n", "clean-book"], capture_output=True, text=True).stdout
    assert f"NOTEBOOKS := {' '.join(NOTEBOOKS)}" in made  # the Makefile reads the same list


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_are_thin_with_a_literal_parameters_cell(name):
    nb = nbformat.read(BOOK / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: one cell tagged 'parameters'"
    body = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "def " not in body and "class " not in body, f"{name}: code belongs in evitvid/"
    assert "assert " not in body, f"{name}: a reader gets a clear error, not an assert"
    for line in tagged[0].source.splitlines():
        value = line.split("#")[0].split("=", 1)[1].strip() if "=" in line.split("#")[0] else ""
        if value:
            ast.literal_eval(value)  # literals only
    # what follows the parameters reads them through the profile, which refuses unknown names
    after = nb.cells[nb.cells.index(tagged[0]) + 1]
    # profile names are looked up from the book's folder (make study, Jupyter) or the repository's root
    assert after.source.startswith('params = study.notebook_parameters(profile, globals(), '
                                   'profiles=["params", "book/params"])'), name
    # every code cell, the parameters too, is hidden in the built book (the code is one click
    # away) or removed (plumbing)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert {"hide-input", "hide-cell", "remove-cell", "remove-input"} & set(cell.metadata.get("tags", [])), \
                f"{name}: {cell.source[:60]!r} is shown as code"


@pytest.mark.slow
def test_all_notebooks_run_and_write_their_runs(tmp_path, tiny_profile):
    for name in ORDER:
        papermill.execute_notebook(str(BOOK / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                                   parameters={"profile": str(tiny_profile)}, cwd=str(BOOK), kernel_name="python3",
                                   progress_bar=False)
    runs_root = Path(yaml.safe_load(tiny_profile.read_text())["runs_root"])
    finished = {p.parent.name: json.loads(p.read_text()) for p in runs_root.glob("*/results.json")}
    bench = finished.pop("06_performance")
    assert bench["preset"] == "smoke" and bench["depthwise"] and bench["onnx"][0]["status"] == "ok"
    prefixes = sorted({name.split("-")[0].rsplit("_seed", 1)[0] for name in finished})
    assert prefixes == ["02_pretrain_efficientvit_b0", "3d_centre_b0_3d", "3d_centre_only_b0_3d", "3d_mean_b0_3d",
                        "3d_paper_mean_b0_3d_paper", "3d_paper_random_b0_3d_paper", "3d_random_b0_3d",
                        "frame_averaging_b0_frameavg", "frame_averaging_random_b0_frameavg", "tsm_b0_tsm"]
    seeds = [n for n in finished if n.startswith("3d_mean_")]
    assert len(seeds) == 2 and all("val" in finished[n] for n in seeds)
    verdicts = (runs_root / "04_results" / "verdicts.csv").read_text().splitlines()
    # the estimate, its interval over seeds and videos, the family-adjusted p and the detectable difference
    assert verdicts[0] == "finding,paper,ours,ci_low,ci_high,p_holm,mdd,verdict" and len(verdicts) >= 8
    assert any(line.endswith(",not testable here") for line in verdicts)  # Fig. 3's GPU timing, on a CPU
    assert (runs_root / "00_data" / "baselines.csv").exists()
    # verbs read by kind, and the inflation controls' contrasts in notebook 03's prose
    assert (runs_root / "04_results" / "kind_accuracy.csv").exists()
    assert (runs_root / "04_results" / "pair_choice_tests.csv").exists()
    probe = (runs_root / "04_results" / "motion_probe.csv").read_text().splitlines()  # the tiny set: the move pair
    assert probe[0].startswith("pair,measure,frames,") and probe[1].startswith("move-left / move-right,pan_shift,4,")
    # the motion study's record (committed), read by the profile the tiny one starts from: 4 methods x 6 pairs
    motion = pd.read_csv(runs_root / "04_results" / "motion_pair_accuracy.csv")
    assert motion["method"].nunique() == 4 and set(motion["kind"]) == {"end state", "motion"} and len(motion) == 24
    mechanism = (tmp_path / "03_3d_inflated.ipynb").read_text()
    assert "3D, inflated (centre only) \\u2212 3D, inflated" in mechanism or "centre only) − 3D, inflated" in mechanism
    assert (runs_root / "01_frame_averaging" / "figures" / "accuracy_vs_frames.png").exists()
    assert (runs_root / "03_3d_inflated" / "reversal_at_initialisation.csv").exists()
    # a profile that trains its own controls and instruction-set check reads them, not the records
    controls = pd.read_csv(runs_root / "03_3d_inflated" / "control_accuracy.csv")
    assert controls["method"].nunique() == 4 and "3D, inflated (centre only)" in set(controls["method"])
    assert len((runs_root / "04_results" / "machine_spread.csv").read_text().splitlines()) == 3
    # the paper's code's 3D model: its time steps, and the verdicts judged with it
    steps = (runs_root / "03_3d_inflated" / "time_steps.csv").read_text()
    assert "3D B0 (the paper's code),16,8,4,2,1,1" in steps
    architecture = (runs_root / "04_results" / "architecture_verdicts.csv").read_text().splitlines()
    assert len(architecture) == 4 and "not tested" not in "".join(architecture[1:])
    # 03 inflated the pretraining run of 02, recorded relative to the runs root
    inflated = json.loads((runs_root / seeds[0] / "params.json").read_text())
    assert inflated["pretrained"].startswith("02_pretrain_efficientvit_b0-") and inflated["inflation"] == "mean"


@pytest.mark.slow  # a Jupyter kernel started for the notebook: about 6 s
def test_a_bad_parameter_fails_at_once_naming_it(tmp_path, tiny_profile):
    with pytest.raises(papermill.PapermillExecutionError, match="num_frames=0"):
        papermill.execute_notebook(str(BOOK / "03_3d_inflated.ipynb"), str(tmp_path / "bad.ipynb"),
                                   parameters={"profile": str(tiny_profile), "num_frames": 0},
                                   cwd=str(BOOK), kernel_name="python3", progress_bar=False)


@pytest.mark.slow  # a Jupyter kernel started for the notebook: about 7 s
def test_a_misspelt_parameter_is_refused_naming_the_valid_ones(tmp_path, tiny_profile):
    with pytest.raises(papermill.PapermillExecutionError, match="unknown notebook parameter 'epochz'"):
        papermill.execute_notebook(str(BOOK / "00_data.ipynb"), str(tmp_path / "bad.ipynb"),
                                   parameters={"profile": str(tiny_profile), "epochz": 1},
                                   cwd=str(BOOK), kernel_name="python3", progress_bar=False)
