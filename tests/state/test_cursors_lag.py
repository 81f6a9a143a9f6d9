"""A durable watch's start sorts out its cursors in slices, and registers only new jobs.

Nothing here measures time: a spinner task counts its turns on the loop while the
cursors of many jobs are sorted out (the slice set low, so the lists stay small).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from asyncoptjob import JobStatus
from asyncoptjob._state import ConsumerCursors, _consumer
from asyncoptjob._state._store import BatchedStore, Cursor
from tests.core.test_slices import spinning

SLICE = 10
NAMES = [f"job-{i:03d}" for i in range(20 * SLICE)]
FINAL: Any = {"OptimizationJobName": "", "OptimizationJobStatus": "COMPLETED"}


class KnownStore(BatchedStore):
    """A store that answers at once with the cursors it was given."""

    def __init__(self, cursors: dict[str, Cursor]) -> None:
        super().__init__()
        self.cursors = cursors
        self.registered: list[list[str]] = []

    async def _load(self, consumer: str, names: Sequence[str]) -> dict[str, Cursor]:
        return {name: self.cursors[name] for name in names if name in self.cursors}

    async def register(self, consumer: str, names: Sequence[str]) -> None:
        self.registered.append(list(names))


async def test_only_jobs_without_a_cursor_are_registered_and_the_loop_runs_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_consumer, "START_SLICE", SLICE)
    finished = {name: Cursor(JobStatus.COMPLETED, FINAL) for name in NAMES[::4]}
    running = {name: Cursor(JobStatus.INPROGRESS) for name in NAMES[1::4]}
    seen_nothing = {name: Cursor(None) for name in NAMES[2::4]}  # registered before, no commit
    store = KnownStore({**finished, **running, **seen_nothing})
    cursors = ConsumerCursors("census")
    cursors.use(store)
    async with spinning() as spinner:
        before = spinner.turns
        watched, since = await cursors.start(NAMES)
        turns = spinner.turns - before
    assert watched == [name for name in NAMES if name not in finished]
    assert since == dict.fromkeys(running, JobStatus.INPROGRESS)
    assert set(cursors.settled) == set(finished)
    assert store.registered == [NAMES[3::4]]  # one batch: the jobs it had never seen
    assert turns >= len(NAMES) // SLICE - 1
