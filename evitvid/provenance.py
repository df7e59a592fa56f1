"""What made a run, beside its parameters: the code, the CPU kernels and the memory layout.

Two runs with the same parameters compute other numbers when the code that trains them
changed, when evitvid's C++ CPU kernels ran in one and PyTorch's kernels in the other (they
round differently: `evitvid.models.kernels`), or when the activations were laid out otherwise
(the layout decides whether those kernels run). A run records all three (`made_by`) with its
parameters, so that a finished run is reused only by the same computation (`evitvid.runs`).

The code is named by a digest of what a run executes: every module of the package that the
entry point imports, directly or through others (read from the files, function-level imports
included), as syntax trees without docstrings, and the C++ kernels' source. A change to the
book's text or figures, a docstring or a comment leaves it alone; a change to a model, the data
pipeline or the training loop does not.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.resources
from importlib import metadata
from pathlib import Path

import torch

from .models import kernels
from .runtime import resolve_device

__all__ = ["package_imports", "source_files", "source_digest", "memory_layout", "cpu_kernels_run", "made_by"]

_PACKAGE = "evitvid"


def package_imports(path: Path, module: str) -> set[str]:
    """The names of this package that the file `path` of `module` imports, anywhere in it (in a
    function too), as absolute names: modules, and `module.name` for what `from` imports name."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == _PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(parts + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == _PACKAGE:
                # `from . import x` imports submodules (or names) of the package, `from .x import y` the module x
                out |= {f"{name}.{a.name}" for a in node.names} if not node.module else {name, *(
                    f"{name}.{a.name}" for a in node.names)}
    return out


def _package_root() -> Path:
    return Path(str(importlib.resources.files(_PACKAGE)))


def _file_of(module: str) -> Path | None:
    """The source file of a module of the package (None for a name imported from a module)."""
    base = _package_root().joinpath(*module.split(".")[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=None)
def source_files(entry: str) -> tuple[Path, ...]:
    """The source files `entry` (a module name) runs from this package: the closure of its
    imports, and the package's C++ sources (compiled at run time). A package's `__init__.py`
    counts where it is imported itself (`from .. import models`), not as every submodule's
    parent: the study's own re-exports do not train anything."""
    seen: dict[str, Path] = {}
    todo = [entry]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _file_of(module)
        if path is None:
            continue
        seen[module] = path
        todo += sorted(package_imports(path, module))
    root = _package_root()
    return tuple(sorted(set(seen.values()) | set(root.rglob("*.cpp")), key=lambda p: p.relative_to(root).as_posix()))


def _code(path: Path) -> bytes:
    """What of a source file computes: a Python module's syntax tree without its docstrings (so
    comments, docstrings and line wrapping leave a digest alone), other sources' bytes."""
    if path.suffix != ".py":
        return path.read_bytes()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


@functools.lru_cache(maxsize=None)
def source_digest(entry: str) -> str:
    """16 hex digits naming the code of `source_files(entry)` (each file's path in the package and
    its code, `_code`), and the package's version."""
    root = _package_root()
    h = hashlib.sha256(metadata.version(_PACKAGE).encode())
    for path in source_files(entry):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + _code(path) + b"\0")
    return h.hexdigest()[:16]


def memory_layout(memory_format: str, device: torch.device) -> str:
    """The activations' layout `runtime.set_memory_format` gives evitvid's models: "auto" is
    channels-last on the CPU and the layout the model was built with elsewhere."""
    if memory_format == "auto":
        return "channels_last" if device.type == "cpu" else "as built"
    return memory_format


def cpu_kernels_run(memory_format: str, device: torch.device) -> bool:
    """Whether evitvid's C++ CPU kernels compute a training step: on the CPU, over channels-last
    activations, where they could be built and are not switched off."""
    return (device.type == "cpu" and memory_layout(memory_format, device) == "channels_last"
            and kernels.fast_paths_enabled() and kernels.available())


def made_by(entry: str, *, memory_format: str, device: str | torch.device = "auto") -> dict:
    """What a run records about the computation beside its parameters: the code's digest
    (`source_digest` of `entry`), whether the CPU kernels run and the activations' layout."""
    device = resolve_device(device) if isinstance(device, str) else device
    return {"code": source_digest(entry), "cpu_kernels": cpu_kernels_run(memory_format, device),
            "memory_format": memory_layout(memory_format, device)}
