"""The Performance chapter's step: `python -m evitvid bench` with its results in a run folder."""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from .. import bench
from ..runs import Run, RunMismatchError, open_run
from .params import StudyParams

__all__ = ["benchmark_run"]

_log = logging.getLogger(__name__)


def benchmark_run(name: str, params: StudyParams) -> Run:
    """`python -m evitvid bench` as a study step: its results in the run folder `name` under the
    profile's runs root, with the profile's bench settings (`bench_preset`, `bench_threads`,
    `bench_layout`, `bench_compile`, `bench_rerun`) at its clips' shape and batch.

    A finished run with the same parameters, the preset's whole definition included, is
    returned as it is (timings describe the machine and code they were taken on:
    `bench_rerun` measures again). A run measured with other parameters, or under an older
    definition of the preset, is measured again in the same folder: a bench trains nothing, so
    nothing is lost. `bench_compile` adds the torch.compile section to a preset without one.
    """
    preset, layout, torch_compile = params.bench_preset, params.bench_layout, params.bench_compile
    cfg = bench.bench_config(preset, study_shape=(3, params.num_frames, params.crop_size, params.crop_size),
                             study_batch=params.batch_size, threads=params.bench_threads or None, layout=layout,
                             compile=torch_compile)
    recorded = dict(preset=preset, threads=cfg.threads, layout=layout, torch_compile=torch_compile,
                    isolate=cfg.isolate, config=asdict(cfg))
    root = Path(params.runs_root)
    try:
        run = open_run(root, name, recorded, fresh=params.bench_rerun)
    except RunMismatchError:  # other parameters, or the preset defined otherwise then
        run = open_run(root, name, recorded, fresh=True)
    if run.complete:
        return run
    run.write_results(bench.benchmark(cfg, log=lambda line: _log.info("bench: %s", line)))
    return run
