"""The shape of the code, checked from its source (issue 20, "What it must show").

Each rule reads the files with :mod:`ast`; nothing of the library is imported, so a
rule is checked even where importing would fail, and the whole file runs in well under
a second.

* no class over :data:`MAX_CLASS_LINES` lines anywhere in ``src/``;
* no import circle among the ``asyncoptjob`` modules, counting every import in a
  module: at the top, under ``if TYPE_CHECKING:``, and inside functions (a deferred
  import hides a circle, it does not remove it), absolute and relative alike;
* outside the library (``benchmarks/``, ``examples/``) no ``asyncoptjob._…`` module or
  private name is imported; the CLI imports only the public names of ``asyncoptjob``,
  ``asyncoptjob.mock`` and ``asyncoptjob.testing`` (their ``__all__``), besides its own
  modules.

The helpers are tested on small synthetic packages too, so that each check can fail.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT

SRC = ROOT / "src"
PACKAGE = "asyncoptjob"
MAX_CLASS_LINES = 300
#: The library's public modules, whose ``__all__`` the CLI may import from.
PUBLIC = (PACKAGE, f"{PACKAGE}.mock", f"{PACKAGE}.testing")
CLI = f"{PACKAGE}.cli"


# -- reading the source ------------------------------------------------------------------


def modules(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``src`` by dotted name (``__init__`` is the package)."""
    found: dict[str, Path] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module, and the name taken from it (None for ``import x``)."""

    module: str
    name: str | None
    line: int


def imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[Import]:
    """Every import in ``tree`` (anywhere in it), relative ones resolved against ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                yield Import(target, alias.name, node.lineno)


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports.

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at
    ``pkg`` (its ``__init__``). The parent packages Python runs on the way to a module
    are not counted: every module would otherwise sit in a circle with its package.
    """
    known = modules(src, package)
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        targets: set[str] = set()
        for found in imports(_parse(path), module, path.name == "__init__.py"):
            dotted = f"{found.module}.{found.name}" if found.name else found.module
            if dotted in known:
                targets.add(dotted)
            elif found.module in known:
                targets.add(found.module)
        targets.discard(module)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: for each module in one, the shortest circle through it.

    Each circle is a path that starts and ends at its smallest module name; circles
    found twice are listed once, sorted.
    """
    found: set[tuple[str, ...]] = set()
    for start in sorted(graph):
        path = _shortest_path(graph, start)
        if path is not None:
            turn = path.index(min(path))
            found.add(tuple(path[turn:] + path[:turn]))
    return [[*circle, circle[0]] for circle in sorted(found)]


def _shortest_path(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """The modules of the shortest circle from ``start`` back to it (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph.get(node, ())):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return path[::-1]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    return None


def long_classes(root: Path, limit: int) -> list[str]:
    """Every class under ``root`` longer than ``limit`` lines (decorators included)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - first + 1
                if length > limit:
                    where = path.relative_to(root)
                    found.append(f"{where}:{node.lineno} {node.name}: {length} lines")
    return found


def private_imports(root: Path, package: str) -> list[str]:
    """Imports under ``root`` of a private module or name of ``package``.

    Private: a dotted path below ``package`` with a part starting with ``_`` (dunder
    names aside), or a ``_name`` taken from one of its modules; string constants naming
    such a module (``importlib.import_module("asyncoptjob._x")``) count too.
    """
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = _parse(path)
        where = path.relative_to(root)
        for found_import in imports(tree, "", is_package=True):
            dotted = found_import.module
            if found_import.name is not None and found_import.name != "*":
                dotted = f"{dotted}.{found_import.name}"
            if _private(dotted, package):
                found.append(f"{where}:{found_import.line} imports {dotted}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and all(part.isidentifier() for part in node.value.split("."))
                and _private(node.value, package)
            ):
                found.append(f"{where}:{node.lineno} names {node.value}")
    return found


def _private(dotted: str, package: str) -> bool:
    parts = dotted.split(".")
    return parts[0] == package and any(
        part.startswith("_") and not part.startswith("__") for part in parts[1:]
    )


def exported(src: Path, module: str) -> set[str]:
    """The names in the literal ``__all__`` of ``module``'s file under ``src``."""
    path = modules(src, module.partition(".")[0])[module]
    for node in _parse(path).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, (ast.List, ast.Tuple))
        ):
            return {
                e.value
                for e in node.value.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            }
    return set()


def cli_imports_beyond_public(
    src: Path, package: str, cli: str, public: tuple[str, ...]
) -> list[str]:
    """Imports in ``cli`` of library modules or names other than the public ones."""
    known = modules(src, package)
    allowed = {module: exported(src, module) for module in public}
    found = []
    for module, path in known.items():
        if not (module == cli or module.startswith(f"{cli}.")):
            continue
        for item in imports(_parse(path), module, path.name == "__init__.py"):
            target = item.module
            if target.partition(".")[0] != package or target == cli or target.startswith(f"{cli}."):
                continue
            where = f"{path.relative_to(src)}:{item.line}"
            if target not in allowed:
                found.append(f"{where} imports {target} (not a public module)")
            elif (
                item.name is not None
                and item.name not in allowed[target]
                and f"{target}.{item.name}" not in allowed
            ):
                found.append(f"{where} imports {item.name} from {target} (not in its __all__)")
    return found


