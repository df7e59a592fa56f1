"""The committed notebooks' outputs, as the book renders them, show results and nothing of the
machinery: no stderr, no warning or log line, no error, no NaN in a table.

The book renders the outputs `make study` saved in book/*.ipynb (`execute_notebooks: 'off'`),
so what a library call printed on the way (a log record, a warning, a CUDA probe) ends up on
the page. Its cause is fixed where it is printed, never by filtering in a notebook; a NaN in a
table is a value the table should say in words ("not measured", "-") or leave out.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))

WARNING = re.compile(r"Warning|WARNING")
# The line prefixes of log records: logging.basicConfig's "LEVEL:name:", glog's (torch, c10)
# "W1206 08:25:58.770000 28073 file.py:183]", "[W1206 ...]" and "[W file.cpp:12]", timestamped
# formats ("2026-12-06 08:25:58,770 - name - INFO - ..." and the like) and "[INFO]"-style ones.
LOG_PREFIX = re.compile(
    r"^\s*(?:"
    r"(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL):[\w.<>-]*:"
    r"|\[?[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+[^\]\s]+:\d+\]"
    r"|\[[IWEF] [^\]\s]+:\d+\]"
    r"|\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?\]?.{0,80}?\b(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b"
    r"|\[(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\]"
    r")",
    re.MULTILINE)
HTML_NAN = re.compile(r"<t[dh]\b[^>]*>\s*nan\s*</t[dh]>", re.IGNORECASE)
TEXT_NAN = re.compile(r"(?<!\S)(?:NaN|nan)(?!\S)")
# what a reader sees of an output (images and widget state are not text)
TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _texts(output) -> list[tuple[str, str]]:
    """(mime type or stream name, text) of one output, glued values included."""
    if output.output_type == "stream":
        return [(output.name, _text(output.text))]
    if output.output_type == "error":
        return [("error", f"{output.ename}: {output.evalue}")]
    return [(mime, _text(value)) for mime, value in output.get("data", {}).items()
            if mime in TEXT_TYPES or mime.startswith("application/papermill.record/text/")]


def _first_line(text: str, match: re.Match) -> str:
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start:end if end >= 0 else len(text)].strip()[:160]


def problems(path: Path) -> list[str]:
    """Every output of `path` the book should not show, one line each."""
    found = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        where = f"{path.name} cell {index} ({cell.get('id', '?')})"
        for output in cell.get("outputs", []):
            html_table = "<table" in _text(output.get("data", {}).get("text/html", ""))
            for kind, text in _texts(output):
                if kind == "stderr":
                    found.append(f"{where}: stderr: {(text.strip().splitlines() or ['(blank)'])[0][:160]}")
                    continue
                if kind == "error":
                    found.append(f"{where}: an error: {text[:160]}")
                    continue
                shown = html.unescape(re.sub(r"<[^>]+>", " ", text)) if kind == "text/html" else text
                for pattern, what in ((WARNING, "a warning"), (LOG_PREFIX, "a log record")):
                    match = pattern.search(shown)
                    if match:
                        found.append(f"{where}: {what} in {kind}: {_first_line(shown, match)!r}")
                if kind == "text/html" and "<table" in text and HTML_NAN.search(text):
                    found.append(f"{where}: NaN in an HTML table ({len(HTML_NAN.findall(text))} cells)")
                elif kind == "text/plain" and not html_table and TEXT_NAN.search(text):  # one line per table
                    found.append(f"{where}: NaN in a text table ({len(TEXT_NAN.findall(text))} cells): "
                                 f"{_first_line(text, TEXT_NAN.search(text))!r}")
    return found


def test_the_book_has_notebooks():
    assert len(NOTEBOOKS) >= 7, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_show_no_stderr_warnings_log_lines_or_nan(path):
    found = problems(path)
    assert not found, f"{len(found)} outputs the book should not show:\n" + "\n".join(found)


def _notebook(*outputs) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("x", outputs=list(outputs)))
    return nb


@pytest.mark.parametrize("output, expected", [
    (nbformat.v4.new_output("stream", name="stderr", text="loading\n"), "stderr: loading"),
    (nbformat.v4.new_output("stream", name="stdout", text="x.py:3: UserWarning: careful\n"), "a warning"),
    (nbformat.v4.new_output("stream", name="stdout",
                            text="W1206 08:25:58.770000 28073 torch/utils/cpp_extension.py:183] No CUDA\n"),
     "a log record"),
    (nbformat.v4.new_output("stream", name="stdout", text="INFO:evitvid.study:trained\n"), "a log record"),
    (nbformat.v4.new_output("stream", name="stdout", text="2026-12-06 08:25:58,770 - evitvid - INFO - x\n"),
     "a log record"),
    (nbformat.v4.new_output("execute_result", data={
        "text/plain": "   a    b\n0  1  NaN",
        "text/html": "<table><tr><th>0</th><td>1</td><td>NaN</td></tr></table>"}), "NaN in an HTML table (1 cells)"),
    (nbformat.v4.new_output("execute_result", data={"text/plain": "   a    b\n0  1  nan"}), "NaN in a text table"),
    (nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[]), "an error: ValueError: bad"),
])
def test_each_kind_of_problem_is_found(tmp_path, output, expected):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_notebook(output), path)
    found = problems(path)
    assert len(found) >= 1 and expected in found[0], found


def test_results_are_not_problems(tmp_path):
    """Numbers, words that merely contain 'nan' or 'info', a figure and a glued value pass."""
    path = tmp_path / "nb.ipynb"
    nbformat.write(_notebook(
        nbformat.v4.new_output("stream", name="stdout", text="evitvid bench, preset light, 2 threads\n"
                                                             "timings unreliable: 40% busy; finance, nano, info\n"),
        nbformat.v4.new_output("execute_result", data={
            "text/plain": "   verb top-1 (%)  remnant\n0            41.5  not measured",
            "text/html": "<table><tr><th>nano</th><td>41.5</td><td>-</td></tr></table>"}),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
        nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": "'41.5 %'"},
                               metadata={"scrapbook": {"name": "verb_top1"}}),
    ), path)
    assert problems(path) == []
