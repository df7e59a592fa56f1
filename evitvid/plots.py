"""Figures of the study, drawn from recorded results (run folders), never from typed numbers.

Each function returns a matplotlib Figure and, given a run, saves it as PNG into that
run's `figures/` folder, so the book and the run folder show the same picture.
"""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .runs import Run

sns.set_theme(style="whitegrid", context="notebook")


def _save(fig: plt.Figure, run: Optional[Run], name: str) -> plt.Figure:
    fig.tight_layout()
    if run is not None:
        fig.savefig(run.figures / f"{name}.png", dpi=120)
    return fig


def training_curves(runs: dict[str, Run], save_to: Optional[Run] = None, name: str = "training_curves",
                    metric: str = "val_verb_top1") -> plt.Figure:
    """Training loss and a validation metric (verb top-1 by default) per epoch, one line per run."""
    rows = [{"run": label, **m} for label, run in runs.items() for m in run.metrics]
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    sns.lineplot(data=df, x="epoch", y="train_loss", hue="run", marker="o", ax=axes[0])
    axes[0].set(title="training loss", ylabel="loss")
    if metric in df:
        sns.lineplot(data=df.assign(**{metric: 100 * df[metric]}), x="epoch", y=metric,
                     hue="run", marker="o", ax=axes[1], legend=False)
    axes[1].set(title=metric.replace("val_", "validation ").replace("_", " "), ylabel="%")
    return _save(fig, save_to, name)


def accuracy_vs_frames(table: pd.DataFrame, save_to: Optional[Run] = None,
                       metrics: Sequence[str] = ("verb_top1", "noun_top1", "action_top1")) -> plt.Figure:
    """Accuracy against frames per segment (the paper's Fig. 2)."""
    ids = ["frames"] + (["model"] if "model" in table else [])
    long = table.melt(id_vars=ids, value_vars=list(metrics), var_name="metric", value_name="accuracy")
    long["accuracy"] *= 100
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    sns.lineplot(data=long, x="frames", y="accuracy", hue="metric", style="model" if "model" in table else None,
                 marker="o", ax=ax)
    ax.set(xscale="log", xticks=sorted(table["frames"]), xticklabels=sorted(table["frames"]),
           xlabel="frames per segment", ylabel="top-1 accuracy (%)", title="accuracy against frames")
    return _save(fig, save_to, "accuracy_vs_frames")


def time_vs_frames(table: pd.DataFrame, save_to: Optional[Run] = None) -> plt.Figure:
    """Inference time per frame and per clip against frames (the paper's Fig. 3)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, column, title in ((axes[0], "ms_per_frame", "per frame"), (axes[1], "ms_per_clip", "per clip")):
        sns.lineplot(data=table, x="frames", y=column, hue="model", marker="o", ax=ax)
        ax.set(xscale="log", xticks=sorted(table["frames"].unique()), xticklabels=sorted(table["frames"].unique()),
               xlabel="frames per segment", ylabel="ms", title=f"inference time {title}")
    return _save(fig, save_to, "time_vs_frames")


def class_distribution(counts: pd.DataFrame, save_to: Optional[Run] = None, name: str = "class_distribution",
                       top: int = 30) -> plt.Figure:
    """Segments per class (columns: kind, class, split, segments), the `top` most frequent of each kind."""
    kinds = list(counts["kind"].unique())
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        sub = counts[counts["kind"] == kind]
        order = sub.groupby("class")["segments"].sum().sort_values(ascending=False).index[:top]
        sns.barplot(data=sub[sub["class"].isin(order)], x="class", y="segments", hue="split", order=order, ax=ax)
        ax.set(title=f"{kind} classes", xlabel="")
        ax.tick_params(axis="x", rotation=75)
    return _save(fig, save_to, name)


def segment_lengths(lengths: pd.DataFrame, save_to: Optional[Run] = None) -> plt.Figure:
    """Histogram of segment lengths in seconds (columns: split, seconds)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.histplot(data=lengths, x="seconds", hue="split", log_scale=True, element="step", ax=ax)
    ax.set(title="segment length", xlabel="seconds (log scale)")
    return _save(fig, save_to, "segment_lengths")


