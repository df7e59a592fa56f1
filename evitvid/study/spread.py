"""How much the study's numbers move between seeds and between machines.

A study with `machine_check` trains one run twice: as its machine computes it and with oneDNN
limited to a lesser instruction set, as another CPU would (`plan.spread_run`); `make study`
reads the pair its recorded controls study kept (`recorded.instruction_set_check`). These read
the two runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import pandas as pd

from ..runs import Run

__all__ = ["InstructionSetCheck", "limited_isa", "machine_table", "same_computation", "spread_numbers"]


@dataclass(frozen=True)
class InstructionSetCheck:
    """A run as its study trained it (`here`), the same run with oneDNN limited to a lesser
    instruction set (`elsewhere`), and where the two were trained (`source`: "this machine", or
    the record that kept them)."""
    here: Run
    elsewhere: Run
    source: str


def limited_isa(run: Run) -> str:
    """The instruction set a run limited oneDNN to (`machine_spread`), or "default"."""
    return run.params.get("environment", {}).get("ONEDNN_MAX_CPU_ISA", "default")


def machine_table(check: Optional[InstructionSetCheck]) -> pd.DataFrame:
    """Top-1 of the check's two runs, a row each (empty without a check)."""
    if check is None:
        return pd.DataFrame()
    rows = []
    for label, r in (("as trained (default instruction set)", check.here),
                     (f"oneDNN limited to {limited_isa(check.elsewhere)}", check.elsewhere)):
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


def spread_numbers(runs: Mapping, check: Optional[InstructionSetCheck]) -> dict:
    """The book's sentences on how much numbers move: the largest range of verb top-1 over seeds
    (any method of `runs`), and the instruction-set check: which run, where it was trained, which
    instruction sets (`machine_check_sentence`) and how far it moved (`machine_change`)."""
    ranges = [100 * (max(r.results["val"]["verb_top1"] for r in g) - min(r.results["val"]["verb_top1"] for r in g))
              for g in runs.values() if len(g) > 1]
    seed_range = f"{max(ranges):.1f} points" if ranges else "n/a"
    if check is None:
        return {"seed_range": seed_range, "machine_change": "nothing here (no instruction-set check for this profile)",
                "machine_check_sentence": "this profile trains no instruction-set check and names no recorded one"}
    here, elsewhere = check.here, check.elsewhere
    change = f"{100 * (elsewhere.results['val']['verb_top1'] - here.results['val']['verb_top1']):+.1f} points"
    if same_computation(here, elsewhere):
        change += (" (the two runs computed the same numbers to the last bit, so this measures nothing about "
                   "other machines)")
    capability = here.results.get("environment", {}).get("cpu_capability", "unknown")
    start = "from image weights" if here.params.get("pretrained") else "from random initialisation"
    sentence = (f"seed {here.params['seed']} of {here.params['model']} {start}, trained on "
                f"{check.source} and again with oneDNN limited to the {limited_isa(elsewhere)} instruction set, one "
                f"step below the best that CPU runs ({capability})")
    return {"seed_range": seed_range, "machine_change": change, "machine_check_sentence": sentence}
