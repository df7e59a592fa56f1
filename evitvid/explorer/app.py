"""The explorer as an ipywidgets app (a live notebook, or Voila: `make explore`).

Pick runs (methods side by side, one seed), filter the validation segments (true verb, true
noun, right or wrong for the first chosen method, reversal pair), step through them, and see
each segment's frames (a strip or a playing clip), every chosen method's top-5 verbs, nouns
and actions, and how each chooses between the two verbs of a reversal pair.

Only core ipywidgets are used (bundled with Voila and JupyterLab: nothing from a CDN), and
no Output widget: the Image and HTML widgets are updated in place, which headless executors
(papermill) never wait on. Everything a change needs is precomputed (`Predictions`) or
cached (`SegmentFrames`), so an update takes milliseconds on the embedded set; the status
line says "updating" while one runs and how long it took when done. The widgets carry CSS
classes (`evitvid-segment`, `evitvid-frames`, `evitvid-top5`, ...) that the browser test
finds them by.
"""
from __future__ import annotations

import html
import time
from typing import Optional, Sequence

import ipywidgets as widgets
import numpy as np

from .frames import SegmentFrames
from .predictions import RESULTS, Predictions, RunKey

__all__ = ["Explorer", "explorer"]

ANY = -1
GOOD, BAD = "#d9f2d9", "#f8dcdc"
_TABLE = "border-collapse:collapse;font-size:13px;margin:0 18px 12px 0"
_CELL = "padding:2px 8px;border-bottom:1px solid #e4e4e4;text-align:left;white-space:nowrap"


def _e(text) -> str:
    return html.escape(str(text))


def _answer(name: str, p: float, right: bool) -> str:
    bar = f"<div style='height:3px;width:{max(1, round(70 * p))}px;background:#4a78b5'></div>"
    mark = " &#10003;" if right else ""
    style = f"{_CELL};background:{GOOD}" if right else _CELL
    return f"<td style='{style}'>{_e(name)}{mark} <span style='color:#555'>{p:.0%}</span>{bar}</td>"


