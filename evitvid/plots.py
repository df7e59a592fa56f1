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


def learning_curves(curves: pd.DataFrame, save_to: Optional[Run] = None, name: str = "learning_curves",
                    metrics: Sequence[tuple[str, str]] = (("train_loss", "training loss"),
                                                          ("val_verb_top1", "validation verb top-1 (%)"),
                                                          ("val_noun_top1", "validation noun top-1 (%)"))
                    ) -> plt.Figure:
    """Metrics per epoch, one line per seed, one colour per method (`study.learning_curves`):
    whether each method reached a plateau, and how far the seeds spread."""
    present = [(k, t) for k, t in metrics if k in curves]
    if not present:
        raise ValueError(f"learning_curves: none of the metrics {[k for k, _ in metrics]} is a column of the curves "
                         f"(columns: {list(curves.columns)}); have the runs written their metrics.json yet?")
    metrics = present
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for i, (ax, (key, title)) in enumerate(zip(axes[0], metrics)):
        data = curves.assign(**{key: curves[key] * (1 if "loss" in key else 100)})
        sns.lineplot(data=data, x="epoch", y=key, hue="method", units="seed", estimator=None, alpha=0.8,
                     marker="o", markersize=3, ax=ax, legend=i == len(metrics) - 1)
        ax.set(title=title, ylabel="" if "loss" in key else "%")
    if axes[0][-1].get_legend():
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _save(fig, save_to, name)


