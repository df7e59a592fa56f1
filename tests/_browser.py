"""Helpers shared by the browser tests (not a test module): Debian's Chromium driven by
Playwright, offline by construction, collecting console errors.

Playwright's own browser download fails offline, so the system browser is launched
(`executable_path`). Every request outside 127.0.0.1 is aborted and recorded (a test that
wants a page to ask for nothing on the internet asserts that record empty); a console error
counts unless it comes from such a URL (where the page links a CDN it cannot reach), judged
by URL, never by message.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from typing import Iterator

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
NOT_LOCAL = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no chromium: install Debian's chromium "
                                                                        "(make test does, as root or with sudo)")


@contextlib.contextmanager
def browser_page(sync_api, viewport: tuple[int, int] = (1000, 1000)) -> Iterator[tuple[object, list, list, list]]:
    """(page, console lines, console errors, URLs requested outside 127.0.0.1) in a fresh
    headless Chromium, offline."""
    console, errors, external = [], [], []

    def abort(route) -> None:
        external.append(route.request.url)
        route.abort()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.route(NOT_LOCAL, abort)
            page = context.new_page()

            def on_console(msg):
                where = msg.location.get("url", "")
                console.append(f"[{msg.type}] {msg.text} @ {where}")
                if msg.type == "error" and not NOT_LOCAL.search(where):
                    errors.append(console[-1])

            page.on("console", on_console)
            page.on("pageerror", lambda exc: errors.append(f"[pageerror] {exc}"))
            yield page, console, errors, external
        finally:
            browser.close()
