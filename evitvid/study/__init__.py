"""The study: the book's experiments as library calls, one per step.

Each notebook of `book/` calls these; so does `python -m evitvid study`. A step takes its
parameters from a profile (`params`), writes run folders (`evitvid.runs`) and returns them; a
finished run is reused, an interrupted one resumes. Every path (profiles, runs, data) comes
from the caller or the profile.

The modules form one pipeline, each importing only from those before it:

- parameters: `params` (`StudyParams`, profiles, notebook parameters);
- data: `data` (where it is, its splits read once, their statistics, clip datasets);
- runs: `methods` (what is compared), `predictions` (what a run predicted, its model),
  `probes` (measured while training), `training` (one run), `jobs` (many at once), `plan`
  (every run the book reads, named and trained);
- predictions of trained models: `frames` (accuracy against frames, Fig. 2), `reversal`
  (time reversal at initialisation), `timing` (inference time, Fig. 3);
- statistics: `baselines`, `intervals`, `results` (the tables of numbers), `motion` (a
  hand-made probe of the motion pairs' direction, beside the models), `curves` (plateaus,
  drift, budgets), `budget` (where the training time went), `spread` (seeds and machines),
  `recorded` (a study at a longer budget, or a tuning study, kept in the repository);
- verdicts: `verdicts` (each of the paper's claims checked);
- text and tables: `text` (numbers in words, glue), `tables` (a notebook's tables, readable),
  `chapters` (each chapter's glued numbers and sentences), `performance` (the bench as a step).
"""
from .baselines import KINDS, verb_kinds, REVERSAL_PAIRS, baselines, pair_baselines, reversal_pairs
from .budget import STUDY_BUDGET_MINUTES, budget_numbers, budget_sentence, most_at_once, time_spent, training_span
from .chapters import (ablation_numbers, architecture_numbers, comparison_numbers, frames_numbers, motion_numbers,
                       motion_study_numbers, controls_numbers, pair_numbers,
                       pretraining_numbers, testbed_numbers, verdict_numbers, kind_difference_numbers,
                       pretraining_sentence, protocol_numbers, reversal_numbers, mechanism_numbers)
from .curves import (budget_comparison, difference_drift, drift_sentence, final_top1, longer_budget_numbers,
                     plateau_changes, plateau_sentence, plateau_table)
from .data import (DataPaths, Splits, action_pairs, action_record, build_frame_caches, class_counts, class_names,
                   clip_dataset, dataset_summary, missing_videos, read_planned_splits, read_splits, resolve_data,
                   segment_lengths)
from .frames import evaluate_frames, positions
from .intervals import (DifferenceTest, Interval, VarianceComponents, balanced_accuracy, balanced_accuracy_interval,
                        cluster_balanced_accuracy, hierarchical_difference, holm, mean_interval,
                        minimum_detectable_difference, paired_difference, seeds_needed, variance_components)
from .jobs import RunSpec, train_runs
from .motion import MEASURES, direction_scores, motion_probe, pan_shift, rotation
from .methods import (MAIN_COMPARISONS, MOTION_COMPARISONS, Method, architecture_comparisons, every_comparison,
                      inflation_comparisons, method_rates, run_rate, study_methods)
from .params import (PROTOCOL, ParameterError, StudyParams, find_profile, load_profile, notebook_parameters,
                     profile_values)
from .performance import benchmark_run
from .plan import (finished_methods, finished_spread, machine_spread, method_runs, prepare_data, pretrained_checkpoint,
                   pretraining_runs, pretraining_specs, spread_run, study_data, study_runs, train_methods, train_study)
from .predictions import load_trained, predictions_frame, read_logits, run_data, segment_results
from .probes import ReversalProbe
from .recorded import (RUN_FILES, RecordedStudy, TuningStudy, checkout_commit, frames_means, inflation_controls,
                       instruction_set_check, read_recorded, read_tuning, record_study, recorded_runs_match,
                       tuned_frames, tuned_rates, tuning_numbers, tuning_table)
from .results import (accuracy, correctness_matrix, difference, difference_test, difference_tests, differences,
                      frames_curve, kind_accuracy, kind_difference_summary, kind_difference_tests, kind_summary,
                      learning_curves, main_metrics, pair_accuracy,
                      pair_choice_summary, pair_choice_test, pair_choice_tests, pair_choices, pair_summary, seed_spread,
                      segment_videos, segments_by_seed, summary, video_ids)
