"""A census of the source, for before-and-after notes: ``python -m benchmarks.census``.

Reads the files with :mod:`ast` (nothing is imported, so it runs on any checkout, also
``python benchmarks/census.py``) and prints, in a stable order, as plain text:

1. **Lines per module**: every ``.py`` file under ``src/``, physical lines (what
   ``wc -l`` counts), and the total.
2. **Classes over 200 lines**: where, how long (from the first decorator to the last
   line) and how many methods (``def`` and ``async def`` directly in the class body,
   properties included).
3. **Mode checks** in ``src/asyncoptjob``, three kinds, per file and in total:

   * ``fleet is None``: a comparison by ``is`` or ``is not`` with ``None`` of a name
     or attribute called ``fleet`` or ``_fleet`` (``fleet is None``,
     ``self.fleet is not None``, ``hub.fleet is None``), wherever it stands;
   * ``if fleet``: a name or attribute called ``fleet`` or ``_fleet`` used as a truth
     value: the whole test of an ``if``, ``elif``, ``while``, conditional expression,
     ``assert`` or comprehension ``if``, or an operand of ``and``, ``or`` or ``not``;
   * ``.connected``: a read of an attribute called ``connected`` or ``_connected``
     inside such a test or such an ``and``/``or``/``not`` expression
     (``if not self.connected:``, ``x if fleet.connected else y``); reading it to
     report it (``connected=self.connected``) and assigning it do not count.

   Only files with at least one check are listed. Names and attributes are matched by
   name alone (no types are inferred): a ``connected`` of something else would count.

4. **Test functions per test module**: ``def test_*`` and ``async def test_*`` at the
   top of each ``tests/**/test_*.py`` or in its ``class Test*`` (a parametrized test
   counts once), plus one for each hypothesis state machine made a test there
   (``TestModel = Machine.TestCase``), and the total.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "asyncoptjob"
LONG_CLASS = 200
FLEET = frozenset({"fleet", "_fleet"})
CONNECTED = frozenset({"connected", "_connected"})
KINDS = ("fleet is None", "if fleet", ".connected")


def _files(folder: Path, pattern: str = "*.py") -> list[Path]:
    return sorted(folder.rglob(pattern), key=lambda path: path.relative_to(folder).parts)


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _table(rows: Sequence[tuple[str, ...]]) -> Iterator[str]:
    """Rows as lines: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        yield "  " + "  ".join(cells).rstrip()


def lines_per_module(src: Path) -> Iterator[str]:
    """Section 1: physical lines of every module under ``src``."""
    rows = []
    total = 0
    for path in _files(src):
        count = len(path.read_text(encoding="utf-8").splitlines())
        total += count
        rows.append((path.relative_to(src).as_posix(), str(count)))
    rows.append((f"total ({len(rows)} modules)", str(total)))
    yield "Lines per module (src/)"
    yield from _table(rows)


def long_classes(src: Path, limit: int = LONG_CLASS) -> Iterator[str]:
    """Section 2: classes longer than ``limit`` lines, with their method counts."""
    rows: list[tuple[str, ...]] = [("class", "lines", "methods")]
    for path in _files(src):
        for node in ast.walk(_parse(path)):
            if not isinstance(node, ast.ClassDef) or node.end_lineno is None:
                continue
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length > limit:
                methods = sum(
                    isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) for item in node.body
                )
                where = f"{path.relative_to(src).as_posix()}:{node.lineno} {node.name}"
                rows.append((where, str(length), str(methods)))
    yield f"Classes over {limit} lines (src/): {len(rows) - 1}"
    if len(rows) > 1:
        yield from _table(rows)


def _named(node: ast.AST, names: frozenset[str]) -> bool:
    return (isinstance(node, ast.Name) and node.id in names) or (
        isinstance(node, ast.Attribute) and node.attr in names
    )


def mode_checks(tree: ast.Module) -> Counter[str]:
    """The mode checks in one module, by kind (see the module docstring)."""
    tests: list[ast.expr] = []  # whole tests of if/while/ternary/assert/comprehension
    operands: list[ast.expr] = []  # operands of and/or/not
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            tests.append(node.test)
        elif isinstance(node, ast.comprehension):
            tests.extend(node.ifs)
        elif isinstance(node, ast.BoolOp):
            operands.extend(node.values)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            operands.append(node.operand)
    found: Counter[str] = Counter()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], (ast.Is, ast.IsNot))
            and isinstance(node.comparators[0], ast.Constant)
            and node.comparators[0].value is None
            and _named(node.left, FLEET)
        ):
            found[KINDS[0]] += 1
    # A truth value counts once, even as the whole test of an `if` and an operand of `not`.
    truths = {id(node): node for node in [*tests, *operands] if _named(node, FLEET)}
    found[KINDS[1]] += len(truths)
    reads = {
        id(node)
        for root in [*tests, *operands]
        for node in ast.walk(root)
        if isinstance(node, ast.Attribute)
        and node.attr in CONNECTED
        and isinstance(node.ctx, ast.Load)
    }
    found[KINDS[2]] += len(reads)
    return found


def mode_check_census(package: Path) -> Iterator[str]:
    """Section 3: mode checks per file of ``package`` and in total."""
    rows: list[tuple[str, ...]] = [("module", *KINDS)]
    total: Counter[str] = Counter()
    for path in _files(package):
        found = mode_checks(_parse(path))
        if sum(found.values()):
            total += found
            where = path.relative_to(package.parent).as_posix()
            rows.append((where, *(str(found[kind]) for kind in KINDS)))
    rows.append(("total", *(str(total[kind]) for kind in KINDS)))
    yield f"Mode checks (src/{package.name}/): {sum(total.values())} in all"
    yield from _table(rows)


def count_tests(tree: ast.Module) -> int:
    """The test functions of a test module (see the module docstring)."""
    count = 0
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id.startswith("Test") for t in node.targets)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "TestCase"
        ):
            count += 1  # a hypothesis state machine's test: `TestModel = Machine.TestCase`
        body = node.body if isinstance(node, ast.ClassDef) and node.name.startswith("Test") else []
        for item in [node, *body]:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith(
                "test_"
            ):
                count += 1
    return count


def tests_per_module(tests: Path) -> Iterator[str]:
    """Section 4: test functions per test module, and the total."""
    rows = [
        (path.relative_to(tests.parent).as_posix(), str(count_tests(_parse(path))))
        for path in _files(tests, "test_*.py")
    ]
    total = sum(int(count) for _, count in rows)
    rows.append((f"total ({len(rows)} modules)", str(total)))
    yield "Test functions per test module"
    yield from _table(rows)


def census(root: Path = ROOT) -> Iterator[str]:
    """The whole census of the checkout at ``root``, line by line."""
    src = root / "src"
    sections = [
        lines_per_module(src),
        long_classes(src),
        mode_check_census(src / PACKAGE),
        tests_per_module(root / "tests"),
    ]
    for number, section in enumerate(sections):
        if number:
            yield ""
        yield from section


def main() -> None:
    """Print the census of this checkout."""
    sys.stdout.write("\n".join(census()) + "\n")


if __name__ == "__main__":
    main()
