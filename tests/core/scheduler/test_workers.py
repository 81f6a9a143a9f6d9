"""The workers: who polls which job when, and the Describer that does one poll.

Workers run on a ManualClock, so "due at 30" means polled when the clock reaches 30,
not before; the Describer describes through a FakeTransport and the real pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

from asyncoptjob import (
    AdaptiveRateLimiter,
    JobStatus,
    RetryPolicy,
    ThrottledError,
    TransportError,
)
from asyncoptjob._events import Description
from asyncoptjob._pipeline import Pipeline
from asyncoptjob._scheduler import DueQueue
from asyncoptjob._workers import Describer, Workers
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
    skip: Callable[[QueueItem], bool] | None = None,
) -> AsyncIterator[Workers[QueueItem]]:
    """``count`` workers over a fresh queue, running until the block ends."""
    workers = Workers(DueQueue[QueueItem](), clock, count=count, poll=poll, skip=skip)
    async with anyio.create_task_group() as tg:
        tg.start_soon(workers.run)
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
    async with running(2, polls, clock, skip=lambda item: item.name % 2 == 0) as workers:
        for name in range(1, 5):
            workers.schedule(QueueItem(name), 0)
        await settle()
        assert len(workers.queue) == 0
    assert sorted(name for name, _ in polls.done) == [1, 3]


# -- the describer -------------------------------------------------------------------------


@dataclass
class Job:
    name: str
    status: JobStatus | None = None
    in_flight: bool = False


class Answers:
    """Where the describer hands its answers (the hub's side): a record of each."""

    def __init__(self, give_up_after: float = 60) -> None:
        self.give_up_after = give_up_after
        self.observed: list[tuple[str, str, float]] = []
        self.failures: list[tuple[str, TransportError, float]] = []

    def give_up_at(self, job: Job, now: float) -> float:
        return now + self.give_up_after

    def observe(self, job: Job, description: Description, sent_at: float) -> None:
        self.observed.append((job.name, description["OptimizationJobStatus"], sent_at))

    def failed(self, job: Job, error: TransportError, started: float) -> None:
        self.failures.append((job.name, error, started))


def describer(
    handler: Callable[[FakeRequest], Any], clock: ManualClock, answers: Answers
) -> tuple[Describer[Job], FakeTransport]:
    """A Describer over the real pipeline, a FakeTransport answering through ``handler``."""
    transport = FakeTransport(handler)
    pipeline = Pipeline(clock=clock, retry=RetryPolicy(initial_wait=1, max_attempts=100))
    budget = RecordingBudget(AdaptiveRateLimiter(clock=clock))
    return Describer(transport, pipeline, budget, answers), transport


def throttled() -> ThrottledError:
    return ThrottledError("Rate exceeded", code="ThrottlingException")


def completed(request: FakeRequest) -> dict[str, Any]:
    return describe_response(request.job_name or "", "COMPLETED")


async def test_a_poll_hands_the_answer_over_with_its_send_time() -> None:
    clock = ManualClock(start=100, autojump=True)
    answers = Answers()
    job = Job("job-a")
    during: list[bool] = []

    def handler(request: FakeRequest) -> dict[str, Any]:
        during.append(job.in_flight)
        return completed(request)

    poller, _ = describer(handler, clock, answers)
    await poller.poll(job)
    assert answers.observed == [("job-a", "COMPLETED", 100)]
    assert (during, job.in_flight) == ([True], False)
    assert answers.failures == []


async def test_a_poll_retries_a_throttle_and_hands_over_one_answer() -> None:
    clock = ManualClock(start=100, autojump=True)
    answers = Answers()
    errors = [throttled(), throttled()]
    poller, transport = describer(
        lambda r: errors.pop() if errors else completed(r), clock, answers
    )
    await poller.poll(Job("job-a"))
    assert transport.count() == 3
    assert [(name, status) for name, status, _ in answers.observed] == [("job-a", "COMPLETED")]
    assert answers.observed[0][2] > 100  # sent after the backoffs, and stamped so
    assert answers.failures == []


async def test_a_poll_that_keeps_failing_is_handed_over_as_failed_at_its_give_up_time() -> None:
    clock = ManualClock(start=100, autojump=True)
    answers = Answers(give_up_after=60)
    job = Job("job-a")
    sent: list[float] = []

    def handler(request: FakeRequest) -> ThrottledError:
        sent.append(clock.now())
        return throttled()

    poller, _ = describer(handler, clock, answers)
    await poller.poll(job)
    ((name, error, started),) = answers.failures
    assert (name, started, job.in_flight) == ("job-a", 100, False)
    assert isinstance(error, ThrottledError)
    assert len(sent) > 1
    assert all(at < started + answers.give_up_after for at in sent)
    assert answers.observed == []


async def test_a_cancelled_poll_leaves_its_job_free() -> None:
    clock = ManualClock(start=100)
    job = Job("job-a")

    async def hangs(request: FakeRequest) -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    poller, transport = describer(hangs, clock, Answers())
    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.poll, job)
        while not transport.count():
            await anyio.lowlevel.checkpoint()
        assert job.in_flight
        tg.cancel_scope.cancel()
    assert not job.in_flight


async def test_the_last_look_describes_each_job_once_without_retrying() -> None:
    clock = ManualClock(start=100, autojump=True)
    answers = Answers()
    busy = most = 0

    async def handler(request: FakeRequest) -> Any:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        await anyio.lowlevel.checkpoint()
        busy -= 1
        return throttled() if request.job_name == "job-b" else completed(request)

    jobs = [Job(name) for name in ("job-a", "job-b", "job-c", "job-d")]
    with capture_logs() as logs:
        poller, transport = describer(handler, clock, answers)
        await poller.last_look(jobs, concurrency=2)
    assert sorted(name for name, _, _ in answers.observed) == ["job-a", "job-c", "job-d"]
    assert answers.failures == []  # the caller's deadline has come: no retry, no verdict
    assert all(transport.count(job_name=job.name) == 1 for job in jobs)
    assert most == 2
    assert [(e["event"], e["job_name"]) for e in logs] == [("final_poll_failed", "job-b")]


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_the_last_look_at_no_job_sends_nothing(concurrency: int) -> None:
    poller, transport = describer(completed, ManualClock(), Answers())
    await poller.last_look([], concurrency)
    assert transport.requests == []
