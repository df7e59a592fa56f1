"""The explorer in a real browser: Voila serves `book/05_explorer.ipynb` on 127.0.0.1 and
headless Chromium, driven by Playwright, opens it, changes the segment and a filter, and
checks that the frames and the prediction table follow, with no console error.

Needs Debian's `chromium` (`make test` installs it as root or with sudo; the test skips
without it) and the Python packages `voila` and `playwright`. Playwright drives the system
browser through its bundled driver: its own browser download is never used. Voila serves
the page as `make explore` does, with evitvid's template (Voila's lab template without the
Font Awesome stylesheets it links from a CDN), and the test fails on any request the page
makes outside 127.0.0.1 (each is aborted, so the test runs offline) and on any console error.

By default the notebook runs on the tiny study (`test_explorer.tiny_study`). Against the
runs of `make study`, and to write the book's screenshot:

    EXPLORER_PROFILE=cpu EXPLORER_SCREENSHOT=book/images/explorer.png \\
        .venv/bin/python -m pytest -q tests/test_explorer_browser.py
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from _browser import browser_page, needs_chromium
from evitvid.explorer import VOILA_JUPYTER_PATH, VOILA_TEMPLATE
from test_explorer import tiny_study

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("voila", reason="voila is not installed (pip install voila)")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "book" / "05_explorer.ipynb"
PAGE_TIMEOUT = 300_000  # ms: Voila runs every cell (torch import, reading the runs) before showing anything
# a transparent 1 x 1 PNG: the chapter's screenshot, when the book has none yet
_BLANK_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6k"
                              "gAAAABJRU5ErkJggg==")

pytestmark = [
    pytest.mark.slow,  # about 50 s with the tiny study's training, 25 s without
    needs_chromium,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    from evitvid.workers import die_with_parent
    die_with_parent()  # a killed pytest (no teardown) takes the server with it


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> str:
    return os.environ.get("EXPLORER_PROFILE") or str(tiny_study(tmp_path_factory))


@pytest.fixture(scope="module")
def served(profile, tmp_path_factory):
    """Voila on 127.0.0.1 serving the chapter prepared with `profile` (papermill's prepare-only:
    the parameters cell injected, nothing run). Yields (url, log path)."""
    import papermill
    import psutil
    folder = tmp_path_factory.mktemp("explorer-page")
    notebook = folder / NOTEBOOK.name
    papermill.execute_notebook(str(NOTEBOOK), str(notebook), parameters={"profile": profile}, prepare_only=True,
                               progress_bar=False)
    images = ROOT / "book" / "images"  # the chapter's screenshot, linked relative to the notebook
    shutil.copytree(images, folder / "images") if images.is_dir() else (folder / "images").mkdir()
    if not (folder / "images" / "explorer.png").exists():
        (folder / "images" / "explorer.png").write_bytes(_BLANK_PNG)
    port = _free_port()
    log_path = folder / "voila.log"
    # as `make explore` serves it (its template, found through JUPYTER_PATH)
    cmd = [sys.executable, "-m", "voila", str(notebook), f"--template={VOILA_TEMPLATE}", "--no-browser",
           f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--show_tracebacks=True"]
    env = dict(os.environ, JUPYTER_PATH=os.pathsep.join(filter(None, [str(VOILA_JUPYTER_PATH),
                                                                      os.environ.get("JUPYTER_PATH")])))
    with open(log_path, "wb") as log:
        # its own process group; Voila shuts its kernels down on SIGTERM
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True,
                                preexec_fn=_die_with_parent, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:  # a static file answers once the server listens, without starting a kernel
            if proc.poll() is not None:
                pytest.fail(f"voila exited with status {proc.returncode}:\n{log_path.read_text()}")
            try:
                urllib.request.urlopen(url + "voila/static/voila.js", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("voila did not answer within 120 s:\n" + log_path.read_text())
                time.sleep(0.2)
        yield url, log_path
    finally:
        try:
            children = psutil.Process(proc.pid).children(recursive=True)  # the kernels it started
        except psutil.NoSuchProcess:
            children = []
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        for child in psutil.wait_procs(children, timeout=10)[1]:
            child.kill()
        print("--- voila log (tail) ---\n" + log_path.read_text()[-3000:])


def _image_digest(page) -> str:
    """SHA-256 of the bytes behind the frames widget's <img> (a blob: URL), read in the page."""
    return page.evaluate("""async () => {
        const data = await (await fetch(document.querySelector('img.evitvid-image').src)).arrayBuffer();
        const digest = await crypto.subtle.digest('SHA-256', data);
        return Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, '0')).join('');
    }""")


def _segment_shown(page, nid: str, previous_src: str) -> None:
    """Wait until the status, the picture and the top-5 table all show segment `nid` (the
    kernel sends each widget's update separately)."""
    page.wait_for_function(
        """([nid, src]) => {
            const status = document.querySelector('.evitvid-status');
            const img = document.querySelector('img.evitvid-image');
            const table = document.querySelector('.evitvid-top5 table[data-segment]');
            return status && status.textContent.includes('ready') && status.textContent.includes(nid)
                && img && img.src !== src && img.complete && img.naturalWidth > 0
                && table && table.dataset.segment === nid;
        }""", arg=[nid, previous_src], timeout=60_000)


