"""The scenario registry: a scenario is one module with one ``@scenario`` function.

To add one, drop ``benchmarks/scenarios/s5_sweeps.py`` in with::

    @scenario("s5", "S5 sweeps: List sweeps vs describe-only")
    def run(ctx: RunContext) -> ScenarioResult:
        with ctx.mock() as mock:
            ...

It is discovered by module name; ``--scenario s5`` runs it alone.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from .mockserver import MockServer
from .report import ScenarioResult

__all__ = ["SCENARIOS", "RunContext", "Scenario", "discover", "scenario"]


@dataclass(slots=True)
class RunContext:
    """What a scenario gets from the runner.

    Attributes:
        quick: tiny sizes for a smoke run (numbers meaningless, every code path taken).
        repeats: repeats asked for on the command line (None: the scenario's default).
        verbose: print progress to stderr.
    """

    quick: bool = False
    repeats: int | None = None
    verbose: bool = True
    _log_prefix: str = field(default="", repr=False)

    def mock(self, *, seed: int = 1) -> MockServer:
        """A mock endpoint process to use as ``with ctx.mock() as mock:``."""
        return MockServer(seed=seed)

    def repeats_or(self, full: int, quick: int = 1) -> int:
        """The repeats to run: the command line's, else ``quick`` or ``full``."""
        if self.repeats is not None:
            return self.repeats
        return quick if self.quick else full

    def log(self, message: str) -> None:
        """Print one progress line to stderr."""
        if self.verbose:
            print(f"{self._log_prefix}{message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A registered scenario."""

    key: str
    name: str
    title: str
    run: Callable[[RunContext], ScenarioResult]


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    key: str, title: str
) -> Callable[[Callable[[RunContext], ScenarioResult]], Callable[[RunContext], ScenarioResult]]:
    """Register the decorated function as scenario ``key`` (e.g. ``"s1"``)."""

    def register(
        fn: Callable[[RunContext], ScenarioResult],
    ) -> Callable[[RunContext], ScenarioResult]:
        name = fn.__module__.rsplit(".", 1)[-1]
        if key in SCENARIOS and SCENARIOS[key].name != name:
            raise ValueError(f"scenario key {key!r} is used by {SCENARIOS[key].name} and {name}")
        SCENARIOS[key] = Scenario(key, name, title, fn)
        return fn

    return register


def discover() -> dict[str, Scenario]:
    """Import every module of :mod:`benchmarks.scenarios`; return the registry by key."""
    package = importlib.import_module(f"{__package__}.scenarios")
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(SCENARIOS.items()))
