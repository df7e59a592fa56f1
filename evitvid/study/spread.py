"""How much the study's numbers move between seeds and between machines.

The study trains one run twice: as this machine computes it and with oneDNN limited to a
lesser instruction set, as another CPU would (`plan.spread_run`); these read the two runs.
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from ..runs import Run

__all__ = ["limited_isa", "machine_table", "same_computation", "spread_numbers"]


def limited_isa(run: Run) -> str:
    """The instruction set a run limited oneDNN to (`machine_spread`), or "default"."""
    return run.params.get("environment", {}).get("ONEDNN_MAX_CPU_ISA", "default")


def machine_table(here: Run, elsewhere: Run, methods: Mapping) -> pd.DataFrame:
    rows = []
    for label, r in (("this machine (default instruction set)", here),
                     (f"oneDNN limited to {limited_isa(elsewhere)}", elsewhere)):
        val = r.results["val"]
        rows.append({"run": label, "verb top-1 (%)": f"{100 * val['verb_top1']:.1f}",
                     "noun top-1 (%)": f"{100 * val['noun_top1']:.1f}",
                     "action top-1 (%)": f"{100 * val['action_top1']:.1f}"})
    return pd.DataFrame(rows).set_index("run")


def same_computation(a: Run, b: Run) -> bool:
    """Whether two runs computed the same numbers: their per-epoch training losses are equal to
    the last bit (two instruction sets that round alike leave every sum unchanged)."""
    first, second = ([m["train_loss"] for m in r.metrics if "train_loss" in m] for r in (a, b))
    return bool(first) and first == second


def spread_numbers(runs: Mapping, methods: Mapping, here: Run, elsewhere: Run) -> dict:
    """The book's sentence on how much numbers move: the largest range of verb top-1 over seeds
    (any method), the change of one run on another instruction set, and which instruction sets."""
    ranges = [100 * (max(r.results["val"]["verb_top1"] for r in g) - min(r.results["val"]["verb_top1"] for r in g))
              for g in runs.values() if len(g) > 1]
    change = f"{100 * (elsewhere.results['val']['verb_top1'] - here.results['val']['verb_top1']):+.1f} points"
    if same_computation(here, elsewhere):
        change += (" (the two runs computed the same numbers to the last bit, so this measures nothing about "
                   "other machines)")
    return {"seed_range": f"{max(ranges):.1f} points" if ranges else "n/a", "machine_change": change,
            "machine_isa": limited_isa(elsewhere),
            "machine_capability": here.results.get("environment", {}).get("cpu_capability", "unknown")}
