"""Module-level ``watch()`` polls in the background, and leaves nothing behind on any exit.

Polling keeps its pace while the loop body works (shown by the endpoint's own request
log, never by wall-clock timing), nothing is dropped while the consumer is busy, and
every way out of the loop (``break``, an exception, cancellation, ``aclose()``, the end
of an ``async with`` block) cancels and reaps every task and closes every connection
without a warning or an error report.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
import pytest

from asyncoptjob import Event, PollPolicy, watch
from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.helpers import check_against_mock, check_no_leaks, loop_errors, opts, wait_until

DESCRIBE = "DescribeOptimizationJob"
#: Long enough that a watch is still going when the test leaves it.
FOREVER = Lifecycle(starting=(0.01, 0.01), in_progress=(float("inf"), float("inf")))
#: Every 20 ms, fixed: a busy consumer would leave visible gaps if polling paused.
STEADY = PollPolicy(interval=0.02, backoff=1.0, jitter=0.0)


def describes(mock: MockSageMaker) -> int:
    return mock.stats().count(DESCRIBE)


async def test_a_busy_consumer_does_not_pause_polling(aio_session: Any) -> None:
    life = Lifecycle(starting=(0.1, 0.2), in_progress=(0.3, 0.6), stopping=(0.05, 0.1))
    async with MockSageMaker(seed=41, lifecycle=life) as mock:
        names = mock.seed_jobs(4, prefix="busy")
        events: list[Event] = []
        # No slow start: the lifecycle is shorter than its first doublings.
        steady = opts(mock, aio_session, poll_interval=STEADY)
        async for event in watch(names, **steady):
            events.append(event)
            if len(events) == 1:
                # The consumer spends "forever" on its first event: it only goes on once
                # the endpoint has seen every job described three more times. A poller
                # that paused while the loop body runs would never send those requests.
                before = describes(mock)
                await wait_until(lambda n=before: describes(mock) >= n + 3 * len(names))
        # Nothing was dropped while the consumer was busy: every job's terminal status,
        # in the true order of its statuses.
        check_against_mock(mock, events, names)
        await check_no_leaks(mock)


async def _break(events: AsyncIterator[Event]) -> None:
    async for _ in events:
        break


class Boom(Exception):
    pass


async def _raise(events: AsyncIterator[Event]) -> None:
    with pytest.raises(Boom):
        async for _ in events:
            raise Boom


async def _cancel(events: AsyncIterator[Event]) -> None:
    with anyio.CancelScope() as scope:
        async for _ in events:
            scope.cancel()
            await anyio.sleep(1)  # the cancellation lands in the loop body


async def _cancel_while_waiting(events: AsyncIterator[Event]) -> None:
    with anyio.move_on_after(0.05):
        async for _ in events:
            pass  # FOREVER: the loop is waiting for the next event when cancelled


async def _aclose(events: AsyncIterator[Event]) -> None:
    await events.__anext__()
    await cast(Any, events).aclose()


EXITS = {
    "break": _break,
    "exception": _raise,
    "cancel_in_body": _cancel,
    "cancel_while_waiting": _cancel_while_waiting,
    "aclose": _aclose,
}


@pytest.mark.parametrize("form", ["bare", "async_with"])
@pytest.mark.parametrize("exit_", list(EXITS))
async def test_every_early_exit_leaves_nothing_behind(
    aio_session: Any, form: str, exit_: str
) -> None:
    async with MockSageMaker(seed=42, lifecycle=FOREVER) as mock, loop_errors() as reports:
        names = mock.seed_jobs(3, prefix="exit")
        leave = EXITS[exit_]
        w = watch(names, **opts(mock, aio_session, poll_interval=STEADY))
        if form == "bare":
            await leave(aiter(w))
        else:
            async with w as events:
                await leave(events)
        # Bare: the abandoned generator is finalized on the loop's next iterations.
        await check_no_leaks(mock)
        # No task polls any more: the endpoint's count stands still over many turns.
        before = describes(mock)
        for _ in range(50):
            await asyncio.sleep(0)
        assert describes(mock) == before
    assert reports == []


async def test_a_cancelled_caller_task_leaves_nothing_behind(aio_session: Any) -> None:
    async with MockSageMaker(seed=43, lifecycle=FOREVER) as mock, loop_errors() as reports:
        names = mock.seed_jobs(3, prefix="task")
        got_one = asyncio.Event()

        async def caller() -> None:
            async for _ in watch(names, **opts(mock, aio_session, poll_interval=STEADY)):
                got_one.set()

        task = asyncio.get_running_loop().create_task(caller())
        await got_one.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await check_no_leaks(mock)
    assert reports == []
