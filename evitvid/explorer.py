"""The prediction explorer: pick a validation segment, see its frames, its ground truth and
each trained model's top-5 verbs and nouns.

`explorer(...)` is the ipywidgets version for a live notebook; `gallery(...)` draws the same
content for a fixed list of segments as a static figure and table, which is what the built
book (static HTML, no kernel) can show.
"""
from __future__ import annotations

import io
from typing import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import torch

from .runs import Run
from .study import DataPaths, class_names, clip_dataset, predictions_frame


class _Segments:
    """Frames and predictions of the validation segments, read once."""

    def __init__(self, data: DataPaths, runs: dict[str, Run], num_frames: int = 8, size: int = 112):
        self.verbs, self.nouns = class_names(data.verb_classes), class_names(data.noun_classes)
        self.dataset = clip_dataset(data, "val", num_frames=num_frames, crop_size=size, train=False)
        self.index = {s.narration_id: i for i, s in enumerate(self.dataset.segments)}
        self.predictions = {label: predictions_frame(run).set_index("narration_id") for label, run in runs.items()}
        self.mean = torch.tensor(self.dataset.transform.mean).view(3, 1, 1, 1)
        self.std = torch.tensor(self.dataset.transform.std).view(3, 1, 1, 1)

    @property
    def ids(self) -> list[str]:
        return list(self.index)

    def frames(self, narration_id: str) -> torch.Tensor:
        video = self.dataset[self.index[narration_id]]["video"]  # C x T x H x W, normalised
        return (video * self.std + self.mean).clamp(0, 1).permute(1, 2, 3, 0)  # T x H x W x C

    def table(self, narration_id: str) -> pd.DataFrame:
        seg = self.dataset.segments[self.index[narration_id]]
        rows = [{"model": "ground truth", "verbs": self.verbs[seg.verb_class], "nouns": self.nouns[seg.noun_class]}]
        for label, preds in self.predictions.items():
            p = preds.loc[narration_id]
            fmt = lambda top, prob, names: ", ".join(  # noqa: E731
                f"{names[int(i)]} {float(q):.0%}" for i, q in zip(top.split(), prob.split()))
            rows.append({"model": label, "verbs": fmt(p["verb_top5"], p["verb_top5_prob"], self.verbs),
                         "nouns": fmt(p["noun_top5"], p["noun_top5_prob"], self.nouns)})
        return pd.DataFrame(rows).set_index("model")

    def figure(self, narration_id: str) -> plt.Figure:
        frames = self.frames(narration_id)
        seg = self.dataset.segments[self.index[narration_id]]
        fig, axes = plt.subplots(1, len(frames), figsize=(1.6 * len(frames), 1.9))
        for t, ax in enumerate(axes):
            ax.imshow(frames[t].numpy())
            ax.set_axis_off()
        fig.suptitle(f"{narration_id}: {self.verbs[seg.verb_class]} {self.nouns[seg.noun_class]}", fontsize=10)
        fig.tight_layout()
        return fig


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def explorer(data: DataPaths, runs: dict[str, Run], num_frames: int = 8) -> widgets.Widget:
    """A dropdown of validation segments; shows frames, ground truth and each run's top-5.

    The frames are an Image widget and the table an HTML widget, updated in place: no Output
    widget capturing display calls, which headless executors (papermill) can wait on forever.
    """
    segments = _Segments(data, runs, num_frames)
    picker = widgets.Dropdown(options=segments.ids, description="segment")
    frames = widgets.Image(format="png")
    table = widgets.HTML()

    def show(narration_id: str) -> None:
        frames.value = _png(segments.figure(narration_id))
        table.value = segments.table(narration_id).to_html()

    picker.observe(lambda change: show(change["new"]), names="value")
    show(picker.value)
    return widgets.VBox([picker, frames, table])


def gallery(data: DataPaths, runs: dict[str, Run], narration_ids: Sequence[str],
            num_frames: int = 8) -> tuple[plt.Figure, pd.DataFrame]:
    """For static pages: one figure with a row of frames per segment, and one table of the
    ground truth and each run's top-5 for all of them."""
    segments = _Segments(data, runs, num_frames)
    fig, axes = plt.subplots(len(narration_ids), num_frames, figsize=(1.6 * num_frames, 1.8 * len(narration_ids)),
                             squeeze=False)
    for row, narration_id in zip(axes, narration_ids):
        frames = segments.frames(narration_id)
        for t, ax in enumerate(row):
            ax.imshow(frames[t].numpy())
            ax.set_axis_off()
        row[0].set_title(narration_id, fontsize=9, loc="left")
    fig.tight_layout()
    table = pd.concat({n: segments.table(n) for n in narration_ids}, names=["segment", "model"])
    return fig, table