def method_comparison(table: pd.DataFrame, save_to: Optional[Run] = None) -> plt.Figure:
    """Bar chart of verb/noun/action top-1 per method (columns: method, metric, accuracy)."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    sns.barplot(data=table, x="metric", y="accuracy", hue="method", ax=ax)
    ax.set(ylabel="top-1 accuracy (%)", xlabel="", title="methods compared")
    return _save(fig, save_to, "method_comparison")


def reversal_pairs(table: pd.DataFrame, save_to: Optional[Run] = None) -> plt.Figure:
    """Accuracy within each time-reversed verb pair per method (columns: method, pair, pair_accuracy)."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    sns.barplot(data=table.assign(pair_accuracy=100 * table["pair_accuracy"]), x="pair", y="pair_accuracy",
                hue="method", ax=ax)
    ax.axhline(50, color="black", linestyle="--", linewidth=1, label="chance")
    ax.set(ylabel="accuracy within the pair (%)", xlabel="", ylim=(0, 100),
           title="telling a verb from its time-reversal")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")  # beside the bars, not over them
    return _save(fig, save_to, "reversal_pairs")


def latency_vs_frames(table: pd.DataFrame, save_to: Optional[Run] = None) -> plt.Figure:
    """Latency and memory of one clip against frames, per model (`bench` frames rows; the paper's Fig. 3)."""
    has_memory = "mem_mb" in table
    fig, axes = plt.subplots(1, 2 if has_memory else 1, figsize=(10 if has_memory else 5.5, 3.6), squeeze=False)
    ticks = sorted(table["frames"].unique())
    for ax, column, ylabel in ((axes[0][0], "latency_ms", "ms per clip"),
                               *(((axes[0][1], "mem_mb", "MB (peak RSS above the model)"),) if has_memory else ())):
        sns.lineplot(data=table, x="frames", y=column, hue="model", marker="o", ax=ax)
        ax.set(xscale="log", xticks=ticks, xticklabels=ticks, xlabel="frames per clip", ylabel=ylabel,
               title="inference " + ("latency" if column == "latency_ms" else "memory"))
    return _save(fig, save_to, "latency_vs_frames")


def attention_scaling(table: pd.DataFrame, save_to: Optional[Run] = None) -> plt.Figure:
    """Time of ReLU linear attention and softmax attention against tokens, log-log (`bench` attention rows)."""
    long = table.melt(id_vars=["tokens"], value_vars=["linear_ms", "softmax_ms"], var_name="attention",
                      value_name="ms").dropna()
    long["attention"] = long["attention"].map({"linear_ms": "ReLU linear (LiteMLA)", "softmax_ms": "softmax"})
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    sns.lineplot(data=long, x="tokens", y="ms", hue="attention", marker="o", ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="tokens (T x H x W)", ylabel="ms", title="attention against tokens")
    return _save(fig, save_to, "attention_scaling")


def achieved_gflops(table: pd.DataFrame, peak: float, save_to: Optional[Run] = None) -> plt.Figure:
    """Achieved GFLOP/s per model and input beside the machine's matmul peak (`bench` inference rows)."""
    df = table.assign(label=table["model"].str.replace("evitvid:", "", regex=False) + "  " + table["input"]
                      + ", batch " + table["batch"].astype(str))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(df) + 1.2))
    sns.barplot(data=df, y="label", x="gflops", color=sns.color_palette()[0], ax=ax)
    ax.axvline(peak, color="black", linestyle="--", linewidth=1, label="fp32 matmul peak")
    ax.legend(loc="lower right", fontsize="small")
    ax.set(xlabel="GFLOP/s (2 x MACs / latency)", ylabel="", title="achieved compute rate")
    return _save(fig, save_to, "achieved_gflops")
