"""Many runs at once: `RunSpec` (one run to train) and `train_runs` (a list of them, in parallel).

A study is a few dozen runs of two kinds: the image pretraining (`pretrain_images`) and
video runs (`train_video`), some of which start from the pretraining's checkpoint and so
`need` it. `train_runs` trains the unfinished runs of a list `parallel` at a time, each in a
worker process on `cores // parallel` threads. A run starts once every run it needs is
finished; among the runs that may start, list order decides. A list that puts the
pretraining first and the runs that do not need it next keeps every worker busy while the
pretraining trains (`study_runs` builds the study's list that way).

Video runs also wait for their data: `prepare`, when given (the study's `prepare_data`:
generating the embedded dataset and decoding its frame caches), runs in this process once,
before the first video run starts, on the cores the runs already started leave. The image
pretraining reads no video, so it trains beside that work instead of after it.

Why single-threaded workers rather than one run on every core: at the study's shapes a
training step is a few hundred small operators that two threads share badly, so two runs of
one thread each, side by side, finish sooner than the same two one after the other on two
threads (the results chapter reads how many ran at once from the runs' clocks).

A run's result depends on its parameters and its thread count, never on which worker ran it,
when or beside what: every run seeds itself and draws its data from (seed, epoch, index), and
the thread count is fixed by `parallel` and the cores alone (a last run left alone on the
machine does not take the idle core, which would change its rounding). A run whose arguments
name an `environment` (variables set before torch starts, e.g. `ONEDNN_MAX_CPU_ISA`) trains
in a worker started with them.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..allocator import tune_malloc
from ..runs import Run
from ..workers import process_pool
from .data import DataPaths
from .training import finished_here, pretrain_images, train_video

__all__ = ["RunSpec", "KINDS", "train_runs", "available_cores", "threads_per_run"]

KINDS = ("video", "pretraining")


@dataclass(frozen=True)
class RunSpec:
    """One run of a list `train_runs` trains: its folder's name, the training function's
    arguments (`train_video`'s, data as its record, for kind "video"; `pretrain_images`' for
    "pretraining"), a label for people, and the names of the runs it `needs` finished first."""
    name: str
    kwargs: dict = field(hash=False)
    label: str = ""
    kind: str = "video"
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"RunSpec {self.name}: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def root(self) -> Path:
        return Path(self.kwargs["runs_root"])

    @property
    def environment(self) -> dict:
        """Variables this run needs set before torch starts (empty for most runs)."""
        return dict(self.kwargs.get("environment") or {})

    @property
    def complete(self) -> bool:
        """Finished, and computed as this code computes it now (`training.finished_here`)."""
        return finished_here(self.root / self.name, self.kwargs.get("memory_format", "auto"))


def _finished(root: Path, name: str) -> bool:
    return finished_here(root / name)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_run(parallel: int, cores: Optional[int] = None) -> int:
    """The threads each of `parallel` runs trains on: the cores shared out, at least one."""
    return max(1, (cores or available_cores()) // max(1, parallel))


def _start_worker(variables: dict) -> None:
    """A worker's initializer: its environment (before the first convolution reads it) and the
    allocator settings every evitvid process starts with."""
    os.environ.update(variables)
    tune_malloc()


def _train(spec: RunSpec, threads: Optional[int], progress: Optional[bool], stale: str = "refuse") -> str:
    """`train_runs`' unit of work, in this process or a worker: returns the run folder."""
    kwargs = dict(spec.kwargs)
    if spec.kind == "pretraining":
        return str(pretrain_images(spec.name, threads=threads, progress=progress, stale=stale, **kwargs).dir)
    kwargs["data"] = DataPaths.from_record(kwargs["data"], kwargs.get("data_root"))
    return str(train_video(spec.name, threads=threads, progress=progress, stale=stale, **kwargs).dir)


def train_runs(specs: Sequence[RunSpec], *, parallel: int = 1, log: Callable[[str], None] = print,
               prepare: Optional[Callable[[int], object]] = None, stale: str = "refuse") -> dict[str, Run]:
    """Train every run of `specs` that is not finished, `parallel` at a time; returns {name: Run}.

    With `parallel` 1 and no run naming an environment, runs train one after the other in this
    process, on every core. Otherwise each trains in a worker process (`evitvid.workers`: the
    workers die with this process) on `threads_per_run(parallel)` threads, printing a line per
    epoch. A run whose `needs` are neither in `specs` nor finished is refused before anything
    trains. When a run fails, no other starts; the ones in progress finish (every epoch is
    checkpointed, so nothing is lost either way), then the error is raised naming the run.

    `prepare(cores)` makes what the video runs read (see the module docstring); it is called
    only when a video run is to train, and a failure in it is handled as a run's. `stale`: what a
    finished run that other code computed gets (`training.train_video`: "refuse" or "retrain").
    """
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        missing = [n for n in spec.needs if n not in by_name and not _finished(spec.root, n)]
        if missing:
            raise ValueError(f"run {spec.name} ({spec.label}) needs {', '.join(missing)}, which is neither finished "
                             f"nor in the list to train")
    todo = [spec for spec in specs if not spec.complete]
    if todo:
        threads = threads_per_run(parallel)
        workers = max(1, min(parallel, len(todo)))
        log(f"training {len(todo)} of {len(specs)} runs, {workers} at a time on {threads} thread(s) each")
        if prepare is not None and not any(spec.kind == "video" for spec in todo):
            prepare = None
        if parallel == 1 and not any(spec.environment for spec in todo):
            if prepare is not None:
                _prepare(prepare, available_cores(), log)
            _train_here(todo, threads, log, stale)
        else:
            _train_in_workers(todo, parallel, threads, log, prepare, stale)
    return {spec.name: Run(spec.root / spec.name) for spec in specs}


