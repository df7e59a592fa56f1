"""The built book: `jb build book` works from the root-level _config.yml/_toc.yml (through
book/'s symlinks) without warnings, and every page loads in a real browser (headless
Chromium) with no missing image, no broken link, no console error and no request outside
127.0.0.1."""
from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from _browser import browser_page, needs_chromium

ROOT = Path(__file__).resolve().parents[1]


def test_book_config_is_linked_and_never_executes():
    for name in ("_config.yml", "_toc.yml"):
        link = ROOT / "book" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    # widget state saved in the notebooks would make the pages fetch the widget manager from a CDN
    assert config["sphinx"]["config"]["nb_ipywidgets_js"] == {}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    jb = Path(sys.executable).with_name("jb")
    if not jb.exists():
        jb = shutil.which("jb")
    assert jb, "jupyter-book is not installed"
    # Build a copy so the test never touches book/_build.
    tmp = tmp_path_factory.mktemp("book")
    shutil.copytree(ROOT / "book", tmp / "book", symlinks=False, ignore=shutil.ignore_patterns("_build"))
    # as `make book` builds it: nitpicky, every warning (a missing reference too) an error
    result = subprocess.run([str(jb), "build", str(tmp / "book"), "-n", "--warningiserror", "--keep-going"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp / "book" / "_build" / "html"


@pytest.mark.slow
def test_book_builds_without_warnings(built):
    assert (built / "intro.html").exists()


def _pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    return [f"{name}.html" for name in files]


@pytest.mark.slow
@needs_chromium
def test_every_page_loads_in_a_browser_without_errors(built):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    problems = []
    try:
        with browser_page(sync_api, (1200, 900)) as (page, console, errors, external):
            for name in _pages():
                errors.clear()
                external.clear()
                response = page.goto(base + name, wait_until="load")
                if response is None or response.status != 200:
                    problems.append(f"{name}: HTTP {response and response.status}")
                    continue
                broken = page.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                                       ".map(i => i.getAttribute('src'))")
                problems += [f"{name}: image {src} did not load" for src in broken]
                hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
                for href in sorted(set(hrefs)):
                    target = urllib.parse.urldefrag(href)[0]
                    if not target.startswith(base):
                        continue  # outside the book: not reachable offline, and not ours to break
                    try:
                        urllib.request.urlopen(target, timeout=10).close()
                    except OSError as exc:
                        problems.append(f"{name}: broken link {href} ({exc})")
                problems += [f"{name}: console {e}" for e in errors]
                problems += [f"{name}: asked for {url} (outside 127.0.0.1)" for url in external]
    finally:
        server.shutdown()
    assert not problems, "\n".join(problems)
