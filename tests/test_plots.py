"""Figures of `evitvid.plots` from tiny tables with the columns their real producers write
(`study.learning_curves`, `study.frames_curve`, `study.accuracy`, `study.pair_accuracy`,
`study.baselines`, `study.class_counts`, `study.segment_lengths`, `time_inference`,
`bench.section_table`): each returns a Figure, saves a PNG into `run.figures` only when given
a run, and draws what its table holds."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from evitvid import plots  # noqa: E402
from evitvid.runs import open_run  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
NAN = float("nan")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def curves(metrics=("train_loss", "val_verb_top1", "val_noun_top1", "val_reversal_change")):
    """Trainer metrics rows (fractions for top-1) with method and seed, as `study.learning_curves`."""
    values = {"train_loss": lambda s, e: 2.0 / e, "val_verb_top1": lambda s, e: 0.1 * e + 0.01 * s,
              "val_noun_top1": lambda s, e: 0.05 * e, "val_reversal_change": lambda s, e: 0.01 * e}
    return pd.DataFrame([{"method": m, "seed": s, "epoch": e, **{k: values[k](s, e) for k in metrics}}
                         for m in ("frame-averaged", "3D") for s in (0, 1) for e in (1, 2, 3)])


BASELINES = pd.DataFrame([  # study.baselines: fractions, NaN where a baseline does not apply
    {"baseline": "chance (uniform)", "verb": 0.1, "noun": 0.05, "action": 0.005},
    {"baseline": "chance (training frequencies)", "verb": 0.15, "noun": 0.08, "action": 0.01},
    {"baseline": "majority class", "verb": 0.3, "noun": 0.2, "action": 0.1},
    {"baseline": "order-blind ceiling", "verb": 0.8, "noun": NAN, "action": NAN}])
FRAMES = pd.DataFrame([{"method": m, "frames": n, "accuracy": a + n, "low": a + n - 3, "high": a + n + 3,
                        "position_min": a, "position_max": a + 2 * n}
                       for m, a in (("A", 20.0), ("B", 30.0)) for n in (1, 2, 4)])
ACCURACY = pd.DataFrame([{"key": k, "method": m, "head": h, "seeds": 2, "mean": a, "sd": 1.0, "accuracy": a,
                          "low": a - 5, "high": a + 5}
                         for k, m, a in (("fa", "A", 40.0), ("3d", "B", 50.0)) for h in ("verb", "noun")])
PAIRS = pd.DataFrame([{"pair": p, "key": k, "method": m, "segments": 10, "majority": 60.0, "accuracy": a,
                       "low": a - 10, "high": a + 10}
                      for p in ("open/close", "put/take") for k, m, a in (("fa", "A", 50.0), ("3d", "B", 70.0))])
TIMING = pd.DataFrame([{"model": m, "frames": n, "repeat": r, "ms_per_clip": v * n, "ms_per_frame": v,
                        "threads": 2, "device": "cpu", "backend": "torch", "precision": "fp32"}
                       for m in ("a", "b") for n in (1, 2, 4) for r, v in enumerate((1.0, 2.0, 9.0))])
COUNTS = pd.DataFrame([{"kind": k, "class": f"{k}{i}", "split": s, "segments": 10 - i}
                       for k in ("verb", "noun") for i in range(5) for s in ("train", "validation")])
LENGTHS = pd.DataFrame({"split": ["train"] * 4 + ["validation"] * 2, "seconds": [0.5, 1.0, 2.0, 8.0, 1.5, 3.0],
                        "frames": [15, 30, 60, 240, 45, 90]})
LATENCY = pd.DataFrame([{"model": m, "frames": n, "input": f"3x{n}x64x64", "gmacs": 0.1 * n, "latency_ms": 5.0 * n,
                         "mem_mb": 10.0 * n} for m in ("evitvid:b1_3d", "evitvid:b1_fa") for n in (1, 2, 4)])
ATTENTION = pd.DataFrame({"frames": [1, 2, 4], "tokens": [64, 128, 256], "heads": 4, "dim": 16,
                          "linear_ms": [1.0, 2.0, 4.0], "softmax_ms": [1.0, 4.0, None]})  # softmax skipped
INFERENCE = pd.DataFrame({"model": ["evitvid:efficientvit_b1_3d", "timm-frames:efficientvit_b1"],
                          "input": ["3x8x64x64"] * 2, "batch": [1, 1], "latency_ms": [10.0, 12.0],
                          "gflops": [20.0, 15.0]})

CALLS = {  # name of the PNG -> draw(save_to)
    "learning_curves": lambda run: plots.learning_curves(curves(), save_to=run),
    "accuracy_vs_frames": lambda run: plots.accuracy_vs_frames(FRAMES, BASELINES, save_to=run),
    "time_vs_frames": lambda run: plots.time_vs_frames(TIMING, save_to=run),
    "class_distribution": lambda run: plots.class_distribution(COUNTS, save_to=run),
    "segment_lengths": lambda run: plots.segment_lengths(LENGTHS, save_to=run),
    "method_comparison": lambda run: plots.method_comparison(ACCURACY, BASELINES, save_to=run),
    "pair_accuracy": lambda run: plots.pair_accuracy(PAIRS, save_to=run),
    "reversal_change": lambda run: plots.reversal_change(curves(), save_to=run),
    "budget_curves": lambda run: plots.budget_curves([("3 epochs", curves()), ("3 again", curves())], save_to=run),
    "latency_vs_frames": lambda run: plots.latency_vs_frames(LATENCY, save_to=run),
    "attention_scaling": lambda run: plots.attention_scaling(ATTENTION, save_to=run),
    "achieved_gflops": lambda run: plots.achieved_gflops(INFERENCE, 100.0, save_to=run),
}


def drawn(ax):
    """Lines holding data (seaborn also adds empty ones as legend handles)."""
    return [line for line in ax.lines if len(line.get_xdata())]


def labelled(ax, label):
    return [line for line in ax.lines if line.get_label() == label]


@pytest.mark.parametrize("name", sorted(CALLS))
def test_saves_png_into_run_figures_only_when_given_a_run(name, tmp_path, monkeypatch):
    with open_run(tmp_path / "runs", "r", {"x": 1}) as run:
        assert isinstance(CALLS[name](run), plt.Figure)
        assert sorted(p.name for p in run.figures.iterdir()) == [f"{name}.png"]
        assert (run.figures / f"{name}.png").read_bytes()[:8] == PNG
    monkeypatch.chdir(tmp_path / "runs")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert isinstance(CALLS[name](None), plt.Figure)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_learning_curves_one_line_per_method_and_seed_percent_scaled_custom_name(tmp_path):
    table = curves(("train_loss", "val_verb_top1"))  # no val_noun_top1: its panel is skipped
    with open_run(tmp_path, "r", {"x": 1}) as run:
        fig = plots.learning_curves(table, save_to=run, name="pretraining_curves")
        assert (run.figures / "pretraining_curves.png").read_bytes()[:8] == PNG
    loss, top1 = fig.axes[:2]
    assert [ax.get_title() for ax in fig.axes] == ["training loss", "validation verb top-1 (%)"]
    for ax in (loss, top1):
        assert len(drawn(ax)) == 4  # 2 methods x 2 seeds
    assert sorted(tuple(np.round(line.get_ydata(), 6)) for line in drawn(top1)) == [
        (10, 20, 30), (10, 20, 30), (11, 21, 31), (11, 21, 31)]  # fractions x 100
    for line in drawn(loss):  # a loss is not a percentage
        np.testing.assert_allclose(line.get_ydata(), [2, 1, 2 / 3])
    assert loss.get_legend() is None
    assert sorted(t.get_text() for t in top1.get_legend().get_texts()) == ["3D", "frame-averaged"]


def test_budget_curves_mean_over_seeds_per_method_and_budget_shared_methods_only():
    longer = pd.DataFrame([{"method": "3D", "seed": s, "epoch": e, "val_verb_top1": 0.05 * e + 0.02 * s,
                            "val_noun_top1": 0.3} for s in (0, 1) for e in range(1, 7)])  # no frame-averaged
    fig = plots.budget_curves([("3 epochs", curves()), ("6 epochs", longer)])
    verb, noun = fig.axes[:2]
    assert [ax.get_title() for ax in (verb, noun)] == ["validation verb top-1", "validation noun top-1"]
    means = sorted(tuple(np.round(line.get_ydata(), 6)) for line in drawn(verb))
    assert means == [(6, 11, 16, 21, 26, 31), (10.5, 20.5, 30.5)]  # 3D only, mean of the two seeds, in %
    texts = [t.get_text() for t in noun.get_legend().get_texts()]
    assert "frame-averaged" not in texts and {"3D", "3 epochs", "6 epochs"} <= set(texts)


@pytest.mark.parametrize("head, expected", [("verb", {"chance (uniform)": 10, "majority class": 30,
                                                        "order-blind ceiling": 80}),
                                             ("noun", {"chance (uniform)": 5, "majority class": 20})])
def test_accuracy_vs_frames_lines_and_baselines_in_percent(head, expected):
    ax = plots.accuracy_vs_frames(FRAMES, BASELINES, head=head).axes[0]
    assert [list(labelled(ax, m)[0].get_ydata()) for m in ("A", "B")] == [[21, 22, 24], [31, 32, 34]]
    assert {k: labelled(ax, k)[0].get_ydata()[0] for k in expected} == pytest.approx(expected)
    baselines = {line.get_label() for line in ax.lines} & set(BASELINES["baseline"])
    assert baselines == set(expected)  # not the training-frequency chance, no NaN ceiling for nouns
    assert ax.get_xscale() == "log" and ax.get_ylabel() == f"{head} top-1 (%)"
    assert len(drawn(plots.accuracy_vs_frames(FRAMES).axes[0])) == 2  # no baselines: methods only


def test_method_comparison_points_and_vertical_baselines():
    fig = plots.method_comparison(ACCURACY, BASELINES)
    assert [ax.get_title() for ax in fig.axes] == ["verbs", "nouns"]
    verb, noun = fig.axes
    assert [t.get_text() for t in verb.get_yticklabels()] == ["A", "B"]
    assert list(verb.lines[0].get_xdata()) == [40, 50]
    assert labelled(verb, "order-blind ceiling")[0].get_xdata()[0] == pytest.approx(80)
    assert labelled(noun, "chance (training frequencies)")[0].get_xdata()[0] == pytest.approx(8)
    assert not labelled(noun, "order-blind ceiling") and not labelled(noun, "chance (uniform)")
    assert plots.method_comparison(ACCURACY).axes[0].get_legend() is None


def test_pair_accuracy_constant_answer_line_and_points():
    ax = plots.pair_accuracy(PAIRS).axes[0]
    assert list(labelled(ax, "any constant answer")[0].get_ydata()) == [50, 50]
    assert ax.get_ylim() == (0, 100)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["open/close", "put/take"]
    points = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbar labels sit on the container
    assert [list(points[m].get_ydata()) for m in ("A", "B")] == [[50, 50], [70, 70]]
    assert points["A"].get_xdata()[0] < 0 < points["B"].get_xdata()[0]  # side by side around each pair


def test_time_vs_frames_draws_median_of_repeats():
    per_frame, per_clip = plots.time_vs_frames(TIMING).axes
    assert [list(line.get_ydata()) for line in drawn(per_frame)] == [[2, 2, 2]] * 2  # median of 1, 2, 9
    assert [list(line.get_ydata()) for line in drawn(per_clip)] == [[2, 4, 8]] * 2


def test_latency_vs_frames_memory_panel_only_when_measured():
    assert [ax.get_title() for ax in plots.latency_vs_frames(LATENCY).axes] == [
        "inference latency", "inference memory"]
    fig = plots.latency_vs_frames(LATENCY.drop(columns="mem_mb"))
    assert [ax.get_title() for ax in fig.axes] == ["inference latency"]
    assert sorted(list(line.get_ydata()) for line in drawn(fig.axes[0])) == [[5, 10, 20]] * 2


def test_attention_scaling_drops_skipped_softmax_log_log():
    ax = plots.attention_scaling(ATTENTION).axes[0]
    assert sorted(list(line.get_xdata()) for line in drawn(ax)) == [[64, 128], [64, 128, 256]]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")


def test_achieved_gflops_peak_line_and_labels():
    ax = plots.achieved_gflops(INFERENCE, 123.0).axes[0]
    assert list(labelled(ax, "fp32 matmul peak")[0].get_xdata()) == [123.0, 123.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "efficientvit_b1_3d  3x8x64x64, batch 1", "timm-frames:efficientvit_b1  3x8x64x64, batch 1"]
    assert sorted(p.get_width() for p in ax.patches) == [15.0, 20.0]


def test_class_distribution_keeps_the_top_classes_most_frequent_first():
    fig = plots.class_distribution(COUNTS.sample(frac=1, random_state=0), top=3)  # rows in no order
    axes = {ax.get_title(): ax for ax in fig.axes}
    assert sorted(axes) == ["noun classes", "verb classes"]
    assert [t.get_text() for t in axes["verb classes"].get_xticklabels()] == ["verb0", "verb1", "verb2"]
    assert sorted(p.get_height() for p in axes["noun classes"].patches if p.get_height()) == [8, 8, 9, 9, 10, 10]


def test_segment_lengths_one_step_per_split_log_scale():
    ax = plots.segment_lengths(LENGTHS).axes[0]
    assert len(ax.collections) == 2 and ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]


def test_reversal_change_unscaled_one_line_per_method_and_seed():
    ax = plots.reversal_change(curves()).axes[0]
    assert len(drawn(ax)) == 4
    for line in drawn(ax):
        np.testing.assert_allclose(line.get_ydata(), [0.01, 0.02, 0.03])


def test_learning_curves_without_any_metric_names_the_columns():
    with pytest.raises(ValueError, match=r"none of the metrics .*train_loss.*\(columns: \['method', 'seed', 'epoch'\]"):
        plots.learning_curves(pd.DataFrame(columns=["method", "seed", "epoch"]))
