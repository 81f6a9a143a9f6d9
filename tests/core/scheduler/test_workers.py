"""The workers: who polls which job when, and the describes a poll makes.

Workers run on a ManualClock, so "due at 30" means polled when the clock reaches 30,
not before; describes go through the real pipeline to a FakeTransport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

from asyncoptjob import (
    AdaptiveRateLimiter,
    RetryPolicy,
    ThrottledError,
)
from asyncoptjob._pipeline import Pipeline
from asyncoptjob._scheduler import DueQueue
from asyncoptjob._workers import Fetcher, Workers
from asyncoptjob.testing import FakeRequest, FakeTransport, ManualClock, describe_response
from tests.helpers import QueueItem, RecordingBudget

# -- workers -------------------------------------------------------------------------------


class Polls:
    """What the workers polled, and when; ``hold`` keeps each poll busy until released."""

    def __init__(self, clock: ManualClock, *, hold: bool = False) -> None:
        self.clock = clock
        self.done: list[tuple[int, float]] = []
        self.busy = 0
        self.most_busy = 0
        self.release = anyio.Event() if hold else None

    async def __call__(self, item: QueueItem) -> None:
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        try:
            if self.release is not None:
                await self.release.wait()
            self.done.append((item.name, self.clock.now()))
        finally:
            self.busy -= 1


async def settle() -> None:
    """Let every ready task run (a few loop turns)."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


@asynccontextmanager
async def running(
    count: int,
    poll: Callable[[QueueItem], Awaitable[None]],
    clock: ManualClock,
    keep: Callable[[QueueItem], bool] = lambda item: True,
) -> AsyncIterator[Workers[QueueItem]]:
    """``count`` workers over a fresh queue polling the items they ``keep``, until the end."""
    queue = DueQueue[QueueItem]()
    workers = Workers(queue, clock, count=count)
    run = partial(workers.run, poll, keep)
    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await settle()  # every worker is asleep: what comes next must wake them
        yield workers
        tg.cancel_scope.cancel()


async def test_an_item_is_polled_when_it_comes_due_and_not_before() -> None:
    clock = ManualClock(start=0)
    polls = Polls(clock)
    async with running(2, polls, clock) as workers:
        workers.schedule(QueueItem(1), 30)
        await clock.advance(29)
        assert polls.done == []
        await clock.advance(1)
        assert polls.done == [(1, 30)]


async def test_the_earliest_due_item_goes_first() -> None:
    clock = ManualClock(start=0)
    polls = Polls(clock)
    async with running(1, polls, clock) as workers:
        for name, due in [(1, 50), (2, 10), (3, 30), (4, 10)]:
            workers.schedule(QueueItem(name), due)
        await clock.advance(60)
    # In due order; two items due together go in the order they were scheduled.
    assert polls.done == [(2, 10), (4, 10), (3, 30), (1, 50)]


async def test_something_scheduled_sooner_wakes_a_worker_asleep_until_later() -> None:
    clock = ManualClock(start=0)
    polls = Polls(clock)
    async with running(1, polls, clock) as workers:
        workers.schedule(QueueItem(1), 100)
        await clock.advance(5)  # the worker sleeps until 100
        workers.schedule(QueueItem(2), 10)
        await clock.advance(100)
    assert polls.done == [(2, 10), (1, 100)]


async def test_a_burst_wakes_as_many_idle_workers_as_it_needs_and_no_more_than_count() -> None:
    clock = ManualClock(start=0)
    polls = Polls(clock, hold=True)
    assert polls.release is not None
    async with running(3, polls, clock) as workers:
        for name in range(5):
            workers.schedule(QueueItem(name), clock.now())
        await settle()
        assert polls.busy == 3  # every worker woke for the burst, each took one item
        polls.release.set()
        await settle()
    assert sorted(name for name, _ in polls.done) == list(range(5))
    assert polls.most_busy == 3


async def test_skipped_items_are_dropped_without_a_poll() -> None:
    clock = ManualClock(start=0)
    polls = Polls(clock)
    async with running(2, polls, clock, keep=lambda item: item.name % 2 == 1) as workers:
        for name in range(1, 5):
            workers.schedule(QueueItem(name), 0)
        await settle()
        assert len(workers.queue) == 0
    assert sorted(name for name, _ in polls.done) == [1, 3]


# -- the describer -------------------------------------------------------------------------


FAR = float("inf")


def fetch(
    handler: Callable[[FakeRequest], Any], clock: ManualClock
) -> tuple[Fetcher, FakeTransport]:
    """Describes through the real pipeline to a FakeTransport answering with ``handler``."""
    transport = FakeTransport(handler)
    pipeline = Pipeline(clock=clock, retry=RetryPolicy(initial_wait=1, max_attempts=100))
    budget = RecordingBudget(AdaptiveRateLimiter(clock=clock))
    return Fetcher(transport, pipeline, budget), transport


def throttled() -> ThrottledError:
    return ThrottledError("Rate exceeded", code="ThrottlingException")


def completed(request: FakeRequest) -> dict[str, Any]:
    return describe_response(request.job_name or "", "COMPLETED")


async def test_a_describe_hands_back_the_answer_and_when_it_was_sent() -> None:
    clock = ManualClock(start=100, autojump=True)
    fetcher, _ = fetch(completed, clock)
    description, sent_at = await fetcher.describe("job-a", deadline=FAR)
    assert description["OptimizationJobStatus"] == "COMPLETED"
    assert sent_at == 100


async def test_a_describe_retries_a_throttle_and_hands_back_one_answer() -> None:
    clock = ManualClock(start=100, autojump=True)
    errors = [throttled(), throttled()]
    fetcher, transport = fetch(lambda r: errors.pop() if errors else completed(r), clock)
    description, sent_at = await fetcher.describe("job-a", deadline=FAR)
    assert description["OptimizationJobStatus"] == "COMPLETED"
    assert transport.count() == 3
    assert sent_at > 100  # the attempt that answered, after the backoffs


async def test_a_describe_that_keeps_failing_hands_back_the_failure_by_its_deadline() -> None:
    clock = ManualClock(start=100, autojump=True)
    sent: list[float] = []

    def handler(request: FakeRequest) -> ThrottledError:
        sent.append(clock.now())
        return throttled()

    fetcher, _ = fetch(handler, clock)
    deadline = clock.now() + 60
    failure = await fetcher.describe("job-a", deadline=deadline)
    assert isinstance(failure, ThrottledError)
    assert len(sent) > 1
    assert all(at < deadline for at in sent)


async def test_the_last_look_describes_each_job_once_without_retrying() -> None:
    clock = ManualClock(start=100, autojump=True)
    busy = most = 0

    async def handler(request: FakeRequest) -> Any:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        await anyio.lowlevel.checkpoint()
        busy -= 1
        return throttled() if request.job_name == "job-b" else completed(request)

    names = ["job-a", "job-b", "job-c", "job-d"]
    with capture_logs() as logs:
        fetcher, transport = fetch(handler, clock)
        answers = await fetcher.last_look(names, concurrency=2)
    # The caller's deadline has come: no retry, and a failure is only logged.
    assert sorted(name for name, _, _ in answers) == ["job-a", "job-c", "job-d"]
    assert all(transport.count(job_name=name) == 1 for name in names)
    assert most == 2
    assert [(e["event"], e["job_name"]) for e in logs] == [("final_poll_failed", "job-b")]


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_the_last_look_at_no_job_sends_nothing(concurrency: int) -> None:
    fetcher, transport = fetch(completed, ManualClock())
    assert await fetcher.last_look([], concurrency) == []
    assert transport.requests == []
