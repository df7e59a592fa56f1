"""The study: the book's experiments as library calls, one per step.

Each notebook of `book/` calls these; so does `python -m evitvid train`. A step takes its
parameters from a profile (`params`: `book/params/cpu.yaml`, `ek100.yaml`), writes run
folders (`evitvid.runs`) and returns them; a finished run is reused, an interrupted one
resumes.

- `params`: the parameters, written once (`StudyParams`, `load_profile`, `notebook_parameters`).
- `data`: where the data is, its splits read once, their statistics, clip datasets.
- `training`: video runs and the image pretraining.
- `jobs`: many runs at once, in parallel, each after the runs it needs.
- `methods`: the methods compared, defined once, and their runs per seed.
- `evaluation`: predictions per segment, accuracy against frames and positions, reversal, timing.
- `baselines`: chance, majority and the order-blind ceiling, computed from the data.
- `intervals`: bootstrap intervals over segments, paired differences, balanced accuracy.
- `results`: the tables (mean ± sd over seeds, intervals, differences, pairs, curves).
- `verdicts`: each of the paper's findings tested.
- `performance`: the bench as a study step.
- `recorded`: a study at a longer budget, recorded in the repository, beside this one.
- `report`: a notebook's run folder, glued numbers, readable tables, result-dependent sentences.
"""
from .baselines import REVERSAL_PAIRS, baselines, pair_baselines, reversal_pairs
from .data import (DataPaths, Splits, build_frame_caches, class_counts, class_names, clip_dataset, dataset_summary,
                   missing_videos, read_splits, resolve_data, segment_lengths)
from .evaluation import (ReversalProbe, evaluate_frames, load_trained, positions, predictions_frame,
                         reversal_at_initialisation, segment_results, time_inference)
from .intervals import Interval, balanced_accuracy, balanced_accuracy_interval, mean_interval, paired_difference
from .jobs import RunSpec, train_runs
from .methods import (Method, finished_methods, inflation_comparisons, machine_spread, method_runs, prepare_data,
                      pretraining_specs, spread_run, study_data, study_methods, study_runs, train_methods, train_study)
from .params import PROTOCOL, ParameterError, StudyParams, load_profile, notebook_parameters, profile_values
from .performance import benchmark_run
from .report import (MAIN_COMPARISONS, ablation_numbers, budget_numbers, budget_sentence, difference_drift,
                     drift_sentence, every_comparison, longer_budget_numbers, plateau_table,
                     comparison_numbers, comparison_sentence, frames_numbers, glue,
                     machine_table, notebook_run, pair_numbers, pct, points, pretraining_curves,
                     pretraining_numbers, pretraining_sentence, pretraining_table, protocol_numbers, read_table,
                     readable_baselines, readable_summary, reversal_numbers, reversal_table, same_computation, save_table,
                     spread_numbers, time_inference_all, time_spent, timing_table, training_span, verdict_display)
from .recorded import RecordedStudy, budget_comparison, read_recorded, record_study, recorded_runs_match
from .results import (accuracy, difference, differences, frames_curve, learning_curves, main_metrics, pair_accuracy,
                      pair_summary, seed_spread, segments_by_seed, summary)
from .training import (DEFAULT_RUNS, initial_model, pretrain_images, pretrained_checkpoint, pretraining_params,
                       pretraining_runs, run_name, runs_root_of, train_video, training_params)
from .verdicts import PAPER_VERB_TOP1, VERDICT_COLUMNS, verdict_table

__all__ = [
    "StudyParams", "ParameterError", "load_profile", "profile_values", "notebook_parameters",
    "DataPaths", "Splits", "resolve_data", "read_splits", "class_names", "build_frame_caches", "clip_dataset",
    "missing_videos",
    "dataset_summary", "class_counts", "segment_lengths",
    "DEFAULT_RUNS", "RunSpec", "run_name", "runs_root_of", "train_video", "initial_model", "pretrain_images",
    "pretrained_checkpoint", "PROTOCOL", "training_params", "pretraining_params", "pretraining_runs", "train_runs",
    "Method", "study_methods", "study_data", "prepare_data", "method_runs", "pretraining_specs", "train_methods",
    "finished_methods", "spread_run", "machine_spread", "study_runs", "train_study", "inflation_comparisons",
    "load_trained", "segment_results", "predictions_frame", "positions", "evaluate_frames", "ReversalProbe",
    "reversal_at_initialisation", "time_inference",
    "REVERSAL_PAIRS", "reversal_pairs", "baselines", "pair_baselines",
    "Interval", "mean_interval", "paired_difference", "balanced_accuracy", "balanced_accuracy_interval",
    "segments_by_seed", "main_metrics", "accuracy", "summary", "difference", "differences", "pair_accuracy",
    "pair_summary", "learning_curves", "frames_curve", "seed_spread",
    "PAPER_VERB_TOP1", "VERDICT_COLUMNS", "verdict_table",
    "RecordedStudy", "record_study", "read_recorded", "recorded_runs_match", "budget_comparison",
    "benchmark_run",
    "notebook_run", "save_table", "read_table", "glue", "pct", "points", "readable_summary", "readable_baselines",
    "comparison_sentence", "MAIN_COMPARISONS", "comparison_numbers", "frames_numbers",
    "time_inference_all", "timing_table", "pretraining_curves", "pretraining_table", "pretraining_numbers",
    "pretraining_sentence",
    "reversal_table", "reversal_numbers", "ablation_numbers", "verdict_display", "pair_numbers", "machine_table",
    "same_computation", "spread_numbers", "protocol_numbers", "time_spent", "training_span", "budget_numbers",
    "budget_sentence",
    "plateau_table", "difference_drift", "drift_sentence", "longer_budget_numbers", "every_comparison",
]
