"""The package's layering as CONTRIBUTING.md declares it: a module imports only from its own
layer or the layers listed before it (lazy imports inside functions included). The layers
are read from CONTRIBUTING.md's Layout table, so the document and the code cannot drift apart.
Modules the table does not place (`atomic`, `allocator`, `workers`) are utilities any layer may
import; they import no layer themselves. The package's front door (`evitvid/__init__.py`,
`__main__.py`) may import anything."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "evitvid"


def _layers() -> list[tuple[str, list[str]]]:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    table = text[text.index("| layer | where | what |"):].split("\n\n", 1)[0].splitlines()[2:]
    return [(row.split("|")[1].strip(), re.findall(r"`evitvid/([^`]+)`", row.split("|")[2])) for row in table]


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer_of(module: str, layers) -> int | None:
    rel = module.removeprefix("evitvid").lstrip(".").replace(".", "/")
    for i, (_, places) in enumerate(layers):
        for place in places:
            stem = place.removesuffix("/").removesuffix(".py")
            if rel == stem or rel.startswith(stem + "/"):
                return i
    return None


def _imports(path: Path) -> set[str]:
    """The evitvid modules `path` imports, anywhere in it, resolved to absolute names."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "evitvid"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == "evitvid":
                # `from . import x` names submodules: each is an import of its own
                out |= {f"{name}.{a.name}" for a in node.names} if not node.module else {name}
    return out


def test_the_layout_table_places_every_package():
    layers = _layers()
    assert [name for name, _ in layers] == ["models", "data", "running", "tools", "study", "commands"]
    for sub in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        assert _layer_of(f"evitvid.{sub.name}", layers) is not None, f"CONTRIBUTING.md's Layout misses {sub.name}/"


def test_no_import_runs_upward():
    layers = _layers()
    upward = []
    front = {PACKAGE / "__init__.py", PACKAGE / "__main__.py"}
    for path in sorted(set(PACKAGE.rglob("*.py")) - front):
        own = _layer_of(_module(path), layers)
        for imported in _imports(path):
            theirs = _layer_of(imported, layers)
            if theirs is None:
                continue  # a utility (atomic, allocator, workers)
            if own is None or theirs > own:
                upward.append(f"{path.relative_to(ROOT)} ({'utility' if own is None else layers[own][0]}) "
                              f"imports {imported} ({layers[theirs][0]})")
    assert not upward, "\n".join(upward)