def _ready(spec: RunSpec, done: set[str]) -> bool:
    return all(n in done or _finished(spec.root, n) for n in spec.needs)


def _prepare(prepare: Callable[[int], object], cores: int, log: Callable[[str], None]) -> None:
    started = time.perf_counter()
    log(f"preparing the videos' data on {cores} core(s)")
    prepare(cores)
    log(f"videos' data ready ({(time.perf_counter() - started) / 60:.1f} min)")


def _next_ready(waiting: list[RunSpec], done: set[str], running: int = 0, prepared: bool = True) -> Optional[RunSpec]:
    """The first waiting run whose needs are finished (and, before the data is `prepared`, that
    reads no video); None while runs in progress or the preparation may still allow one; an
    error when nothing runs and nothing can start (runs that need each other)."""
    spec = next((s for s in waiting if _ready(s, done) and (prepared or s.kind != "video")), None)
    if spec is None and not running and prepared:
        raise ValueError(f"runs that can never start (each needs an unfinished one): "
                         f"{', '.join(s.name for s in waiting)}")
    return spec


def _train_here(todo: list[RunSpec], threads: int, log: Callable[[str], None], stale: str = "refuse") -> None:
    started, done, waiting = time.perf_counter(), set(), list(todo)
    while waiting:  # list order, each run after the ones it needs
        spec = _next_ready(waiting, done)
        waiting.remove(spec)
        run = Run(Path(_train(spec, threads, None, stale)))
        done.add(spec.name)
        log(finished_line(len(done), len(todo), spec, run, started))


def _train_in_workers(todo: list[RunSpec], parallel: int, threads: int, log: Callable[[str], None],
                      prepare: Optional[Callable[[int], object]] = None, stale: str = "refuse") -> None:
    context = multiprocessing.get_context("spawn")
    pools: dict[tuple, object] = {}  # one pool per environment, started when first needed
    running: dict[Future, RunSpec] = {}
    started, done, waiting, failures = time.perf_counter(), set(), list(todo), []
    try:
        while waiting or running:
            while waiting and not failures and len(running) < parallel:
                spec = _next_ready(waiting, done, len(running), prepared=prepare is None)
                if spec is None:
                    break
                waiting.remove(spec)
                key = tuple(sorted(spec.environment.items()))
                if key not in pools:
                    pools[key] = process_pool(parallel, mp_context=context, initializer=_start_worker,
                                              initargs=(spec.environment,))
                running[pools[key].submit(_train, spec, threads, False, stale)] = spec
                log(f"started {spec.label or spec.name}")
            if prepare is not None and not failures:  # in this process, beside the runs just started
                try:
                    _prepare(prepare, max(1, available_cores() - threads * len(running)), log)
                except Exception as exc:  # reported once the runs in progress are done
                    failures.append(("preparing the videos' data", exc))
                    log(f"preparing the videos' data failed: {exc}")
                prepare = None
                continue
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                spec = running.pop(future)
                try:
                    run = Run(Path(future.result()))
                except Exception as exc:  # reported once the runs in progress are done
                    failures.append((f"run {spec.name} ({spec.label})", exc))
                    log(f"run {spec.name} ({spec.label}) failed: {exc}")
                    continue
                done.add(spec.name)
                log(finished_line(len(done), len(todo), spec, run, started))
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        what, exc = failures[0]
        raise RuntimeError(f"{what}: {exc}") from exc


def finished_line(i: int, n: int, spec: RunSpec, run: Run, started: float) -> str:
    """`[i/n] label: its accuracy (its training time; time since the list started)`."""
    val = run.results["val"]
    score = (f"held-out top-1 {100 * val['top1']:.1f}%" if spec.kind == "pretraining" else
             f"verb top-1 {100 * val['verb_top1']:.1f}%, noun top-1 {100 * val['noun_top1']:.1f}%")
    return (f"[{i}/{n}] {spec.label or spec.name}: {score} ({run.results['train_seconds'] / 60:.1f} min; "
            f"{(time.perf_counter() - started) / 60:.1f} min elapsed)")
