"""Subscription: one caller's buffer of events, filled by the hub, read by the caller."""

from __future__ import annotations

from datetime import datetime, timezone

import anyio
import anyio.lowlevel
import pytest

from asyncoptjob import JobStatus, PollerClosedError, StatusChange
from asyncoptjob._subscription import Subscription
from asyncoptjob.testing import describe_response

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
S, P, C = JobStatus.STARTING, JobStatus.INPROGRESS, JobStatus.COMPLETED


def change(name: str, status: JobStatus, previous: JobStatus | None = None) -> StatusChange:
    return StatusChange(name, previous, status, describe_response(name, status), AT)  # type: ignore[arg-type]


def drain(sub: Subscription) -> list[tuple[str, JobStatus]]:
    """Every buffered event, as ``(job, status)``."""
    out = []
    while (event := sub.get_nowait()) is not None:
        assert isinstance(event, StatusChange)
        out.append((event.job_name, event.status))
    return out


def drain_until_error(sub: Subscription) -> list[tuple[str, JobStatus]]:
    """The buffered events before the subscription's error, which must come next."""
    seen: list[tuple[str, JobStatus]] = []
    with pytest.raises(PollerClosedError):
        while True:
            event = sub.get_nowait()
            assert isinstance(event, StatusChange)
            seen.append((event.job_name, event.status))
    return seen


def test_events_come_out_in_the_order_they_were_delivered() -> None:
    sub = Subscription(["a", "b"])
    assert not sub.has_pending()
    sub.deliver(change("a", S), terminal=False)
    sub.deliver(change("b", P), terminal=False)
    sub.deliver(change("a", P, S), terminal=False)
    assert sub.has_pending()
    assert drain(sub) == [("a", S), ("b", P), ("a", P)]
    assert not sub.has_pending()


def test_the_subscription_is_finished_once_every_job_had_its_terminal_event() -> None:
    sub = Subscription(["a", "b"])
    sub.deliver(change("a", C), terminal=True)
    assert (sub.remaining, sub.is_finished()) == ({"b"}, False)
    sub.deliver(change("b", P), terminal=False)
    assert not sub.is_finished()
    sub.deliver(change("b", C, P), terminal=True)
    assert sub.is_finished()
    # Finished, and the events are still there to read.
    assert drain(sub) == [("a", C), ("b", P), ("b", C)]


async def test_a_reader_waits_until_the_hub_delivers() -> None:
    sub = Subscription(["a"])
    woke = anyio.Event()

    async def reader() -> None:
        await sub.wait()
        woke.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        assert not woke.is_set()  # nothing to read: still waiting
        sub.deliver(change("a", S), terminal=False)
    assert drain(sub) == [("a", S)]


async def test_a_reader_does_not_wait_when_something_is_ready() -> None:
    sub = Subscription(["a"])
    sub.deliver(change("a", C), terminal=True)
    with anyio.fail_after(5):  # a hang guard
        await sub.wait()
    assert drain(sub) == [("a", C)]
    await sub.wait()  # finished: a read would not wait either


async def test_an_error_comes_after_the_events_buffered_before_it() -> None:
    sub = Subscription(["a", "b"])
    sub.deliver(change("a", S), terminal=False)
    sub.fail(PollerClosedError("the Poller is closed"))
    await sub.wait()
    assert sub.is_finished()
    assert drain_until_error(sub) == [("a", S)]
    with pytest.raises(PollerClosedError):  # and again: the subscription stays failed
        sub.get_nowait()


def test_the_first_error_is_the_one_raised() -> None:
    sub = Subscription(["a"])
    sub.fail(PollerClosedError("first"))
    sub.fail(PollerClosedError("second"))
    with pytest.raises(PollerClosedError, match="first"):
        sub.get_nowait()


def test_a_closed_subscription_drops_its_buffer_and_takes_nothing_more() -> None:
    sub = Subscription(["a"])
    sub.deliver(change("a", S), terminal=False)
    sub.close()
    assert sub.get_nowait() is None
    sub.deliver(change("a", C, S), terminal=True)
    sub.fail(PollerClosedError("too late"))
    assert sub.get_nowait() is None
    assert sub.remaining == {"a"}  # nothing was delivered to it any more
    assert sub.has_pending()  # a read would not wait: there is nothing left to wait for
