"""The testing kit's ManualClock: advance, jump and autojump, and what each wakes when."""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel
import pytest

from asyncoptjob import JobStatus, Poller, PollPolicy, WaitTimeoutError
from asyncoptjob.testing import FakeTransport, ManualClock, ScriptedJobs

#: Every poll a minute apart, exactly: the describes of a lifecycle can be counted.
EVERY_MINUTE = PollPolicy(interval=60, backoff=1.0, jitter=0.0)


async def sleeper(
    clock: ManualClock, seconds: float, woke: list[tuple[str, float]], tag: str
) -> None:
    await clock.sleep(seconds)
    woke.append((tag, clock.now()))


# -- moved by the test ---------------------------------------------------------------------


async def test_advance_wakes_sleepers_in_order_and_lets_each_run_before_time_moves_on() -> None:
    clock = ManualClock(start=100)
    woke: list[tuple[str, float]] = []

    async def twice() -> None:
        await sleeper(clock, 10, woke, "first")
        # Scheduled by a wake-up, inside the advance: it runs at its own time.
        await sleeper(clock, 5, woke, "again")

    async with anyio.create_task_group() as tg:
        tg.start_soon(twice)
        tg.start_soon(sleeper, clock, 12, woke, "other")
        await anyio.lowlevel.checkpoint()
        assert clock.next_deadline == 110
        await clock.advance(30)
    assert woke == [("first", 110), ("other", 112), ("again", 115)]
    assert clock.now() == 130
    assert clock.next_deadline is None


async def test_nothing_wakes_before_its_time() -> None:
    clock = ManualClock()
    woke: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, clock, 60, woke, "a")
        await clock.advance(59.5)
        assert woke == []
        await clock.advance(0.5)
        assert woke == [("a", 60)]


async def test_jump_moves_time_at_once_and_the_woken_run_at_the_next_await() -> None:
    clock = ManualClock()
    woke: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, clock, 5, woke, "due")
        tg.start_soon(sleeper, clock, 50, woke, "later")
        await anyio.lowlevel.checkpoint()
        clock.jump(10)
        assert clock.now() == 10
        assert woke == []  # not yet: the caller has not awaited
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        assert woke == [("due", 10)]
        assert clock.next_deadline == 50
        tg.cancel_scope.cancel()


def test_jump_serves_synchronous_code_that_reads_the_time() -> None:
    clock = ManualClock(start=1_700_000_000.0)
    read = clock.now  # a wall clock for code that takes ``Callable[[], float]``
    clock.jump(2.5)
    assert read() == 1_700_000_002.5


@pytest.mark.parametrize("seconds", [-1.0, math.nan])
async def test_time_only_moves_forward(seconds: float) -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="only moves forward"):
        await clock.advance(seconds)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.jump(seconds)
    assert clock.now() == 0


async def test_a_cancelled_sleeper_is_forgotten() -> None:
    clock = ManualClock()
    with anyio.move_on_after(0):
        await clock.sleep(10)
    assert clock.next_deadline is None
    await clock.sleep(0)  # no time to wait: a checkpoint, whatever the clock
    assert clock.now() == 0


# -- autojump ------------------------------------------------------------------------------


async def test_autojump_passes_a_lone_sleep_at_once() -> None:
    clock = ManualClock(autojump=True)
    await clock.sleep(3600)
    assert clock.now() == 3600


async def test_autojump_wakes_concurrent_sleepers_each_at_its_own_time() -> None:
    clock = ManualClock(autojump=True)
    woke: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, clock, 10, woke, "ten")
        tg.start_soon(sleeper, clock, 3, woke, "three")
        tg.start_soon(sleeper, clock, 3, woke, "three again")
    # Time is shared, not added up: the last wake-up is at 10, not at 16.
    assert sorted(woke) == [("ten", 10), ("three", 3), ("three again", 3)]
    assert clock.now() == 10


async def test_autojump_waits_for_every_ready_task_first() -> None:
    clock = ManualClock(autojump=True)
    woke: list[tuple[str, float]] = []

    async def busy_then_sleep() -> None:
        for _ in range(5):  # work that yields: ready all along, so time must not jump
            await anyio.lowlevel.checkpoint()
        await sleeper(clock, 2, woke, "busy")

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, clock, 10, woke, "idle")
        tg.start_soon(busy_then_sleep)
    assert woke == [("busy", 2), ("idle", 10)]


async def test_autojump_never_passes_a_task_that_waits_for_another() -> None:
    clock = ManualClock(autojump=True)
    handed = anyio.Event()
    woke: list[tuple[str, float]] = []

    async def waits_for_the_hand_over() -> None:
        await handed.wait()
        await sleeper(clock, 1, woke, "after")

    async def hands_over() -> None:
        await sleeper(clock, 4, woke, "before")
        handed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waits_for_the_hand_over)
        tg.start_soon(hands_over)
        tg.start_soon(sleeper, clock, 30, woke, "last")
    assert woke == [("before", 4), ("after", 5), ("last", 30)]


async def test_autojump_goes_on_when_the_earliest_sleeper_is_cancelled() -> None:
    clock = ManualClock(autojump=True)
    woke: list[tuple[str, float]] = []
    early = anyio.CancelScope()

    async def cancelled() -> None:
        with early:
            await sleeper(clock, 1, woke, "cancelled")

    with anyio.fail_after(10):  # a hang guard: the later sleeper must take over
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper, clock, 10, woke, "kept")
            tg.start_soon(cancelled)
            await anyio.lowlevel.checkpoint()  # both asleep; the earliest is cancelled
            early.cancel()
    assert woke == [("kept", 10)]
    assert clock.now() == 10


async def test_autojump_runs_a_scripted_lifecycle_without_a_single_advance() -> None:
    clock = ManualClock(autojump=True)
    jobs = ScriptedJobs(
        clock, {"job-a": [(0, "STARTING"), (90, "INPROGRESS"), (3600, "COMPLETED")]}
    )
    transport = FakeTransport(jobs)
    async with Poller(transport=transport, clock=clock, poll_interval=EVERY_MINUTE) as poller:
        description = await poller.wait_until_done("job-a")
    assert description["OptimizationJobStatus"] == JobStatus.COMPLETED
    # An hour of polls a minute apart, seen in virtual time: at 0, 60, ..., 3600.
    assert clock.now() == 3600
    assert transport.count(job_name="job-a") == 3600 // 60 + 1


async def test_autojump_brings_a_timeout_without_waiting_for_it() -> None:
    clock = ManualClock(autojump=True)
    jobs = ScriptedJobs(clock, {"job-a": [(0, "INPROGRESS")]})
    async with Poller(transport=FakeTransport(jobs), clock=clock, poll_interval=EVERY_MINUTE) as p:
        with pytest.raises(WaitTimeoutError) as info:
            await p.wait_until_done("job-a", timeout=600)
    assert info.value.pending == {"job-a": JobStatus.INPROGRESS}
    # At the deadline, give or take the last look's wait for a token: not a poll later.
    assert 600 <= clock.now() < 600 + EVERY_MINUTE.interval


def test_the_clock_says_what_it_is() -> None:
    assert repr(ManualClock(5)) == "ManualClock(now=5.0, sleepers=0)"
    assert repr(ManualClock(autojump=True)) == "ManualClock(now=0.0, sleepers=0, autojump=True)"
