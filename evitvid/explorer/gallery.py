"""The explorer for readers without a kernel: a fixed set of segments as a figure and a table.

The built book is static HTML: widgets need a kernel to answer. `gallery` draws what the
explorer shows for a few segments (their evaluation frames, one row each) and tabulates the
ground truth and each method's top-5 verbs, nouns and actions beside it.
"""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
from pandas.io.formats.style import Styler

from .frames import SegmentFrames
from .predictions import Predictions, RunKey

__all__ = ["gallery_segments", "gallery"]


def gallery_segments(predictions: Predictions, count: int) -> list[str]:
    """`count` segments spread evenly over the validation split (the same ones on every build)."""
    ids = predictions.ids
    step = max(1, len(ids) // max(1, count))
    return ids[::step][:count]


def gallery(predictions: Predictions, frames: SegmentFrames, narration_ids: Sequence[str],
            runs: Optional[Sequence[RunKey]] = None) -> tuple[plt.Figure, Styler]:
    """A figure with one row of frames per segment (titled with its ground truth), and a table of
    the ground truth and each run's top-5 for all of them (`Predictions.summary`, one answer per
    line: styled for the page, the DataFrame is its `.data`). `runs` default: every method's first seed."""
    p = predictions
    runs = list(runs) if runs is not None else [(m, p.seeds([m])[0]) for m in p.methods]
    t = frames.num_frames
    fig, axes = plt.subplots(len(narration_ids), t, figsize=(1.5 * t, 1.75 * len(narration_ids)), squeeze=False)
    for row, nid in zip(axes, narration_ids):
        clip = frames.frames(nid)
        for i, ax in enumerate(row):
            ax.imshow(clip[i])
            ax.set_axis_off()
        r = p.row[nid]
        row[0].set_title(f"{nid}: {p.verbs[p.verb_true[r]]} {p.nouns[p.noun_true[r]]}", fontsize=9, loc="left")
    fig.tight_layout()
    table = p.summary([p.row[nid] for nid in narration_ids], runs, separator="\n")
    # pre: one answer per line, unwrapped, and no truncation (a DataFrame's HTML cuts cells at 50 characters)
    return fig, table.style.set_properties(**{"white-space": "pre", "text-align": "left",
                                              "vertical-align": "top"})
