"""The trained runs' validation predictions, read once, for the prediction explorer.

Every run folder holds `logits.npz` (CONTRIBUTING.md, "Run folders": narration_id,
verb_logits, noun_logits, verb, noun for every validation segment it evaluated). `Predictions`
reads those of every run once and keeps, per run, what a change of selection asks for as
arrays aligned with one list of segments: the top-5 verbs and nouns with their softmax
probabilities, the top-5 actions scored as the EK100 challenge scores them
(`evitvid.models.action_scores`: p(verb) x p(noun)) and the verb logits (the choice between a
reversal pair's two verbs). Filtering is then a few boolean masks and a segment's table a
few array lookups, which keeps each change of the explorer well under a second even on
EK100's 9,668 validation segments.

A pair's confusion follows the study's pair accuracy (`evitvid.study.pair_accuracy`): on the
segments whose true verb is either verb of the pair, the model's choice between the two is
the larger of their two logits (ties to the pair's first verb).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from ..models.action import action_scores
from ..runs import Run
from ..study import Splits, reversal_pairs
from ..study.predictions import read_logits

__all__ = ["RESULTS", "RunKey", "RunPredictions", "Predictions", "read_logits"]

TOP_K = 5

# The right/wrong filter: its label -> (head, right?); None: every segment.
RESULTS: dict[str, Optional[tuple[str, bool]]] = {
    "any": None,
    "verb right": ("verb", True), "verb wrong": ("verb", False),
    "noun right": ("noun", True), "noun wrong": ("noun", False),
    "action right": ("action", True), "action wrong": ("action", False),
}

RunKey = tuple[str, int]  # (method key, seed)


@dataclass(frozen=True)
class RunPredictions:
    """One run's top-k answers on the explorer's segments (row i: `Predictions.segments[i]`)."""
    verb_logits: np.ndarray    # N x V
    verb_top: np.ndarray       # N x k class ids, best first
    verb_prob: np.ndarray      # N x k softmax probabilities
    noun_top: np.ndarray
    noun_prob: np.ndarray
    action_verb: np.ndarray    # N x k (verb, noun) of the k best actions
    action_noun: np.ndarray
    action_score: np.ndarray   # N x k p(verb) * p(noun)

    @classmethod
    def from_logits(cls, verb_logits: np.ndarray, noun_logits: np.ndarray, top_k: int = TOP_K) -> "RunPredictions":
        v, n = torch.from_numpy(np.ascontiguousarray(verb_logits)), torch.from_numpy(np.ascontiguousarray(noun_logits))
        vp, vi = v.float().softmax(-1).topk(min(top_k, v.shape[1]), dim=-1)
        np_, ni = n.float().softmax(-1).topk(min(top_k, n.shape[1]), dim=-1)
        actions = action_scores(v, n, top_k=top_k)
        return cls(np.asarray(verb_logits, dtype=np.float32), vi.numpy(), vp.numpy(), ni.numpy(), np_.numpy(),
                   actions.verb.numpy(), actions.noun.numpy(), actions.scores.numpy())

    def correct(self, head: str, verb_true: np.ndarray, noun_true: np.ndarray) -> np.ndarray:
        """Whether the top-1 verb, noun or action (both) is right, per segment."""
        verb, noun = self.verb_top[:, 0] == verb_true, self.noun_top[:, 0] == noun_true
        if head == "verb":
            return verb
        if head == "noun":
            return noun
        if head == "action":  # the best action pairs the best verb with the best noun
            return (self.action_verb[:, 0] == verb_true) & (self.action_noun[:, 0] == noun_true)
        raise ValueError(f"head must be verb, noun or action, got {head!r}")


class Predictions:
    """The validation segments every run predicted, and each run's answers on them.

    `methods` is {method key: label} in the book's order; `runs` {(method key, seed): RunPredictions}.
    Segments are kept in the split's order; a segment some run did not evaluate (a smoke run's
    `max_val`) is left out, so every table compares the runs on the same segments.
    """

    def __init__(self, segments: Sequence, verbs: Sequence[str], nouns: Sequence[str], methods: Mapping[str, str],
                 runs: Mapping[RunKey, RunPredictions]):
        self.segments = list(segments)
        self.verbs, self.nouns = list(verbs), list(nouns)
        self.methods = dict(methods)
        self.default_methods = list(self.methods)[:2]  # what the app shows first (`sources` picks the book's pair)
        self.runs = dict(runs)
        self.ids = [s.narration_id for s in self.segments]
        self.row = {nid: i for i, nid in enumerate(self.ids)}
        self.verb_true = np.array([s.verb_class for s in self.segments], dtype=np.int64)
        self.noun_true = np.array([s.noun_class for s in self.segments], dtype=np.int64)
        present = set(self.verb_true.tolist())
        self.pairs = [p for p in reversal_pairs(self.verbs) if p[0] in present or p[1] in present]
        missing = sorted({k for k, _ in self.runs} - set(self.methods))
        if missing:
            raise ValueError(f"runs of unknown method(s) {', '.join(missing)}; methods: {', '.join(self.methods)}")

    @classmethod
    def from_runs(cls, runs: Mapping[str, Sequence[Run]], splits: Splits,
                  labels: Optional[Mapping[str, str]] = None, top_k: int = TOP_K) -> "Predictions":
        """Read every run's logits once. `runs`: {method key: [Run per seed]} (as
        `study.finished_methods` returns); `labels`: {method key: label} (default: the keys)."""
        if not runs or not any(runs.values()):
            raise ValueError("no runs to explore: train the study's methods first (make study)")
        logits = {(key, int(run.params["seed"])): read_logits(run) for key, group in runs.items() for run in group}
        evaluated = set.intersection(*(set(z["narration_id"].tolist()) for z in logits.values()))
        segments = [s for s in splits.validation if s.narration_id in evaluated]
        if not segments:
            raise ValueError("the runs share no validation segment of this dataset: were they trained on it?")
        ids = [s.narration_id for s in segments]
        verb_true = np.array([s.verb_class for s in segments])
        noun_true = np.array([s.noun_class for s in segments])
        out = {}
        for key, z in logits.items():
            where = {nid: i for i, nid in enumerate(z["narration_id"].tolist())}
            rows = np.array([where[nid] for nid in ids])
            if not (np.array_equal(z["verb"][rows], verb_true) and np.array_equal(z["noun"][rows], noun_true)):
                raise ValueError(f"run {key[0]} seed {key[1]}: its labels differ from the dataset's validation "
                                 f"split (trained on another dataset?)")
            out[key] = RunPredictions.from_logits(z["verb_logits"][rows], z["noun_logits"][rows], top_k)
        labels = dict(labels or {})
        return cls(segments, splits.verbs, splits.nouns, {k: labels.get(k, k) for k in runs}, out)

    # -- runs ---------------------------------------------------------------------------------
    def seeds(self, methods: Optional[Sequence[str]] = None) -> list[int]:
        """The seeds every one of `methods` (default: all) was trained with."""
        methods = list(self.methods) if methods is None else list(methods)
        common = None
        for m in methods:
            have = {s for k, s in self.runs if k == m}
            common = have if common is None else common & have
        return sorted(common or ())

    def run(self, key: RunKey) -> RunPredictions:
        if key not in self.runs:
            raise KeyError(f"no run of method {key[0]!r} with seed {key[1]} (have: "
                           f"{', '.join(f'{m} seed {s}' for m, s in self.runs)})")
        return self.runs[key]

    # -- segments -----------------------------------------------------------------------------
    def pair_of(self, verb: int) -> Optional[int]:
        """The index in `pairs` of the reversal pair `verb` belongs to, or None."""
        return next((i for i, (a, b, _) in enumerate(self.pairs) if verb in (a, b)), None)

    def select(self, *, verb: Optional[int] = None, noun: Optional[int] = None, pair: Optional[int] = None,
               result: str = "any", run: Optional[RunKey] = None) -> np.ndarray:
        """Rows (indices into `segments`) with this true verb, true noun, true verb in the
        reversal pair `pair` (an index into `pairs`), and top-1 `result` (a key of `RESULTS`)
        for `run`."""
        if result not in RESULTS:
            raise ValueError(f"result must be one of {', '.join(RESULTS)}, got {result!r}")
        keep = np.ones(len(self.segments), dtype=bool)
        if verb is not None:
            keep &= self.verb_true == verb
        if noun is not None:
            keep &= self.noun_true == noun
        if pair is not None:
            a, b, _ = self.pairs[pair]
            keep &= np.isin(self.verb_true, (a, b))
        if RESULTS[result] is not None:
            if run is None:
                raise ValueError(f"result={result!r} needs the run whose answers it filters on")
            head, right = RESULTS[result]
            keep &= self.run(run).correct(head, self.verb_true, self.noun_true) == right
        return np.flatnonzero(keep)

    def correct(self, row: int, run: RunKey) -> dict[str, bool]:
        """Whether `run`'s top-1 verb, noun and action are right on segment `row`."""
        r, v, n = self.run(run), self.verb_true[row], self.noun_true[row]
        return {"verb": bool(r.verb_top[row, 0] == v), "noun": bool(r.noun_top[row, 0] == n),
                "action": bool(r.action_verb[row, 0] == v and r.action_noun[row, 0] == n)}

    # -- answers ------------------------------------------------------------------------------
    def top(self, row: int, run: RunKey) -> dict[str, list[tuple[str, float, bool]]]:
        """`run`'s top-k on segment `row`: {"verb"|"noun"|"action": [(name, probability, right?)]},
        best first; an action is named "verb noun"."""
        r, v, n = self.run(run), int(self.verb_true[row]), int(self.noun_true[row])
        return {
            "verb": [(self.verbs[c], float(p), c == v) for c, p in zip(r.verb_top[row].tolist(), r.verb_prob[row])],
            "noun": [(self.nouns[c], float(p), c == n) for c, p in zip(r.noun_top[row].tolist(), r.noun_prob[row])],
            "action": [(f"{self.verbs[a]} {self.nouns[b]}", float(p), a == v and b == n)
                       for a, b, p in zip(r.action_verb[row].tolist(), r.action_noun[row].tolist(),
                                          r.action_score[row])],
        }

    def top_table(self, row: int, runs: Sequence[RunKey]) -> pd.DataFrame:
        """The top-k verbs, nouns and actions of several runs side by side: one row per rank,
        columns (method label, "verb"|"noun"|"action"), cells "name 62%"."""
        columns = {}
        for key in runs:
            for head, answers in self.top(row, key).items():
                columns[(self._label(key, runs), head)] = [f"{name} {p:.0%}" for name, p, _ in answers]
        ranks = max(map(len, columns.values()))  # fewer than k classes: empty cells
        table = pd.DataFrame({k: v + [""] * (ranks - len(v)) for k, v in columns.items()})
        table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
        table.columns = pd.MultiIndex.from_tuples(table.columns, names=["method", "top-5"])
        return table

    def summary(self, rows: Sequence[int], runs: Sequence[RunKey], separator: str = ", ") -> pd.DataFrame:
        """For static pages: one row per (segment, model), the ground truth first, then each run's
        top-k verbs, nouns and actions as "name 62%, name 20%, ..." (`separator` between answers)."""
        records = []
        for row in rows:
            seg, v, n = self.segments[row], self.verbs[self.verb_true[row]], self.nouns[self.noun_true[row]]
            records.append({"segment": seg.narration_id, "model": "ground truth", "verbs": v, "nouns": n,
                            "actions": f"{v} {n}"})
            for key in runs:
                top = self.top(row, key)
                records.append({"segment": seg.narration_id, "model": self._label(key, runs),
                                **{f"{head}s": separator.join(f"{name} {p:.0%}" for name, p, _ in top[head])
                                   for head in ("verb", "noun", "action")}})
        return pd.DataFrame(records).set_index(["segment", "model"])

    def _label(self, key: RunKey, runs: Sequence[RunKey]) -> str:
        label = self.methods[key[0]]
        same_method = [k for k in runs if k[0] == key[0]]
        return f"{label}, seed {key[1]}" if len(same_method) > 1 else label

    def pair_confusion(self, pair: int, run: RunKey) -> pd.DataFrame:
        """How `run` chooses between the two verbs of reversal pair `pair` (an index into
        `pairs`) on the segments whose true verb is either: a 2 x 2 table of counts (rows: true
        verb, columns: the verb of the larger of the two logits), plus a column counting the
        segments whose top-1 verb over all classes is neither of the two."""
        a, b, _ = self.pairs[pair]
        r = self.run(run)
        rows = np.isin(self.verb_true, (a, b))
        true = self.verb_true[rows]
        pick = np.where(r.verb_logits[rows, a] >= r.verb_logits[rows, b], a, b)
        elsewhere = ~np.isin(r.verb_top[rows, 0], (a, b))
        names = self.verbs[a], self.verbs[b]
        table = pd.DataFrame(
            [[int(np.sum((true == t) & (pick == p))) for p in (a, b)] + [int(np.sum((true == t) & elsewhere))]
             for t in (a, b)],
            index=pd.Index(list(names), name="true verb"),
            columns=[f"chose {names[0]}", f"chose {names[1]}", "top-1 outside the pair"])
        return table
