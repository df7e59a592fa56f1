"""Worker processes that die with the process that started them.

A `ProcessPoolExecutor` worker outlives a parent killed with SIGKILL (or by the OOM killer):
nothing runs in the parent to shut the pool down, and the worker, blocked on a task or busy
with one, never notices. `extract --workers 2` left two orphans of about 330 MB each that
went on writing frames. Every pool in evitvid is therefore made by `process_pool`, whose
initializer calls `die_with_parent` in each worker before the caller's own initializer:

* on Linux, `prctl(PR_SET_PDEATHSIG, SIGKILL)`: the kernel kills the worker as soon as its
  parent exits, however it exits. The parent may already have died between the fork and the
  prctl call; the worker then has a new parent (init or a subreaper), so it compares
  `os.getppid()` with the parent's pid recorded before the fork and exits if they differ.
* elsewhere (or if prctl fails), a daemon thread polls `os.getppid()` every 0.5 s and exits
  the process when it changes (on macOS and other Unixes an orphan's parent becomes init or
  a subreaper; Windows keeps reporting the dead parent's pid, so there it never fires).

Caveat of PR_SET_PDEATHSIG: the "parent" is the thread that started the worker, not the whole
process. `ProcessPoolExecutor` starts its workers in `submit` (and `map`), in the calling
thread; the pools here are used by one thread, which waits for them and shuts them down
before returning, so it outlives its workers.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["die_with_parent", "process_pool"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_POLL_SECONDS = 0.5     # the fallback's polling period
_ORPHAN_EXIT_CODE = 1


def _exit_orphan() -> None:
    os._exit(_ORPHAN_EXIT_CODE)  # no cleanup: the work this process was doing is abandoned


def _set_pdeathsig(sig: int) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies; False when unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(sig), ctypes.c_ulong(0), ctypes.c_ulong(0),
                          ctypes.c_ulong(0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, interval: float = _POLL_SECONDS) -> threading.Thread:
    """Start a daemon thread that exits this process once its parent is no longer `parent_pid`."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        _exit_orphan()

    thread = threading.Thread(target=watch, name="evitvid-parent-watchdog", daemon=True)
    thread.start()
    return thread


def die_with_parent(parent_pid: int | None = None) -> str:
    """Make this process exit when its parent does; returns the mechanism, "prctl" or "watchdog".

    `parent_pid` is the parent's pid as the parent saw it before starting this process (for
    a pool: `os.getpid()` in the parent); when given and no longer this process's parent (the
    parent died before this call), the process exits at once. Default: the current parent.
    """
    if parent_pid is None:
        parent_pid = os.getppid()
    if _set_pdeathsig(signal.SIGKILL):
        mechanism = "prctl"
    else:
        _watch_parent(parent_pid)
        mechanism = "watchdog"
    if os.getppid() != parent_pid:  # after prctl: a parent that dies from now on is covered
        _exit_orphan()
    return mechanism


def _initialize(parent_pid: int | None, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def process_pool(max_workers: int, *, mp_context: multiprocessing.context.BaseContext | None = None,
                 initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A `ProcessPoolExecutor` whose workers die with this process (see the module doc).

    `initializer(*initargs)` runs in each worker after `die_with_parent`; with the spawn or
    forkserver start method it must be picklable (a module-level function)."""
    context = mp_context if mp_context is not None else multiprocessing.get_context()
    # A forkserver's workers are children of the server, not of this process: they die with
    # the server, which exits when this process does.
    parent = None if context.get_start_method() == "forkserver" else os.getpid()
    return ProcessPoolExecutor(max_workers, mp_context=context, initializer=_initialize,
                               initargs=(parent, initializer, tuple(initargs)))
