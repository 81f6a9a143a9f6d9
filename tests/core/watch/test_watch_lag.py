"""Buffered events go out in bursts: the caller's loop runs between two.

A consumer that handles its events without awaiting anything would otherwise hold the
loop for as long as the buffer lasts (thousands of events after a busy second). Nothing
here measures time: a spinner task counts its turns on the loop, and the burst length
(``BURST``) is set to 0 (a breath after every event) or to an hour (none).
"""

from __future__ import annotations

import gc
from datetime import datetime, timezone
from typing import Any

import pytest

from asyncoptjob import (
    JobErrorEvent,
    JobStatus,
    Poller,
    StatusChange,
    WaitTimeoutError,
    _breath,
    _subscription,
    _watch,
)
from asyncoptjob._subscription import Subscription
from asyncoptjob.mock import Lifecycle, MockSageMaker
from asyncoptjob.testing import describe_response
from tests.core.test_slices import spinning
from tests.helpers import opts, wait_until

FINISHED = Lifecycle(starting=(0.0, 0.0), in_progress=(0.0, 0.0))
RUNNING = Lifecycle(starting=(0.0, 0.0), in_progress=(float("inf"), float("inf")))
JOBS = 40


async def _turns_while_reading(seed: int, aio_session: Any, **options: Any) -> int:
    """The turns a spinner task has on the loop while a watch's events for :data:`JOBS`
    finished jobs are read, once every one is buffered (each checked)."""
    async with MockSageMaker(seed=seed, lifecycle=FINISHED) as mock:
        names = mock.seed_jobs(JOBS, prefix="burst")
        async with Poller(**opts(mock, aio_session, strategy="describe"), **options) as poller:
            hub = poller._running().hub
            async with poller.watch(names) as events:
                (sub,) = hub.subscriptions
                # Every job's terminal event is buffered before the consumer reads one.
                await wait_until(lambda: not sub.remaining, what="every event buffered")
                async with spinning() as spinner:
                    before = spinner.turns
                    seen = [event async for event in events]  # awaits nothing else
                    turns = spinner.turns - before
    assert sorted(event.job_name for event in seen) == sorted(names)
    assert all(isinstance(event, StatusChange) and event.is_terminal for event in seen)
    return turns


@pytest.mark.parametrize(("burst", "breathes"), [(0.0, True), (3600.0, False)])
async def test_buffered_events_leave_the_loop_a_turn_after_each_burst(
    aio_session: Any, monkeypatch: pytest.MonkeyPatch, burst: float, breathes: bool
) -> None:
    monkeypatch.setattr(_breath, "BURST", burst)
    monkeypatch.setattr(_subscription, "FILL_SLICE", 7)  # the watch fills its names in slices
    turns = await _turns_while_reading(21, aio_session)
    if breathes:
        assert turns >= JOBS - 1
    else:
        assert turns == 0  # without the breaths, the whole buffer in one turn


async def test_a_poller_with_loop_burst_none_takes_no_breaths(
    aio_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_breath, "BURST", 0.0)  # the default would breathe after each event
    turns = await _turns_while_reading(23, aio_session, loop_burst=None)
    assert turns == 0
    # Closed, the Poller no longer counts: the default is back for the loop's next steps.
    assert _breath.loop_breather()._burst is None


async def test_a_timeout_still_reports_each_unfinished_jobs_last_status(
    aio_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last look goes in slices (here of 3 jobs), the loop running between them.
    monkeypatch.setattr(_watch, "LIST_SLICE", 3)
    async with MockSageMaker(seed=22, lifecycle=RUNNING) as mock:
        names = mock.seed_jobs(8, prefix="late")
        async with Poller(**opts(mock, aio_session, strategy="describe")) as poller:
            seen: list[StatusChange] = []
            with pytest.raises(WaitTimeoutError) as caught:
                async for event in poller.watch(names, timeout=1.0):
                    assert isinstance(event, StatusChange)
                    seen.append(event)
    assert list(caught.value.pending) == names
    last = {event.job_name: event.status for event in seen}
    assert caught.value.pending == {name: last.get(name) for name in names}
    assert set(last) == set(names)  # each running job was seen (the last look at least)


def test_a_subscriptions_unfinished_jobs_are_never_walked_by_the_garbage_collector() -> None:
    names = [f"job-{i}" for i in range(5)]
    sub = Subscription(names)
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    done = JobStatus.COMPLETED
    description: Any = describe_response(names[1], done)
    sub.deliver(StatusChange(names[1], None, done, description, at), terminal=True)
    assert sub.remaining == {name for name in names if name != names[1]}
    assert list(sub.remaining) == [name for name in names if name != names[1]]
    assert not gc.is_tracked(sub._remaining)  # a dict of strings: skipped by every collection


async def test_a_large_subscription_takes_its_names_in_slices_that_let_the_loop_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_subscription, "FILL_SLICE", 10)
    names = [f"job-{i}" for i in range(200)]
    sub = Subscription(names)
    assert list(sub.remaining) == names[:10]  # the first slice at once
    async with spinning() as spinner:
        before = spinner.turns
        await sub.fill()
        turns = spinner.turns - before
    assert list(sub.remaining) == names
    assert turns >= len(names) // 10 - 1
    # Once only (Hub.attach asks too): a second fill must not bring an ended job back.
    sub.deliver(JobErrorEvent(names[20], RuntimeError("gone")), terminal=True)
    await sub.fill()
    assert list(sub.remaining) == names[:20] + names[21:]
