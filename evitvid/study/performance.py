"""The Performance chapter's step: `python -m evitvid bench` with its results in a run folder."""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from .. import bench
from ..runs import Run, RunMismatchError, open_run

__all__ = ["benchmark_run"]

_log = logging.getLogger(__name__)


def benchmark_run(name: str = "06_performance", *, preset: str = "light", threads: Optional[int] = None,
                  layout: str = "channels_last", torch_compile: bool = True, runs_root: Path | str,
                  rerun: bool = False) -> Run:
    """`python -m evitvid bench` as a study step: its results in the run folder `name`.

    A finished run with the same parameters, the preset's whole definition included, is
    returned as it is (timings describe the machine and code they were taken on: `rerun=True`
    measures again). A run measured with other parameters, or under an older definition of the
    preset, is measured again in the same folder: a bench trains nothing, so nothing is lost.
    `torch_compile` adds the torch.compile section to a preset without one.
    """
    cfg = bench.bench_config(preset, threads=threads or None, layout=layout, compile=torch_compile)
    params = dict(preset=preset, threads=cfg.threads, layout=layout, torch_compile=torch_compile,
                  isolate=cfg.isolate, config=asdict(cfg))
    root = Path(runs_root)
    try:
        run = open_run(root, name, params, fresh=rerun)
    except RunMismatchError:  # other parameters, or the preset defined otherwise then
        run = open_run(root, name, params, fresh=True)
    if run.complete:
        return run
    run.write_results(bench.benchmark(cfg, log=lambda line: _log.info("bench: %s", line)))
    return run