def budget_curves(budgets: Sequence[tuple[str, pd.DataFrame]], save_to: Optional[Run] = None,
                  name: str = "budget_curves", heads: Sequence[str] = ("verb", "noun")) -> plt.Figure:
    """Validation top-1 per epoch at several budgets (`budgets`: [(name, learning curves)]): one
    colour per method, one line style per budget, the mean over seeds with the seeds' range as a
    band. Only the methods every budget has are drawn: what the shorter budget stopped short of."""
    shared = set.intersection(*(set(c["method"]) for _, c in budgets))
    data = pd.concat([c[c["method"].isin(shared)].assign(budget=b) for b, c in budgets], ignore_index=True)
    order = [m for m in budgets[0][1]["method"].unique() if m in shared]
    fig, axes = plt.subplots(1, len(heads), figsize=(5.5 * len(heads), 3.8), squeeze=False)
    for i, (ax, head) in enumerate(zip(axes[0], heads)):
        sns.lineplot(data=data.assign(top1=100 * data[f"val_{head}_top1"]), x="epoch", y="top1", hue="method",
                     hue_order=order, style="budget", errorbar=("pi", 100), ax=ax, legend=i == len(heads) - 1)
        ax.set(title=f"validation {head} top-1", ylabel="% (mean and range over seeds)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    if axes[0][-1].get_legend():
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _save(fig, save_to, name)


def _baseline_lines(ax, baselines: Optional[pd.DataFrame], head: str) -> None:
    if baselines is None:
        return
    styles = {"majority class": ":", "order-blind ceiling": "--", "chance (uniform)": "-."}
    for _, row in baselines.iterrows():
        if row["baseline"] in styles and pd.notna(row.get(head)):
            ax.axhline(100 * row[head], color="0.3", linestyle=styles[row["baseline"]], linewidth=1,
                       label=row["baseline"])


def accuracy_vs_frames(table: pd.DataFrame, baselines: Optional[pd.DataFrame] = None,
                       save_to: Optional[Run] = None, head: str = "verb") -> plt.Figure:
    """Top-1 against frames per segment with 95 % intervals, per method (`study.frames_curve`; the
    paper's Fig. 2), beside the majority rate and the order-blind ceiling."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, rows in table.groupby("method", sort=False):
        rows = rows.sort_values("frames")
        line, = ax.plot(rows["frames"], rows["accuracy"], marker="o", label=method)
        ax.fill_between(rows["frames"], rows["low"], rows["high"], color=line.get_color(), alpha=0.2)
    _baseline_lines(ax, baselines, head)
    ticks = sorted(table["frames"].unique())
    ax.set(xscale="log", xticks=ticks, xticklabels=ticks, xlabel="frames per segment",
           ylabel=f"{head} top-1 (%)", title=f"{head} accuracy against frames (95 % intervals)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _save(fig, save_to, "accuracy_vs_frames")


def time_vs_frames(table: pd.DataFrame, save_to: Optional[Run] = None) -> plt.Figure:
    """Inference time per frame and per clip against frames (the paper's Fig. 3): medians with the
    spread of the repeats."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, column, title in ((axes[0], "ms_per_frame", "per frame"), (axes[1], "ms_per_clip", "per clip")):
        sns.lineplot(data=table, x="frames", y=column, hue="model", marker="o", estimator="median",
                     errorbar=("pi", 100), ax=ax)
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


def method_comparison(table: pd.DataFrame, baselines: Optional[pd.DataFrame] = None,
                      save_to: Optional[Run] = None) -> plt.Figure:
    """Verb and noun top-1 per method with the 95 % interval over segments (columns: method, head,
    accuracy, low, high), beside chance, the majority class and the order-blind ceiling."""
    heads = list(dict.fromkeys(table["head"]))
    fig, axes = plt.subplots(1, len(heads), figsize=(5.2 * len(heads), 0.5 * table["method"].nunique() + 2.2),
                             squeeze=False)
    for ax, head in zip(axes[0], heads):
        rows = table[table["head"] == head]
        y = range(len(rows))
        ax.errorbar(rows["accuracy"], y, xerr=[rows["accuracy"] - rows["low"], rows["high"] - rows["accuracy"]],
                    fmt="o", color=sns.color_palette()[0], capsize=3)
        ax.set_yticks(list(y), rows["method"])
        ax.invert_yaxis()
        if baselines is not None:
            styles = {"majority class": ":", "order-blind ceiling": "--", "chance (training frequencies)": "-."}
            for _, b in baselines.iterrows():
                if b["baseline"] in styles and pd.notna(b.get(head)):
                    ax.axvline(100 * b[head], color="0.3", linestyle=styles[b["baseline"]], linewidth=1,
                               label=b["baseline"])
            ax.legend(loc="lower right", fontsize="x-small")
        ax.set(xlabel=f"{head} top-1 (%)", title=f"{head}s")
    return _save(fig, save_to, "method_comparison")


def pair_accuracy(table: pd.DataFrame, save_to: Optional[Run] = None) -> plt.Figure:
    """Balanced accuracy within each time-reversed verb pair per method, with 95 % intervals
    (columns: pair, method, accuracy, low, high); 50 % is what any constant answer gets."""
    methods = list(dict.fromkeys(table["method"]))
    pairs = list(dict.fromkeys(table["pair"]))
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        rows = table[table["method"] == method].set_index("pair").reindex(pairs)
        x = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(pairs))]
        ax.errorbar(x, rows["accuracy"], yerr=[rows["accuracy"] - rows["low"], rows["high"] - rows["accuracy"]],
                    fmt="o", capsize=2, label=method)
    ax.axhline(50, color="black", linestyle="--", linewidth=1, label="any constant answer")
    ax.set_xticks(range(len(pairs)), pairs, rotation=20)
    ax.set(ylabel="balanced accuracy within the pair (%)", ylim=(0, 100),
           title="telling a verb from its time-reversal (95 % intervals)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _save(fig, save_to, "pair_accuracy")


def reversal_change(curves: pd.DataFrame, save_to: Optional[Run] = None) -> plt.Figure:
    """How much each model's verb logits change when a validation clip is played backwards, per
    epoch and seed (`val_reversal_change`): 0 for a model blind to frame order."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    sns.lineplot(data=curves, x="epoch", y="val_reversal_change", hue="method", units="seed", estimator=None,
                 marker="o", markersize=3, ax=ax)
    ax.set(ylabel="relative change of verb logits", title="clip against the clip played backwards")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _save(fig, save_to, "reversal_change")


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
