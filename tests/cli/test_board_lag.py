"""The board of a large run holds the loop in short stretches, and the collector not at all.

Nothing here measures time: a spinner task counts its turns on the loop while a board
is built or walked (the slice set low, so the boards stay small), and ``gc.is_tracked``
tells whether the garbage collector would walk a per-job table at every full collection.
"""

from __future__ import annotations

import gc
import io
import re

import pytest
from rich.console import Console

from asyncoptjob import JobErrorEvent, JobNotFoundError, JobStatus
from asyncoptjob.cli import _board
from asyncoptjob.cli._board import Board
from asyncoptjob.cli._view import summary
from tests.cli.test_cli_view import change
from tests.core.test_slices import spinning

SLICE = 10
NAMES = [f"job-{i:03d}" for i in range(20 * SLICE)]


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_board, "SLICE", SLICE)


@pytest.mark.usefixtures("small_slices")
async def test_a_large_board_is_built_in_slices_that_let_the_loop_run() -> None:
    async with spinning() as spinner:
        before = spinner.turns
        board = await Board.watching([*NAMES, NAMES[0]])
        turns = spinner.turns - before
    assert turns >= len(NAMES) // SLICE - 1
    plain = Board([*NAMES, NAMES[0]])
    assert (board.status, board.counts(), board.total) == (plain.status, plain.counts(), 200)


@pytest.mark.usefixtures("small_slices")
async def test_the_unfinished_jobs_are_found_in_slices_that_let_the_loop_run() -> None:
    board = Board(NAMES)
    for name in NAMES[::3]:
        board.record(change(name, None, JobStatus.COMPLETED))
    board.record(change(NAMES[1], None, JobStatus.INPROGRESS))
    async with spinning() as spinner:
        before = spinner.turns
        unfinished = await board.unfinished_names()
        turns = spinner.turns - before
    assert unfinished == [name for name in NAMES if name not in NAMES[::3]]
    assert unfinished == list(board.unfinished())
    assert turns >= len(NAMES) // SLICE - 1


def test_the_boards_per_job_tables_are_never_walked_by_the_garbage_collector() -> None:
    board = Board(NAMES)
    board.record(change(NAMES[0], None, JobStatus.INPROGRESS))
    board.record(change(NAMES[0], JobStatus.INPROGRESS, JobStatus.FAILED, "CapacityError"))
    board.record(change(NAMES[1], None, JobStatus("PAUSED")))  # a status this release lacks
    board.record(JobErrorEvent(NAMES[2], JobNotFoundError("not found", code="NotFound")))
    tables = {
        "status": board.status,
        "details": board.details,
        "problems": board.problems,
        "counts": board._counts,
    }
    assert {name: gc.is_tracked(table) for name, table in tables.items()} == dict.fromkeys(
        tables, False
    )


def test_the_summary_lists_the_jobs_that_did_not_complete_in_the_order_they_ended() -> None:
    board = Board(NAMES)
    ended = [NAMES[7], NAMES[2], NAMES[150], *NAMES[40:52]]
    board.record(change(ended[0], None, JobStatus.FAILED, "CapacityError: no GPUs"))
    board.record(change(ended[1], None, JobStatus.STOPPED))
    board.record(JobErrorEvent(ended[2], JobNotFoundError("not found", code="NotFound")))
    for name in ended[3:]:
        board.record(change(name, None, JobStatus.FAILED))
    board.record(change(NAMES[3], None, JobStatus.COMPLETED))
    assert list(board.problems) == ended
    console = Console(file=io.StringIO(), width=100)
    console.print(summary(board, max_problems=4))
    text: str = console.file.getvalue()  # type: ignore[attr-defined]
    listed = re.findall(r"^ *(job-\d+) +(FAILED|STOPPED|ERROR)", text, re.MULTILINE)
    assert listed == [
        (NAMES[7], "FAILED"),
        (NAMES[2], "STOPPED"),
        (NAMES[150], "ERROR"),
        (NAMES[40], "FAILED"),
    ]
    assert f"and {len(ended) - 4} more" in text