def _check_segment(page, nid: str, predictions, frames) -> None:
    """The page shows `nid`'s frames, byte for byte, and every chosen method's top-5 for it."""
    assert _image_digest(page) == hashlib.sha256(frames.strip(nid)).hexdigest(), f"{nid}: not its frames"
    tables = page.locator(".evitvid-top5 table[data-method]")
    row = predictions.row[nid]
    assert tables.count() >= 1
    for i in range(tables.count()):
        table = tables.nth(i)
        assert table.get_attribute("data-segment") == nid
        seed = int(re.search(r"seed (\d+)", table.locator("caption").inner_text()).group(1))
        top = predictions.top(row, (table.get_attribute("data-method"), seed))
        cells = table.locator("tr").nth(1).locator("td")   # rank 1: verb, noun, action
        for column, head in enumerate(("verb", "noun", "action"), start=1):
            assert cells.nth(column).inner_text().startswith(top[head][0][0]), (nid, head)


def test_explorer_in_a_headless_browser(served, profile, tmp_path):
    from evitvid.explorer import SegmentFrames, study_predictions
    from evitvid.study import load_profile, study_data
    params = load_profile(profile)
    data = study_data(params)
    predictions = study_predictions(params, data)   # what the page should show, computed here
    frames = SegmentFrames(data, predictions.segments)
    url, log_path = served
    # 1000 px: the screenshot shrinks little in the book's text column
    with browser_page(sync_api, (1000, 1000)) as (page, console, errors, external):
        t0 = time.monotonic()
        page.goto(url, wait_until="domcontentloaded", timeout=PAGE_TIMEOUT)
        # a failing cell shows its traceback instead of the app (--show_tracebacks): stop at once then
        page.wait_for_function(
            "() => (document.querySelector('.evitvid-status') || {textContent: ''}).textContent.includes('ready')"
            " || document.body.textContent.includes('Traceback (most recent call last)')"
            " || document.body.textContent.includes('There was an error when executing cell')",
            timeout=PAGE_TIMEOUT)
        assert page.locator(".evitvid-status").count() == 1, "the notebook failed in Voila:\n" + \
            "\n".join(page.locator(".jp-OutputArea-output").all_text_contents())[-3000:]
        select = page.locator(".evitvid-segment select")
        first = select.evaluate("s => s.options[s.selectedIndex].text").split(":")[0]
        _segment_shown(page, first, "")
        rendered = time.monotonic() - t0
        assert "Loading widget" not in page.inner_text("body")
        _check_segment(page, first, predictions, frames)

        # another segment: the last one listed
        labels = select.locator("option").all_inner_texts()
        assert len(labels) >= 2, labels
        target = labels[-1].split(":")[0]
        src = page.locator("img.evitvid-image").get_attribute("src")
        t1 = time.monotonic()
        select.select_option(label=labels[-1])
        _segment_shown(page, target, src)
        changed = time.monotonic() - t1
        _check_segment(page, target, predictions, frames)

        # a filter: the first segment's true verb; every listed segment has it, the table follows
        verb = predictions.verbs[predictions.verb_true[predictions.row[first]]]
        verb_select = page.locator(".evitvid-verb select")
        # (ipywidgets writes the spaces of option labels as no-break spaces)
        option = next(o for o in verb_select.locator("option").all_inner_texts()
                      if o.replace("\xa0", " ").startswith(verb + " ("))
        src = page.locator("img.evitvid-image").get_attribute("src")
        verb_select.select_option(label=option)
        shown = first if predictions.verb_true[predictions.row[target]] != predictions.verb_true[
            predictions.row[first]] else target
        if shown != target:
            _segment_shown(page, shown, src)
        page.wait_for_function(
            "n => document.querySelector('.evitvid-count').textContent.startsWith(n + ' of')",
            arg=str(int((predictions.verb_true == predictions.verb_true[predictions.row[first]]).sum())),
            timeout=60_000)
        listed = [o.replace("\xa0", " ") for o in select.locator("option").all_inner_texts()]
        assert listed and all(f": {verb} " in label for label in listed), listed
        _check_segment(page, shown, predictions, frames)
        assert page.locator(".evitvid-confusion table").count() >= 1 or \
            "in no reversal pair" in page.locator(".evitvid-confusion").inner_text()

        shot = Path(os.environ.get("EXPLORER_SCREENSHOT") or tmp_path / "explorer.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        app = page.locator(".evitvid-explorer")
        box = app.bounding_box()  # Voila scrolls a container, not the page: make room for the whole app
        page.set_viewport_size({"width": 1000, "height": int(box["y"] + box["height"]) + 40})
        app.screenshot(path=str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"page rendered in {rendered:.2f} s; segment change shown in {changed:.3f} s; screenshot: {shot}")
    print("\n".join(console))
    assert not errors, "console errors:\n" + "\n".join(errors)
    assert not external, "the page asked for URLs outside 127.0.0.1:\n" + "\n".join(external)