# -- the rules ---------------------------------------------------------------------------


def test_the_rules_read_the_real_tree() -> None:
    # Guards the rules below against passing on nothing (a moved folder, a wrong root).
    known = modules(SRC, PACKAGE)
    assert {*PUBLIC, CLI} <= set(known)
    assert any(import_graph(SRC, PACKAGE).values())
    for module in PUBLIC:
        assert exported(SRC, module), module
    for folder in ("benchmarks", "examples"):
        assert list((ROOT / folder).rglob("*.py")), folder


def test_no_class_over_300_lines() -> None:
    offenders = long_classes(SRC, MAX_CLASS_LINES)
    assert not offenders, "classes over 300 lines:\n" + "\n".join(offenders)


def test_no_import_circle() -> None:
    found = cycles(import_graph(SRC, PACKAGE))
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("folder", ["benchmarks", "examples"])
def test_no_private_import_outside_the_library(folder: str) -> None:
    offenders = private_imports(ROOT / folder, PACKAGE)
    assert not offenders, "private imports:\n" + "\n".join(offenders)


def test_the_cli_imports_public_names_only() -> None:
    offenders = cli_imports_beyond_public(SRC, PACKAGE, CLI, PUBLIC)
    assert not offenders, "the CLI imports beyond the public API:\n" + "\n".join(offenders)


# -- the helpers, on synthetic packages --------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_circle_through_type_checking_is_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from ._a import A\n",
            "pkg/_a.py": "from ._sub import thing\n",
            "pkg/_sub/__init__.py": "from . import _b\n",
            "pkg/_sub/_b.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .._a import A\n"
            ),
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg._sub"] == {"pkg._sub._b"}  # a submodule named in `from . import`
    assert cycles(graph) == [["pkg._a", "pkg._sub", "pkg._sub._b", "pkg._a"]]


def test_a_deferred_and_an_absolute_import_close_circles_too(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/_a.py": "import pkg._b\n",
            "pkg/_b.py": "def late():\n    from pkg import _a\n",
            "pkg/_c.py": "from . import _c\n",
        },
    )
    assert cycles(import_graph(tmp_path, "pkg")) == [["pkg._a", "pkg._b", "pkg._a"]]


def test_a_graph_without_circles_passes(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from ._a import A\nfrom ._sub import B\n",
            "pkg/_a.py": "import os\nfrom ._sub._b import B\nclass A(B): ...\n",
            "pkg/_sub/__init__.py": "from ._b import B\n",
            "pkg/_sub/_b.py": "from typing import TYPE_CHECKING\nclass B: ...\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg._a"] == {"pkg._sub._b"}
    assert cycles(graph) == []


def test_long_classes_and_private_imports_are_reported(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(4))
    _write(
        tmp_path,
        {
            "big.py": f"@decorated\nclass Big:\n{body}\n\nclass Small:\n    pass\n",
            "user.py": (
                "import asyncoptjob\n"
                "from asyncoptjob.testing import FakeTransport\n"
                "from asyncoptjob._state._sqlite import SQLiteStore\n"
                "from asyncoptjob import _hub\n"
                "import importlib\n"
                "importlib.import_module('asyncoptjob._fleet')\n"
                '"""asyncoptjob._state is private, and so is asyncoptjob._hub."""\n'
            ),
        },
    )
    assert long_classes(tmp_path, 5) == ["big.py:2 Big: 6 lines"]
    assert private_imports(tmp_path, "asyncoptjob") == [
        "user.py:3 imports asyncoptjob._state._sqlite.SQLiteStore",
        "user.py:4 imports asyncoptjob._hub",
        "user.py:6 names asyncoptjob._fleet",
    ]


def test_cli_imports_beyond_public_are_reported(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from ._a import A\n__all__ = ['A']\n",
            "pkg/_a.py": "class A: ...\nclass Hidden: ...\n",
            "pkg/sub/__init__.py": "__all__ = []\n",
            "pkg/cli/__init__.py": "from ._app import main\n",
            "pkg/cli/_app.py": (
                "from .. import A, Hidden\n"
                "from .._a import A\n"
                "from . import _app\n"
                "from .. import sub\n"
                "def main(): ...\n"
            ),
        },
    )
    assert cli_imports_beyond_public(tmp_path, "pkg", "pkg.cli", ("pkg", "pkg.sub")) == [
        "pkg/cli/_app.py:1 imports Hidden from pkg (not in its __all__)",
        "pkg/cli/_app.py:2 imports pkg._a (not a public module)",
    ]
