"""One call in a fresh Python process: how peak memory is measured (`memory.peak_memory`) and
how a large row runs isolated from the rows before it (`sections.Section.rows`).

The child is a new interpreter (`sys.executable -c`), not a fork: a fork would inherit this
process's heap, the state of glibc's allocator and its peak RSS. Arguments and result travel
as JSON; the result through a file, so that whatever the call prints does not matter. The
child tunes glibc's malloc as the bench's own process does (`evitvid.allocator.tune_malloc`,
first thing, before torch allocates), so that an isolated row and an in-process one differ
only in the heap the rows before left behind.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

_CHILD = """\
import importlib, json, sys
from evitvid.allocator import tune_malloc
tune_malloc()
from evitvid.workers import die_with_parent
die_with_parent(int(sys.argv[4]))  # a killed bench takes its measuring child with it
module, _, name = sys.argv[1].partition(":")
result = getattr(importlib.import_module(module), name)(*json.loads(sys.argv[2]))
with open(sys.argv[3], "w") as f:
    json.dump(result, f)
"""


class FreshProcessError(RuntimeError):
    """The call failed in its process; the message is the last line of its stderr (or its exit code)."""


def call_in_fresh_process(fn: Callable[..., Any], *args: Any, timeout: Optional[float] = None) -> Any:
    """`fn(*args)` in a new Python process: `fn` a module-level function, its arguments and
    result JSON-serialisable. Raises `FreshProcessError` when the call fails and
    `subprocess.TimeoutExpired` (the child killed) after `timeout` seconds."""
    with tempfile.TemporaryDirectory(prefix="evitvid-bench-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run([sys.executable, "-c", _CHILD, f"{fn.__module__}:{fn.__qualname__}", json.dumps(args),
                               str(out), str(os.getpid())], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            raise FreshProcessError(tail[0][:200])
        return json.loads(out.read_text())
