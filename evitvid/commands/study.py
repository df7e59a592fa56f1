"""`python -m evitvid study`: train every run a profile's book reads, before the notebooks.

`make study` runs it first: the image pretraining, every method and seed and the run that
measures the spread between machines train `parallel_runs` at a time (`evitvid.study.jobs`),
each printing a line per epoch and one when it finishes; the notebooks then find every run
finished and read it. A finished run is never trained again and a killed study resumes where
its runs stopped. `--list` prints the runs and whether each is finished, and trains nothing.
`--record DIR` then writes the method runs' learning curves and provenance to DIR (with
`--record-runs`, each run's validation logits too: `make study-motion`), for the
results chapter to set beside another budget's (`evitvid.study.recorded`; `make study-long`),
or, for a reading of a tuning study (`lr_grid`, `make study-tune`: one per frame count), to
choose the frames per clip and each method's learning rate from: it prints the rates
`tuned_rates` reads from the reading.
"""
from __future__ import annotations

import argparse
import time


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", "--params", dest="profile", default="cpu",
                        help="parameter profile: a YAML path, or a name in --profiles (cpu, ek100)")
    parser.add_argument("--profiles", default="book/params",
                        help="the folder a profile name is looked up in (default: book/params)")
    parser.add_argument("--retrain-stale", action="store_true",
                        help="train again the finished runs that other code, CPU kernels or memory layout computed "
                             "(default: refuse them, naming what differs)")
    parser.add_argument("--parallel-runs", type=int, default=None,
                        help="runs trained at once, each on its share of the cores (default: the profile's)")
    parser.add_argument("--list", action="store_true", help="list the runs and whether each is finished; train nothing")
    parser.add_argument("--record", metavar="DIR", default=None,
                        help="after training, write the runs' learning curves and where they come from to DIR "
                             "(book/recorded/NAME: what a profile's longer_budget or tuning names)")
    parser.add_argument("--record-runs", action="store_true",
                        help="with --record: also keep each run's validation logits and params, results and metrics "
                             "files in DIR/runs/ (per-segment statistics from the record)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .. import study
    params = study.load_profile(args.profile, profiles=args.profiles, parallel_runs=args.parallel_runs)
    specs = study.study_runs(params)
    if args.list:
        for spec in specs:
            needs = f" (after {', '.join(spec.needs)})" if spec.needs else ""
            print(f"{'done' if spec.complete else 'todo'}  {spec.name}  {spec.label}{needs}")
        return 0
    started = time.perf_counter()
    study.train_study(params, stale="retrain" if args.retrain_stale else "refuse")
    print(f"study: {len(specs)} runs finished under {params.runs_root} "
          f"({(time.perf_counter() - started) / 60:.1f} min)")
    if args.record:
        recorded = study.record_study(params, args.record, Path(args.profile).stem,
                                      commit=study.checkout_commit(Path.cwd()), keep_runs=args.record_runs)
        print(f"study: {len(recorded.curves)} epochs of {sum(map(len, recorded.about['runs'].values()))} runs "
              f"recorded in {recorded.path}")
        if params.lr_grid:
            rates = ", ".join(f"{k}: {v:g}" for k, v in study.tuned_rates(recorded).items())
            print(f"study: the best rate of each method on the tuning split at {params.num_frames} frames: lr: "
                  f"{{{rates}}} (an inflation ablation takes its main inflated method's; with every frame count "
                  f"recorded, study.read_tuning(folder) reads the study: tuned_frames, then tuned_rates)")
    return 0