class Explorer:
    """The app's widgets and their wiring; `widget` is what a notebook displays.

    `methods` are the method keys shown at first (default: `predictions.default_methods`);
    `max_options` caps the segment list (narrow the filters to see others).
    """

    def __init__(self, predictions: Predictions, frames: SegmentFrames, *, methods: Optional[Sequence[str]] = None,
                 seed: Optional[int] = None, max_options: int = 1000):
        self.p, self.frames, self.max_options = predictions, frames, int(max_options)
        p = predictions
        first = list(methods or p.default_methods)
        unknown = [m for m in first if m not in p.methods]
        if unknown:
            raise ValueError(f"unknown method(s) {', '.join(unknown)}; have: {', '.join(p.methods)}")
        self._quiet = False
        self._last_methods = first[0]
        self._rows = np.arange(0)
        wide = widgets.Layout(width="auto")
        self.methods = widgets.SelectMultiple(options=[(label, key) for key, label in p.methods.items()],
                                              value=tuple(first), rows=min(6, len(p.methods)),
                                              description="methods", layout=widgets.Layout(width="26em"))
        seeds = p.seeds(first)
        self.seed = widgets.Dropdown(options=seeds, value=seed if seed in seeds else seeds[0], description="seed",
                                     layout=widgets.Layout(width="11em"))
        self.view = widgets.ToggleButtons(options=[("frames as a strip", "strip"), ("playing clip", "clip")],
                                          value="strip", style={"button_width": "9em"})
        counts_v = np.bincount(p.verb_true, minlength=len(p.verbs))
        counts_n = np.bincount(p.noun_true, minlength=len(p.nouns))
        self.verb = widgets.Dropdown(options=[("any", ANY)] + [(f"{p.verbs[i]} ({counts_v[i]})", int(i))
                                                             for i in np.flatnonzero(counts_v)],
                                     value=ANY, description="true verb", layout=widgets.Layout(width="17em"))
        self.noun = widgets.Dropdown(options=[("any", ANY)] + [(f"{p.nouns[i]} ({counts_n[i]})", int(i))
                                                             for i in np.flatnonzero(counts_n)],
                                     value=ANY, description="true noun", layout=widgets.Layout(width="17em"))
        self.result = widgets.Dropdown(options=list(RESULTS), value="any", description="result",
                                       tooltip="top-1 of the first chosen method",
                                       layout=widgets.Layout(width="14em"))
        self.pair = widgets.Dropdown(options=[("any", ANY)] + [(name, i) for i, (_, _, name) in enumerate(p.pairs)],
                                     value=ANY, description="pair", layout=widgets.Layout(width="22em"))
        self.segment = widgets.Dropdown(options=[], description="segment", layout=widgets.Layout(width="34em"))
        self.previous = widgets.Button(description="< previous", layout=widgets.Layout(width="7.5em"))
        self.next = widgets.Button(description="next >", layout=widgets.Layout(width="7.5em"))
        self.count = widgets.HTML()
        self.status = widgets.HTML()
        self.info = widgets.HTML(layout=wide)
        # flex-start: a column box would otherwise stretch the picture to its whole width
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", align_self="flex-start"))
        self.top5 = widgets.HTML(layout=wide)
        self.confusion = widgets.HTML(layout=wide)
        for name in ("methods", "seed", "view", "verb", "noun", "result", "pair", "segment", "previous", "next",
                     "count", "status", "info", "image", "top5", "confusion"):
            getattr(self, name).add_class(f"evitvid-{name}")
        self.widget = widgets.VBox([
            widgets.HBox([self.methods, widgets.VBox([self.seed, self.view])]),
            widgets.HBox([self.verb, self.noun, self.result, self.pair], layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.previous, self.segment, self.next, self.count]),
            self.status, self.info, self.image, self.top5, self.confusion,
        ])
        self.widget.add_class("evitvid-explorer")
        for box in (self.methods, self.seed, self.verb, self.noun, self.result, self.pair):
            box.observe(self._on_filter, names="value")
        self.segment.observe(self._on_segment, names="value")
        self.view.observe(self._on_view, names="value")
        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(+1))
        self.timings: list[float] = []  # seconds per update, for the curious and the tests
        self._update(refilter=True)

    # -- state ---------------------------------------------------------------------------------
    @property
    def runs(self) -> list[RunKey]:
        return [(m, self.seed.value) for m in self.methods.value]

    @property
    def narration_id(self) -> Optional[str]:
        return self.segment.value

    def step(self, delta: int) -> None:
        """Show the previous (-1) or next (+1) segment of the filtered list."""
        ids = [v for _, v in self.segment.options]
        if ids and self.segment.value in ids:
            self.segment.value = ids[(ids.index(self.segment.value) + delta) % len(ids)]

    # -- events --------------------------------------------------------------------------------
    def _on_filter(self, change) -> None:
        if not self._quiet:
            self._update(refilter=True)

    def _on_segment(self, change) -> None:
        if not self._quiet:
            self._update(refilter=False)

    def _on_view(self, change) -> None:
        if not self._quiet and self.segment.value:
            self._busy()
            t0 = time.perf_counter()
            self._show_frames(self.segment.value)
            self._ready(time.perf_counter() - t0)

    def _busy(self) -> None:
        self.status.value = "<span style='color:#a15c00'>&#8987; updating&hellip;</span>"

    def _ready(self, seconds: float) -> None:
        self.timings.append(seconds)
        nid = self.segment.value
        what = f"showing <b>{_e(nid)}</b>" if nid else "no segment"
        self.status.value = f"<span style='color:#2d6a2d'>ready</span>: {what} (updated in {seconds:.2f} s)"

    def _update(self, refilter: bool) -> None:
        self._busy()
        t0 = time.perf_counter()
        self._quiet = True
        try:
            if not self.methods.value:  # at least one method: keep the last one chosen
                self.methods.value = (self._last_methods,)
            self._last_methods = self.methods.value[0]
            seeds = self.p.seeds(self.methods.value)
            if not seeds:  # methods trained with different seeds: keep the first one alone
                self.methods.value = (self._last_methods,)
                seeds = self.p.seeds(self.methods.value)
            if list(self.seed.options) != seeds:
                keep = self.seed.value if self.seed.value in seeds else (seeds[0] if seeds else None)
                self.seed.options = seeds
                self.seed.value = keep
            if refilter:
                self._refilter()
        finally:
            self._quiet = False
        self._show(self.segment.value)
        self._ready(time.perf_counter() - t0)

    def _refilter(self) -> None:
        first = self.runs[0] if self.seed.value is not None else None
        self._rows = self.p.select(verb=None if self.verb.value == ANY else self.verb.value,
                                   noun=None if self.noun.value == ANY else self.noun.value,
                                   pair=None if self.pair.value == ANY else self.pair.value,
                                   result=self.result.value if first else "any", run=first)
        shown = self._rows[:self.max_options]
        options = [(self._option_label(int(r), first), self.p.ids[r]) for r in shown]
        current = self.segment.value
        self.segment.options = options
        ids = [v for _, v in options]
        self.segment.value = current if current in ids else (ids[0] if ids else None)
        more = f" (the first {len(shown)}: narrow the filters)" if len(self._rows) > len(shown) else ""
        self.count.value = f"{len(self._rows)} of {len(self.p.ids)} segments{more}"

    def _option_label(self, row: int, run: Optional[RunKey]) -> str:
        p = self.p
        label = f"{p.ids[row]}: {p.verbs[p.verb_true[row]]} {p.nouns[p.noun_true[row]]}"
        if run is not None:
            right = p.correct(row, run)
            label += f"   verb {'✓' if right['verb'] else '✗'} noun {'✓' if right['noun'] else '✗'}"
        return label

    # -- views ---------------------------------------------------------------------------------
    def _show(self, nid: Optional[str]) -> None:
        if nid is None:
            self.info.value = "<i>No segment matches these filters.</i>"
            self.image.layout.visibility = "hidden"
            self.top5.value = self.confusion.value = ""
            return
        self.image.layout.visibility = "visible"
        self._show_frames(nid)
        self.info.value = self._info_html(nid)
        self.top5.value = self._top5_html(nid)
        self.confusion.value = self._confusion_html(nid)

    def _show_frames(self, nid: str) -> None:
        if self.view.value == "clip":
            data, fmt = self.frames.clip(nid), "gif"
        else:
            data, fmt = self.frames.strip(nid), "png"
        if self.image.format != fmt:
            self.image.format = fmt
        self.image.value = data

    def _info_html(self, nid: str) -> str:
        p, row = self.p, self.p.row[nid]
        seg = p.segments[row]
        verb, noun = p.verbs[p.verb_true[row]], p.nouns[p.noun_true[row]]
        narration = f" &middot; narration &ldquo;{_e(seg.narration)}&rdquo;" if seg.narration else ""
        return (f"<div style='font-size:14px;margin:6px 0'><b>{_e(nid)}</b> &middot; video {_e(seg.video_id)} "
                f"&middot; {seg.start_timestamp:.2f}&ndash;{seg.stop_timestamp:.2f} s ({seg.duration:.2f} s){narration}"
                f"<br>true: verb <b>{_e(verb)}</b>, noun <b>{_e(noun)}</b> &middot; frames: the "
                f"{self.frames.num_frames} evaluation frames, whole (before the model's resize and crop)</div>")

    def _top5_html(self, nid: str) -> str:
        row, blocks = self.p.row[nid], []
        for key in self.runs:
            top, right = self.p.top(row, key), self.p.correct(row, key)
            head = "".join(f"<th style='{_CELL};background:{GOOD if right[h] else BAD}'>{h}</th>"
                           for h in ("verb", "noun", "action"))
            body = "".join("<tr>" + f"<td style='{_CELL};color:#777'>{rank + 1}</td>"
                           + "".join(_answer(*top[h][rank]) if rank < len(top[h]) else f"<td style='{_CELL}'></td>"
                                     for h in ("verb", "noun", "action")) + "</tr>"
                           for rank in range(max(map(len, top.values()))))
            blocks.append(f"<table style='{_TABLE}' data-segment='{_e(nid)}' data-method='{_e(key[0])}'>"
                          f"<caption style='text-align:left;font-weight:bold;padding-bottom:3px'>"
                          f"{_e(self.p.methods[key[0]])} <span style='font-weight:normal;color:#555'>seed {key[1]}"
                          f"</span></caption><tr><th style='{_CELL}'>#</th>{head}</tr>{body}</table>")
        return (f"<div style='font-size:13px;color:#555'>top-5 of each method on <b>{_e(nid)}</b> (softmax "
                f"probabilities; actions scored p(verb) &times; p(noun), as EK100 does; &#10003; the true class)"
                f"</div><div style='display:flex;flex-wrap:wrap'>{''.join(blocks)}</div>")

    def _confusion_html(self, nid: str) -> str:
        p, row = self.p, self.p.row[nid]
        pair = self.pair.value if self.pair.value != ANY else p.pair_of(int(p.verb_true[row]))
        if pair is None:
            return ("<div style='font-size:13px;color:#555'>This segment's verb is in no reversal pair: pick a "
                    "pair to see how the methods tell its two verbs apart.</div>")
        a, b, name = p.pairs[pair]
        true = int(p.verb_true[row])
        blocks = []
        for key in self.runs:
            table = p.pair_confusion(pair, key)
            r = p.run(key)
            mine = (p.verbs[true], p.verbs[a] if r.verb_logits[row, a] >= r.verb_logits[row, b] else p.verbs[b]) \
                if true in (a, b) else None
            total = int(table.iloc[:, :2].to_numpy().sum())
            right = int(table.iloc[0, 0] + table.iloc[1, 1])
            cells = ""
            for t in table.index:
                cells += f"<tr><th style='{_CELL}'>{_e(t)}</th>"
                for c, column in enumerate(table.columns):
                    here = mine is not None and c < 2 and mine == (t, column.removeprefix("chose "))
                    style = _CELL + (";outline:2px solid #333" if here else "") + (";color:#777" if c == 2 else "")
                    cells += f"<td style='{style}'>{int(table.loc[t, column])}</td>"
                cells += "</tr>"
            header = "".join(f"<th style='{_CELL}'>{_e(c)}</th>" for c in table.columns)
            blocks.append(f"<table style='{_TABLE}'><caption style='text-align:left;font-weight:bold'>"
                          f"{_e(p.methods[key[0]])} <span style='font-weight:normal;color:#555'>seed {key[1]}: "
                          f"{right} of {total} right</span></caption><tr><th style='{_CELL}'>true verb</th>{header}"
                          f"</tr>{cells}</table>")
        return (f"<div style='font-size:13px;color:#555;margin-top:6px'>reversal pair <b>{_e(name)}</b>: the choice "
                f"between its two verbs (the larger of their two logits) on every validation segment of either; "
                f"outlined: this segment</div><div style='display:flex;flex-wrap:wrap'>{''.join(blocks)}</div>")


def explorer(predictions: Predictions, frames: SegmentFrames, **kwargs) -> widgets.Widget:
    """The explorer's widget, ready to display (`Explorer` arguments)."""
    return Explorer(predictions, frames, **kwargs).widget
