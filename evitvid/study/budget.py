"""Where the study's training time went, and how it compares with the time the study is meant to take.

Runs train side by side (`evitvid.study.jobs`), so the study's training time is the span of
their wall clocks (`training_span`), not the sum of their own times; `time_spent` splits each
method's time into steps, waiting for data and validation.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import pandas as pd

from ..models import get_model_entry
from ..runs import Run

__all__ = ["STUDY_BUDGET_MINUTES", "time_spent", "training_span", "most_at_once", "budget_sentence",
           "budget_numbers"]


STUDY_BUDGET_MINUTES = 45  # what make study is meant to take on 2 cores (issue 9)


def time_spent(runs: Mapping, methods: Mapping, pretraining: Mapping) -> pd.DataFrame:
    """Where the study's training time went: per method, minutes per run (mean over seeds) and in
    all, and how an epoch splits into training steps, waiting for data and validation (from the
    runs' per-epoch timings); the image pretraining beside them."""
    def row(what: str, group: Sequence[Run]) -> dict:
        epochs = [m for r in group for m in r.metrics if "epoch_seconds" in m]
        total = sum(r.results["train_seconds"] for r in group)
        share = {name: 100 * sum(m.get(key, 0.0) for m in epochs) / max(total, 1e-9)
                 for name, key in (("steps (%)", "step_seconds"), ("waiting for data (%)", "data_seconds"),
                                   ("validation (%)", "val_seconds"))}
        return {"what": what, "runs": len(group), "minutes per run": total / 60 / len(group),
                "minutes in all": total / 60, **share}

    rows = [row(methods[key].label, group) for key, group in runs.items()]
    rows += [row(f"image pretraining ({get_model_entry(model).title})", [r]) for model, r in pretraining.items()
             if r is not None]
    return pd.DataFrame(rows).set_index("what").round(1)


def training_span(runs: Iterable[Run]) -> Optional[float]:
    """Minutes from the first of `runs` starting to the last one finishing (the `wall_clock` each
    records): the study's training time when runs train side by side, which the sum of their
    times overstates. None when a run has no such record (trained before it was kept)."""
    clocks = [r.results.get("wall_clock") for r in runs]
    if not clocks or any(c is None for c in clocks):
        return None
    return (max(c["finished"] for c in clocks) - min(c["started"] for c in clocks)) / 60


def most_at_once(runs: Iterable[Run]) -> int:
    """The largest number of `runs` that were training at the same moment (their `wall_clock`s)."""
    # (time, +1 start / -1 end), an end before a start at the same time: a run ending as another starts is not at once
    events = sorted((c[k], +1 if k == "started" else -1) for c in (r.results.get("wall_clock") for r in runs) if c
                    for k in ("started", "finished"))
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def budget_sentence(train_minutes: float, trained: str, budget: float = STUDY_BUDGET_MINUTES) -> str:
    """How the training time compares with the whole study's budget. Training is only part of
    the study (set-up, data, evaluation and the book come on top, and only the README's
    measured run knows their time), so training under the budget is never read as the study
    fitting it."""
    if train_minutes > budget:
        return (f"more than the {budget:g} minutes the whole study was meant to take on 2 cores, for {trained}: "
                "fitting the budget needs a faster training step or fewer runs, and more epochs would cost more "
                "still (whether these reached a plateau is below)")
    return (f"{train_minutes:.0f} of the {budget:g} minutes the whole study is meant to take on 2 cores, for "
            f"{trained}. Set-up, evaluation and the book come on top; make study makes the embedded dataset "
            "beside the image pretraining, inside this span")


def budget_numbers(runs: Mapping, methods: Mapping, pretraining: Mapping, extra: Sequence[Run] = ()) -> dict:
    """What the budget paragraph quotes: the training's wall-clock span over every run (`runs`,
    the `pretraining` runs and `extra` ones such as the spread between machines), the sum of the
    runs' own times, how many trained at once, and the share spent waiting for data."""
    table = time_spent(runs, methods, pretraining)
    every = [r for g in runs.values() for r in g] + [r for r in pretraining.values() if r is not None] + list(extra)
    env = every[0].results.get("environment", {})
    seeds = {r.params["seed"] for g in runs.values() for r in g}
    data = table.loc[[methods[key].label for key in runs], "waiting for data (%)"]  # the video runs
    run_minutes = sum(r.results["train_seconds"] for r in every) / 60
    span = training_span(every)
    minutes = span if span is not None else run_minutes
    epochs = sorted({r.params["epochs"] for g in runs.values() for r in g})
    trained = f"every method with {len(seeds)} seeds for {'/'.join(map(str, epochs))} epochs"
    threads = sorted({r.results.get("environment", {}).get("threads") for r in every} - {None})
    return {"train_minutes": f"{minutes:.0f}", "run_minutes": f"{run_minutes:.0f}",
            "side_by_side": (f"{len(every)} runs, at most {most_at_once(every)} at a time, on "
                             f"{'/'.join(map(str, threads))} thread(s) each") if span is not None
            else f"{len(every)} runs",
            "machine": f"{env.get('cpu', '?')}, {env.get('cores', '?')} cores",
            "data_share": f"{data.mean():.1f} % of the video runs' time" if len(data) else "n/a",
            "budget_sentence": budget_sentence(minutes, trained)}
