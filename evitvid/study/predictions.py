"""What a finished video run predicted, and the model that predicted it.

A `train_video` run writes `logits.npz` (every logit of every validation segment, so the
statistics need no model) and `predictions.csv` (the top 5, for people): `write_predictions`.
Everything after training reads them here: `read_logits`, `segment_results` (correctness per
segment), `predictions_frame`, and `load_trained` (the trained model, from a checkpoint read
as tensors only: a run folder from elsewhere cannot run code).
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import models as _models
from ..atomic import atomic_path, write_bytes_atomic
from ..engine.evaluate import EvalResult
from ..models.action import action_scores
from ..engine.trainer import read_checkpoint
from ..runs import Run, resolve_from_root
from .data import DataPaths, action_pairs, action_record, read_splits

__all__ = ["LOGITS_FILE", "write_predictions", "read_logits", "segment_results", "correctness", "predictions_frame",
           "run_data", "load_trained"]

LOGITS_FILE = "logits.npz"


def write_predictions(run: Run, result: EvalResult) -> None:
    """`logits.npz` (every logit, for the statistics) and `predictions.csv` (top-5, for people)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, narration_id=np.array(result.narration_ids),
                        verb_logits=result.logits["verb"].numpy(), noun_logits=result.logits["noun"].numpy(),
                        verb=result.targets["verb"].numpy(), noun=result.targets["noun"].numpy())
    write_bytes_atomic(run.dir / LOGITS_FILE, buffer.getvalue())
    with atomic_path(run.dir / "predictions.csv") as tmp:
        predictions_frame(run).to_csv(tmp, index=False)


def read_logits(run: Run) -> dict[str, np.ndarray]:
    """A run's `logits.npz`, every array in memory; one line naming the file when it is missing."""
    path = run.dir / LOGITS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the run has no validation logits (is it finished?)")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def segment_results(run: Run) -> pd.DataFrame:
    """One row per validation segment: narration_id, true and predicted verb/noun, and whether
    the verb, noun and action (both) were right at top-1."""
    return correctness(read_logits(run))


def correctness(z: dict[str, np.ndarray]) -> pd.DataFrame:
    """`segment_results` of logits as `read_logits` returns them (or a cached evaluation's)."""
    verb_pred, noun_pred = z["verb_logits"].argmax(1), z["noun_logits"].argmax(1)
    pairs = action_scores(torch.from_numpy(z["verb_logits"]), torch.from_numpy(z["noun_logits"]), top_k=1)
    action = (pairs.verb[:, 0].numpy() == z["verb"]) & (pairs.noun[:, 0].numpy() == z["noun"])
    return pd.DataFrame({"narration_id": z["narration_id"], "verb": z["verb"], "noun": z["noun"],
                         "verb_pred": verb_pred, "noun_pred": noun_pred, "verb_correct": verb_pred == z["verb"],
                         "noun_correct": noun_pred == z["noun"], "action_correct": action})


def predictions_frame(run: Run) -> pd.DataFrame:
    """narration_id, true verb/noun, top-5 predicted verbs/nouns (best first) and their probabilities."""
    z = read_logits(run)
    out: dict[str, Any] = {"narration_id": z["narration_id"], "verb": z["verb"], "noun": z["noun"]}
    for name in ("verb", "noun"):
        p = torch.from_numpy(z[f"{name}_logits"]).softmax(-1)
        top = p.topk(min(5, p.shape[1]), dim=-1)
        out[f"{name}_top5"] = [" ".join(map(str, r)) for r in top.indices.tolist()]
        out[f"{name}_top5_prob"] = [" ".join(f"{x:.3f}" for x in r) for r in top.values.tolist()]
    return pd.DataFrame(out)


def run_data(run: Run) -> DataPaths:
    """The data a video run trained on: its record, the embedded dataset found under the data
    root the run recorded (relative to the runs root, so a moved checkout still finds it)."""
    p = run.params
    root = p.get("data_root")
    return DataPaths.from_record(p["data"], resolve_from_root(root, run.dir.parent) if root else None)


def load_trained(run: Run) -> torch.nn.Module:
    """The model of a finished `train_video` run, in eval mode (EMA weights when the run kept them),
    with its action classes when it has an action head (checked against the digest it recorded).
    Its checkpoint is read as tensors only (`read_checkpoint`): a run folder from elsewhere cannot
    run code here."""
    p = run.params
    state = read_checkpoint(run.checkpoint)  # first: what a run folder from elsewhere can get wrong
    splits = read_splits(run_data(run))
    heads = {}
    if p.get("head") == "action":  # its action classes, rebuilt from its data as it trained them
        pairs = action_pairs(splits)
        if action_record(pairs) != p["actions"]:
            raise ValueError(f"{run.dir}: its data now gives {len(pairs)} action classes (sha1 "
                             f"{action_record(pairs)['sha1'][:12]}), not the {p['actions']['classes']} it trained with "
                             f"(sha1 {p['actions']['sha1'][:12]}): the annotation files changed")
        heads["actions"] = pairs
    net = _models.create_model(p["model"], num_verbs=len(splits.verbs), num_nouns=len(splits.nouns),
                               **heads, **p.get("model_kwargs", {}))
    net.load_state_dict(state["ema"] if state.get("ema") else state["model"])
    return net.eval()