from .reversal import reversal_at_initialisation
from .spread import InstructionSetCheck, machine_table, same_computation, spread_numbers
from .tables import (notebook_run, pretraining_curves, pretraining_table, read_table, readable_baselines,
                     readable_summary, reversal_table, save_table, time_steps_table, verdict_display)
from .text import comparison_sentence, glue, pct, points
from .timing import time_inference, time_inference_all, timing_table
from .training import (finished_here, initial_model, pretrain_images, pretraining_params, run_name, train_video,
                       training_params)
from .verdicts import (CLAIM_COMPARISONS, CLAIMS, PAPER_VERB_TOP1, VERDICT_COLUMNS, VERDICTS, architecture_verdicts,
                       verdict_table)

__all__ = [
    "StudyParams", "ParameterError", "find_profile", "load_profile", "profile_values", "notebook_parameters",
    "PROTOCOL",
    "DataPaths", "Splits", "resolve_data", "read_splits", "read_planned_splits", "class_names", "build_frame_caches",
    "clip_dataset",
    "missing_videos", "dataset_summary", "class_counts", "segment_lengths", "action_pairs", "action_record",
    "Method", "study_methods", "method_rates", "run_rate", "inflation_comparisons", "architecture_comparisons",
    "MAIN_COMPARISONS", "MOTION_COMPARISONS",
    "every_comparison", "architecture_verdicts", "architecture_numbers", "time_steps_table",
    "read_logits", "segment_results", "predictions_frame", "run_data", "load_trained", "ReversalProbe",
    "RunSpec", "run_name", "finished_here", "train_video", "initial_model", "pretrain_images", "training_params",
    "pretraining_params", "train_runs",
    "study_data", "prepare_data", "method_runs", "pretraining_specs", "pretraining_runs", "pretrained_checkpoint",
    "train_methods", "finished_methods", "spread_run", "machine_spread", "finished_spread", "study_runs", "train_study",
    "positions", "evaluate_frames", "reversal_at_initialisation", "time_inference", "time_inference_all",
    "timing_table",
    "REVERSAL_PAIRS", "reversal_pairs", "baselines", "pair_baselines",
    "Interval", "mean_interval", "paired_difference", "balanced_accuracy", "balanced_accuracy_interval",
    "cluster_balanced_accuracy", "DifferenceTest", "VarianceComponents", "variance_components",
    "hierarchical_difference", "minimum_detectable_difference", "seeds_needed", "holm",
    "segments_by_seed", "main_metrics", "accuracy", "summary", "difference", "differences", "pair_accuracy",
    "video_ids", "segment_videos", "correctness_matrix", "difference_test", "difference_tests",
    "pair_summary", "learning_curves", "frames_curve", "seed_spread",
    "plateau_changes", "plateau_table", "plateau_sentence", "difference_drift", "drift_sentence", "final_top1",
    "budget_comparison", "longer_budget_numbers",
    "STUDY_BUDGET_MINUTES", "time_spent", "training_span", "most_at_once", "budget_sentence", "budget_numbers",
    "InstructionSetCheck", "machine_table", "same_computation", "spread_numbers",
    "RUN_FILES", "RecordedStudy", "checkout_commit", "record_study", "read_recorded", "recorded_runs_match",
    "inflation_controls", "instruction_set_check",
    "TuningStudy",
    "read_tuning", "frames_means", "tuned_frames", "tuned_rates", "tuning_table", "tuning_numbers",
    "PAPER_VERB_TOP1", "VERDICTS", "VERDICT_COLUMNS", "CLAIMS", "CLAIM_COMPARISONS", "verdict_table",
    "pair_choices", "pair_choice_test", "pair_choice_tests", "pair_choice_summary", "kind_accuracy", "kind_summary",
    "kind_difference_tests", "kind_difference_summary", "KINDS", "verb_kinds",
    "glue", "pct", "points", "comparison_sentence",
    "notebook_run", "save_table", "read_table", "readable_summary", "readable_baselines", "verdict_display",
    "pretraining_curves", "pretraining_table", "reversal_table",
    "verdict_numbers", "kind_difference_numbers", "testbed_numbers", "comparison_numbers", "frames_numbers",
    "pretraining_sentence", "pretraining_numbers",
    "reversal_numbers", "mechanism_numbers",
    "ablation_numbers", "pair_numbers", "motion_numbers", "motion_study_numbers", "controls_numbers",
    "MEASURES", "direction_scores", "motion_probe", "pan_shift", "rotation", "protocol_numbers",
    "benchmark_run",
]
