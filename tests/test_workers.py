"""evitvid.workers: pool workers die with the process that started them (issue item 11)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import kill_and_expect_workers_gone, reaped, wait_until

import evitvid
from evitvid import workers

REPO = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")

# A parent with a pool of two workers that sleep: each worker writes its pid and its
# parent-death signal (PR_GET_PDEATHSIG: 9 with prctl, 0 without) to FOLDER/<pid>.
PARENT = textwrap.dedent("""
    import ctypes, multiprocessing, os, sys, time
    from pathlib import Path

    from evitvid import workers

    def record(folder):
        sig = ctypes.c_int(-1)
        ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
        Path(folder, f"{os.getpid()}.tmp").write_text(str(sig.value))
        os.replace(Path(folder, f"{os.getpid()}.tmp"), Path(folder, str(os.getpid())))

    if __name__ == "__main__":
        method, folder, mechanism = sys.argv[1:]
        if mechanism == "watchdog":  # as where prctl is unavailable (fork: the workers inherit this)
            workers._set_pdeathsig = lambda sig: False
        pool = workers.process_pool(2, mp_context=multiprocessing.get_context(method), initializer=record,
                                    initargs=(folder,))
        futures = [pool.submit(time.sleep, 600) for _ in range(2)]
        time.sleep(600)
""")


def _start_parent(tmp_path: Path, method: str, mechanism: str) -> tuple[subprocess.Popen, Path]:
    script, folder = tmp_path / "parent.py", tmp_path / "pids"
    script.write_text(PARENT)
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), method, str(folder), mechanism], cwd=REPO,
                            stderr=subprocess.PIPE)
    return proc, folder


def _worker_pids(folder: Path) -> dict[int, int]:
    """pid -> parent-death signal, for each worker that has run its initializer."""
    return {int(p.name): int(p.read_text()) for p in folder.iterdir() if p.name.isdigit()}


@linux_only
@pytest.mark.parametrize("method, mechanism", [("fork", "prctl"), ("spawn", "prctl"), ("fork", "watchdog")])
def test_pool_workers_die_when_their_parent_is_killed(tmp_path, method, mechanism):
    parent, folder = _start_parent(tmp_path, method, mechanism)
    pids: dict[int, int] = {}
    with reaped(parent, pids):
        def started() -> bool:
            pids.update(_worker_pids(folder))
            return len(pids) == 2 or parent.poll() is not None

        assert wait_until(started, timeout=60) and parent.poll() is None, parent.stderr.read().decode()[-2000:]
        assert set(pids.values()) == {signal.SIGKILL if mechanism == "prctl" else 0}
        kill_and_expect_workers_gone(parent, pids)


@linux_only
def test_a_parent_that_died_before_prctl_is_noticed():
    # The recorded parent is not this process's parent (as when it died before the call): exit at once.
    code = "from evitvid.workers import die_with_parent; die_with_parent({}); print('survived')"
    orphan = subprocess.run([sys.executable, "-c", code.format(os.getpid() + 10**7)], capture_output=True, text=True)
    assert orphan.returncode == 1 and "survived" not in orphan.stdout
    # The right parent: the process goes on, with SIGKILL as its parent-death signal.
    child = subprocess.run([sys.executable, "-c", code.format(os.getpid())], capture_output=True, text=True)
    assert child.returncode == 0 and child.stdout.strip() == "survived", child.stderr


def test_the_watchdog_is_used_where_prctl_is_not(monkeypatch):
    started = []
    monkeypatch.setattr(workers, "_set_pdeathsig", lambda sig: False)
    monkeypatch.setattr(workers, "_watch_parent", lambda pid, interval=0.5: started.append(pid))
    assert workers.die_with_parent() == "watchdog" and started == [os.getppid()]


def test_every_process_pool_in_evitvid_goes_through_evitvid_workers():
    """Worker processes are started by `workers.process_pool` only: anything else would not die with its parent."""
    package = Path(evitvid.__file__).parent
    starts = re.compile(r"\b(ProcessPoolExecutor|Pool|Process|Popen|start_processes|(mp|multiprocessing)\.spawn)\(")
    offenders = [f"{path.relative_to(package)}:{n}: {line.strip()}"
                 for path in sorted(package.rglob("*.py")) if path.name != "workers.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if starts.search(line)]
    assert not offenders, offenders
