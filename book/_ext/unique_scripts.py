"""A Sphinx extension for the book: each page's scripts once.

sphinx-thebe (which Jupyter Book 1.x always loads) registers its configuration script on
every `env-before-read-docs`, and that event fires more than once in a `jb build`, so every
page carried `const THEBE_JS_URL = ...` twice and the browser stopped at the second
("Identifier 'THEBE_JS_URL' has already been declared", `tests/test_book.py`). Here the
page's script list drops repeats (same file or none, same body and attributes) before it is
written.
"""
from __future__ import annotations


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # the repeat is registered once with filename None and once with "": both mean "inline"
        key = (getattr(script, "filename", None) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
