"""The hub on its own: a FakeTransport and a ManualClock, no HTTP, no waiting.

Every poll, backoff, grace period and timeout below runs in virtual time, so each test
checks the hub's decisions exactly (which request at which virtual time), whatever the
machine's speed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from asyncoptjob import (
    CredentialsError,
    JobErrorEvent,
    JobNotFoundError,
    JobStatus,
    Poller,
    PollPolicy,
    RetryPolicy,
    StatusChange,
    ThrottledError,
    TransientError,
    WaitTimeoutError,
)
from asyncoptjob.testing import (
    FakeRequest,
    FakeTransport,
    ManualClock,
    ScriptedJobs,
    describe_response,
)

#: Every 10 virtual seconds exactly: no backoff, no jitter.
EVERY_10 = PollPolicy(interval=10, backoff=1.0, jitter=0.0)


def options(transport: FakeTransport, clock: ManualClock, **extra: Any) -> dict[str, Any]:
    return {
        "transport": transport,
        "clock": clock,
        "poll_interval": EVERY_10,
        "strategy": "describe",
        # No slow start: its rate waits on a clock that only the test moves.
        "initial_rate": None,
        **extra,
    }


async def next_event(events: AsyncIterator[Any]) -> Any:
    # The events are produced without the clock moving: a real-time guard against a hang.
    with anyio.fail_after(10):
        return await events.__anext__()


async def test_polls_keep_their_pace_while_nobody_reads() -> None:
    clock = ManualClock()
    jobs = ScriptedJobs(
        clock,
        {
            "job-a": [(0, "STARTING"), (25, "INPROGRESS"), (55, "STOPPING"), (65, "STOPPED")],
            "job-b": [(0, "INPROGRESS"), (200, "COMPLETED")],
        },
    )
    transport = FakeTransport(jobs)
    async with (
        Poller(**options(transport, clock)) as poller,
        poller.watch(["job-a", "job-b"]) as events,
    ):
        first = await next_event(events)
        # The consumer is "busy": it reads nothing for 100 virtual seconds.
        await clock.advance(100)
        assert transport.count(job_name="job-b") == 11  # t = 0, 10, ..., 100
        assert transport.count(job_name="job-a") == 8  # t = 0 ... 70, then terminal
        seen = [first]
        while len([e for e in seen if e.job_name == "job-a"]) < 4:
            seen.append(await next_event(events))
    a = [e.status for e in seen if e.job_name == "job-a"]
    # Nothing was dropped while nobody read, not even the 10-second STOPPING.
    assert a == ["STARTING", "INPROGRESS", "STOPPING", "STOPPED"]


async def test_each_poll_describes_a_job_once_however_many_watch_it() -> None:
    clock = ManualClock()
    jobs = ScriptedJobs(clock, {"job-a": [(0, "STARTING"), (15, "COMPLETED")]})
    transport = FakeTransport(jobs)
    async with Poller(**options(transport, clock)) as poller:
        async with poller.watch("job-a") as one, poller.watch("job-a") as two:
            assert (await next_event(one)).status == "STARTING"
            assert (await next_event(two)).status == "STARTING"
            await clock.advance(20)
            assert (await next_event(one)).previous_status == "STARTING"
            assert (await next_event(two)).status == "COMPLETED"
        # Both callers were attached when their blocks opened: one describe at 0, 10, 20.
        assert transport.count() == 3
        assert poller.stats.events_emitted == 4


async def test_a_late_subscriber_starts_from_the_current_status() -> None:
    clock = ManualClock()
    jobs = ScriptedJobs(clock, {"job-a": [(0, "STARTING"), (15, "INPROGRESS")]})
    async with (
        Poller(**options(FakeTransport(jobs), clock)) as poller,
        poller.watch("job-a") as early,
    ):
        await next_event(early)
        await clock.advance(20)
        async with poller.watch("job-a") as late:
            event = await next_event(late)
            assert (event.previous_status, event.status) == (None, JobStatus.INPROGRESS)


async def test_throttles_are_retried_with_backoff_on_the_clock() -> None:
    clock = ManualClock()
    answers = ["throttle", "throttle", "ok"]

    def handler(request: FakeRequest) -> Any:
        if answers.pop(0) == "throttle":
            return ThrottledError("Rate exceeded", code="ThrottlingException")
        return describe_response("job-a", "COMPLETED")

    transport = FakeTransport(handler)
    retry = RetryPolicy(initial_wait=1, max_wait=4, max_elapsed=600)
    async with Poller(**options(transport, clock, retry=retry)) as poller:
        async with poller.watch("job-a") as events:
            await clock.advance(10)  # two backoffs of at most 1 and 2 seconds
            assert (await next_event(events)).status == "COMPLETED"
        stats = poller.stats
    assert stats.requests["throttled"] == 2
    assert stats.requests["ok"] == 1
    assert stats.retries == 2


async def test_a_job_that_keeps_failing_is_given_up_after_max_elapsed() -> None:
    clock = ManualClock()
    transport = FakeTransport(lambda request: TransientError("boom", code="InternalFailure"))
    retry = RetryPolicy(initial_wait=1, max_wait=5, max_elapsed=60)
    async with (
        Poller(**options(transport, clock, retry=retry)) as poller,
        poller.watch("job-a") as events,
    ):
        await clock.advance(50)
        assert poller.stats.jobs_active == 1  # still retrying
        await clock.advance(30)
        event = await next_event(events)
    assert isinstance(event, JobErrorEvent)
    assert isinstance(event.error, TransientError)


@pytest.mark.parametrize(("grace", "outcome"), [(60, "STARTING"), (10, "not found")])
async def test_not_found_is_retried_for_the_grace_period(grace: float, outcome: str) -> None:
    clock = ManualClock()
    # The job appears 30 s after the watch starts (eventual consistency after Create).
    jobs = ScriptedJobs(clock, {"job-a": [(30, "STARTING"), (1000, "COMPLETED")]})
    policy = PollPolicy(interval=10, backoff=1.0, jitter=0.0, not_found_interval=5)
    transport = FakeTransport(jobs)
    async with (
        Poller(**options(transport, clock, poll_interval=policy, not_found_grace=grace)) as poller,
        poller.watch("job-a") as events,
    ):
        await clock.advance(40)
        event = await next_event(events)
    if outcome == "STARTING":
        assert isinstance(event, StatusChange)
        assert event.status == "STARTING"
    else:
        assert isinstance(event, JobErrorEvent)
        assert isinstance(event.error, JobNotFoundError)
        assert transport.count() == 3  # t = 0, 5, 10: the grace ran out at 10


async def test_credentials_errors_end_the_watch_with_the_error() -> None:
    clock = ManualClock()
    transport = FakeTransport(
        lambda request: CredentialsError("denied", code="AccessDeniedException")
    )
    async with Poller(**options(transport, clock)) as poller:
        with pytest.raises(CredentialsError):
            async with poller.watch(["job-a", "job-b"]) as events:
                await next_event(events)
        assert poller.stats.jobs_active == 0


async def test_a_timeout_takes_a_last_look_then_raises() -> None:
    clock = ManualClock()
    jobs = ScriptedJobs(clock, {"job-a": [(0, "INPROGRESS"), (95, "COMPLETED")]})
    transport = FakeTransport(jobs)
    slow = PollPolicy(interval=60, backoff=1.0, jitter=0.0)
    async with Poller(**options(transport, clock, poll_interval=slow)) as poller:

        async def wait() -> Any:
            return await poller.wait_until_done("job-a", timeout=100)

        async with anyio.create_task_group() as tg:
            result: list[Any] = []

            async def run() -> None:
                result.append(await wait())

            tg.start_soon(run)
            await clock.advance(100)
        # Polls at 0 and 60 saw INPROGRESS; the last look at 100 sees COMPLETED.
        assert result[0]["OptimizationJobStatus"] == "COMPLETED"
        assert transport.count() == 3

        async with poller.watch("job-a") as events:  # the job is done: at once
            assert (await next_event(events)).status == "COMPLETED"


async def test_a_timeout_names_the_unfinished_jobs() -> None:
    clock = ManualClock()
    jobs = ScriptedJobs(clock, {"job-a": [(0, "INPROGRESS")]})
    async with Poller(**options(FakeTransport(jobs), clock)) as poller:
        caught: list[WaitTimeoutError] = []

        async def run() -> None:
            with pytest.raises(WaitTimeoutError) as info:
                await poller.wait_until_done(["job-a"], timeout=30)
            caught.append(info.value)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await clock.advance(31)
    assert caught[0].pending == {"job-a": JobStatus.INPROGRESS}


async def test_sweeps_describe_only_what_list_shows_changed() -> None:
    clock = ManualClock()
    names = [f"job-{i}" for i in range(30)]
    jobs = ScriptedJobs(
        clock,
        {name: [(0, "INPROGRESS"), (100 + 10 * i, "COMPLETED")] for i, name in enumerate(names)},
    )
    transport = FakeTransport(jobs)
    async with Poller(**options(transport, clock, strategy="sweep")) as poller:
        async with poller.watch(names) as events:
            await clock.advance(500)
            seen = [await next_event(events) for _ in range(60)]
        stats = poller.stats
    assert {e.job_name for e in seen if e.is_terminal} == set(names)
    assert stats.sweeps > 0
    # Describe-only would have made 30 jobs x ~40 polls; sweeps: a first describe, one
    # per change List reported, and safety-net describes (none within 500 s).
    assert transport.count("DescribeOptimizationJob") == 60
    assert stats.list_requests["ok"] == transport.count("ListOptimizationJobs")
