"""The package's layering as CONTRIBUTING.md declares it: a module imports only from its own
layer or the layers listed before it (lazy imports inside functions included). The layers
are read from CONTRIBUTING.md's Layout table, so the document and the code cannot drift apart.
Modules the table does not place (`atomic`, `allocator`, `workers`) are utilities any layer may
import; they import no layer themselves. The package's front door (`evitvid/__init__.py`,
`__main__.py`) may import anything."""
from __future__ import annotations

import re
from pathlib import Path

from evitvid.provenance import package_imports

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
    """The evitvid names `path` imports, anywhere in it, resolved to absolute names."""
    return package_imports(path, _module(path))


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


def _module_of(name: str) -> str | None:
    """The package module an imported name lives in: the name itself when it is a module, else
    the module it is taken from (`from .x import y`); None outside the package's files."""
    while name:
        base = ROOT.joinpath(*name.split("."))
        if (base / "__init__.py").is_file() or base.with_suffix(".py").is_file():
            return name
        name = name.rpartition(".")[0]
    return None


def _graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, anywhere in it (lazy imports inside functions
    too: an import moved into a function to dodge a cycle is still part of it)."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        graph[module] = {m for name in _imports(path) if (m := _module_of(name)) and m != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back():
    """No cycles, inside a layer as between layers: data flows one way through the package. A
    package's `__init__.py` (its front door) may re-export its modules, so a module that imports
    its own package's front door is part of the cycle too."""
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_library_never_looks_for_the_repository():
    """Paths come from the caller, the command line or the profile: no module climbs from its
    own file to a checkout (`Path(__file__).parents[n]`), which only an editable install in a
    checkout would have (CONTRIBUTING.md, convention 13)."""
    climbing = [f"{path.relative_to(ROOT)}:{i}" for path in sorted(PACKAGE.rglob("*.py"))
                for i, line in enumerate(path.read_text().splitlines(), 1)
                if "__file__" in line and (".parent" in line or "parents[" in line) and "with_name" not in line]
    assert not climbing, "modules that find the repository from their own file: " + ", ".join(climbing)
