"""The census counts what its docstring says, on a small synthetic checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

HUB = """\
class Hub:
    def __init__(self, fleet):
        self.fleet = fleet

    def mode(self, other):
        if self.fleet is None:
            return "alone"
        if not self.fleet.connected:
            return "lost"
        skip = None if fleet is not None else other
        report = {"connected": self.fleet.connected}  # reporting, not a test
        self.fleet.connected = False  # assigning, not a test
        return "fleet" if self.fleet else [x for x in other if x._fleet and skip]
"""

TESTS = """\
from hypothesis.stateful import RuleBasedStateMachine


def test_one(): ...


async def test_two(): ...


def helper(): ...


class TestGroup:
    def test_three(self): ...

    def not_a_test(self): ...


class Machine(RuleBasedStateMachine): ...


TestMachine = Machine.TestCase
"""


@pytest.fixture
def census(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.census import census as lines

    package = tmp_path / "src" / "asyncoptjob"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A package."""\n', encoding="utf-8")
    (package / "_hub.py").write_text(HUB, encoding="utf-8")
    (tmp_path / "tests" / "core").mkdir(parents=True)
    (tmp_path / "tests" / "core" / "test_hub.py").write_text(TESTS, encoding="utf-8")
    (tmp_path / "tests" / "conftest.py").write_text("def test_not_counted(): ...\n")
    return "\n".join(lines(tmp_path))


def _section(text: str, title: str) -> list[list[str]]:
    """The rows of the section whose heading starts with ``title``, split into cells."""
    block = next(part for part in text.split("\n\n") if part.startswith(title))
    return [line.split() for line in block.splitlines()[1:]]


def test_lines_per_module(census: str) -> None:
    rows = _section(census, "Lines per module")
    hub_lines = len(HUB.splitlines())
    assert rows == [
        ["asyncoptjob/__init__.py", "1"],
        ["asyncoptjob/_hub.py", str(hub_lines)],
        ["total", "(2", "modules)", str(hub_lines + 1)],
    ]


def test_mode_checks(census: str) -> None:
    assert "Mode checks (src/asyncoptjob/): 5 in all" in census
    rows = _section(census, "Mode checks")
    # is None twice; truth values: `self.fleet` and `x._fleet`; .connected once.
    assert rows[1:] == [["asyncoptjob/_hub.py", "2", "2", "1"], ["total", "2", "2", "1"]]


def test_long_classes(census: str) -> None:
    assert "Classes over 200 lines (src/): 0" in census


def test_tests_per_module(census: str) -> None:
    rows = _section(census, "Test functions")
    assert rows == [["tests/core/test_hub.py", "4"], ["total", "(1", "modules)", "4"]]


def test_runs_as_a_script_on_this_checkout() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "census.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for heading in ("Lines per module", "Classes over 200", "Mode checks", "Test functions"):
        assert heading in result.stdout
    assert "asyncoptjob/_poller.py" in result.stdout
