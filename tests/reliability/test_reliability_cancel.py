"""Cancellation at random points, and Pollers closed under their callers.

Callers are cancelled after seeded random delays, so the cancellation lands anywhere:
while a request is on the wire, in a backoff sleep, waiting for a rate-budget token,
between two events, in the last look at a deadline. Whatever the point: the caller is
never stuck, no task outlives it, asyncio reports nothing, and a shared Poller's job
table forgets whatever only that caller watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import anyio
import pytest

from asyncoptjob import (
    Event,
    Poller,
    PollerClosedError,
    RetryPolicy,
    WaitTimeoutError,
    wait_until_done,
    watch,
)
from asyncoptjob.mock import Faults, Lifecycle
from asyncoptjob.testing import check_events
from tests.helpers import (
    FAST_POLL,
    FOREVER,
    QUICK_RETRY,
    OpenMock,
    check_no_leaks,
    library_tasks,
    quick_retry_opts,
    wait_until,
)

LIFE = Lifecycle(starting=(0.01, 0.05), in_progress=(0.02, 0.2), stopping=(0.01, 0.03))
#: Enough faults that a random instant finds a backoff sleep in progress (5xx, drops,
#: bad bodies all retry), and latency so that requests are on the wire for a while. No
#: random throttles: each one cuts the adaptive rate, and callers would rarely finish.
CHURN = Faults(
    error_rate=0.1, drop_rate=0.03, malformed_rate=0.03, latency_ms=2, latency_jitter_ms=25
)
#: A tight rate budget for the shared Poller, so callers also wait for tokens.
SHARED_MAX_RATE = 40
ITERATIONS = 25


async def _drive(mode: str, names: list[str], poller: Poller, options: dict[str, Any]) -> None:
    """One caller, in one of the ways the library can be used; runs until done."""
    if mode == "watch":
        async for _ in watch(names, **options):
            pass
    elif mode == "watch_ctx":
        async with watch(names, timeout=0.3, **options) as events:
            async for _ in events:
                await asyncio.sleep(0)
    elif mode == "module_wait":
        await wait_until_done(names, **options)
    elif mode == "poller_watch":
        async for _ in poller.watch(names):
            pass
    elif mode == "poller_ctx":
        async with poller.watch(names, timeout=0.3) as events:
            async for _ in events:
                await asyncio.sleep(0.01)  # a slow reader
    elif mode == "poller_wait":
        await poller.wait_until_done(names, timeout=0.4)
    elif mode == "poller_gather":
        await asyncio.gather(
            poller.wait_until_done(names), poller.wait_until_done(names[:1], timeout=0.2)
        )
    else:  # a whole Poller of its own, cancelled while it opens, runs or closes
        async with Poller(**options) as own:
            await own.wait_until_done(names)


MODES = [
    "watch",
    "watch_ctx",
    "module_wait",
    "poller_watch",
    "poller_ctx",
    "poller_wait",
    "poller_gather",
    "own_poller",
]


async def test_callers_cancelled_at_random_points_never_hang_or_leak(
    checked_mock: OpenMock, aio_session: Any, make_aio_client: Any
) -> None:
    rng = random.Random(20_240_601)
    outcomes: dict[str, int] = {}
    mock = await checked_mock(seed=201, lifecycle=LIFE, faults=CHURN)
    async with make_aio_client(mock.url) as client:
        # Caller-owned client for most modes (cheap); the library's own for some.
        shared = {"client": client, "poll_interval": FAST_POLL, "retry": QUICK_RETRY}
        own = quick_retry_opts(mock, aio_session)
        async with Poller(**shared, max_rate=SHARED_MAX_RATE) as poller:
            warmup = mock.seed_jobs(1, prefix="warmup")
            await poller.wait_until_done(warmup)
            # The Poller's own background tasks: all that may stay between callers.
            baseline = {t for t in asyncio.all_tasks() if not t.done()}
            for i in range(ITERATIONS):
                names = mock.seed_jobs(rng.randint(1, 5), prefix=f"c{i}")
                mode = rng.choice(MODES)
                options = own if mode in ("module_wait", "own_poller") else shared
                delay = rng.choice([0.0, rng.uniform(0, 0.02), rng.uniform(0, 0.3)])
                with anyio.fail_after(15):  # never a hang
                    with anyio.CancelScope() as scope:
                        scope.deadline = anyio.current_time() + delay
                        with contextlib.suppress(WaitTimeoutError):
                            await _drive(mode, names, poller, options)
                    key = f"{mode}:{'cancelled' if scope.cancelled_caught else 'finished'}"
                    outcomes[key] = outcomes.get(key, 0) + 1
                    # Nothing but the Poller's own tasks survives the caller.
                    leftover = await library_tasks(baseline)
                    assert leftover == set(), (i, mode, delay, leftover)
                    # The shared Poller forgets what only the cancelled caller watched.
                    await wait_until(lambda: poller.stats.subscribers == 0)
                    stats = poller.stats
                    assert stats.jobs_active == 0, (i, mode, stats)
            # The Poller still works after all that.
            (last,) = mock.seed_jobs(1, prefix="last", outcome="COMPLETED")
            done = await poller.wait_until_done(last)
            assert done["OptimizationJobStatus"] == "COMPLETED"
            # Never more connections than the pool allows.
            assert mock.open_connections() <= 16
    # The random delays really did land both before and after the end of the work.
    assert any(k.endswith("cancelled") for k in outcomes), outcomes
    assert any(k.endswith("finished") for k in outcomes), outcomes


async def test_breaking_out_of_watch_at_every_event(
    checked_mock: OpenMock, aio_session: Any
) -> None:
    """Leave the loop after the 1st, 2nd, ... event: each exit reaps everything at once."""
    mock = await checked_mock(seed=202, lifecycle=LIFE, faults=CHURN)
    names = mock.seed_jobs(3)
    total = len([e async for e in watch(names, **quick_retry_opts(mock, aio_session))])
    for stop_after in range(1, total + 1):
        seen: list[Event] = []
        more = mock.seed_jobs(3, prefix=f"b{stop_after}")
        with anyio.fail_after(15):
            async for event in watch(more, **quick_retry_opts(mock, aio_session)):
                seen.append(event)
                if len(seen) == stop_after:
                    break
        await check_no_leaks(mock)
        count = mock.stats().count("DescribeOptimizationJob")
        await asyncio.sleep(0.05)
        assert mock.stats().count("DescribeOptimizationJob") == count  # nothing polls


async def _pending_wait(
    poller: Poller,
    kind: str,
    names: list[str],
    started: anyio.Event,
    closed: anyio.Event,
    out: dict[str, Any],
) -> None:
    try:
        if kind == "watch_iterating":
            async for _ in poller.watch(names):
                started.set()
        elif kind == "watch_slow_reader":
            async with poller.watch(names) as events:
                async for _ in events:
                    started.set()
                    await closed.wait()  # the reader is busy when the Poller closes
        elif kind == "watch_created_early":
            stream = poller.watch(names)
            started.set()
            await closed.wait()  # only iterated after the Poller closed
            async for _ in stream:
                pass
        else:
            started.set()
            await poller.wait_until_done(names)
        out[kind] = "returned"
    except PollerClosedError as exc:
        out[kind] = exc


def described(poller: Poller) -> int:
    """Describes the Poller sent so far, whatever their outcome."""
    return sum(poller.stats.requests.values())


KINDS = [
    "wait_running",  # jobs that never finish
    "wait_backoff",  # every call throttled: in backoff between retries
    "wait_not_found",  # a job still within its not-found grace period
    "watch_iterating",
    "watch_slow_reader",
    "watch_created_early",
]


@pytest.mark.parametrize("close", ["exit", "error", "cancel"])
async def test_closing_a_poller_fails_every_pending_wait_clearly(
    checked_mock: OpenMock, aio_session: Any, close: str
) -> None:
    forever = Lifecycle(starting=(0.01, 0.01), in_progress=(float("inf"), float("inf")))
    mock = await checked_mock(seed=203, lifecycle=forever)
    names = mock.seed_jobs(3)
    throttled = mock.seed_jobs(2, prefix="slow")
    out: dict[str, Any] = {}
    retry = RetryPolicy(initial_wait=0.2, max_wait=1.0, max_elapsed=60)
    poller = Poller(**quick_retry_opts(mock, aio_session, retry=retry, not_found_grace=60))
    jobs = {
        "wait_running": names,
        "wait_backoff": throttled,
        "wait_not_found": ["not-created-yet"],
        "watch_iterating": names,
        "watch_slow_reader": names[:2],
        "watch_created_early": names[1:],
    }

    class Shutdown(Exception):
        pass

    closed = anyio.Event()
    with anyio.fail_after(15):
        # The callers' tasks outlive the Poller, as in a service shutting down.
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:
                try:
                    async with poller:
                        for kind in KINDS:
                            started = anyio.Event()
                            tg.start_soon(
                                _pending_wait, poller, kind, jobs[kind], started, closed, out
                            )
                            await started.wait()
                        # Polling is under way (as many describes as jobs): every wait pends.
                        watched = len({name for names in jobs.values() for name in names})
                        await wait_until(lambda: described(poller) >= watched)
                        mock.set_faults(throttle_rate=1.0)  # now everything goes to backoff
                        await wait_until(lambda: poller.stats.retries > 0)
                        if close == "error":
                            raise Shutdown
                        if close == "cancel":
                            scope.cancel()
                            await anyio.sleep_forever()
                except Shutdown:
                    pass
                finally:
                    closed.set()
    assert set(out) == set(KINDS)
    for kind, outcome in out.items():
        assert isinstance(outcome, PollerClosedError), (kind, outcome)
        assert "closed" in str(outcome)
    with pytest.raises(PollerClosedError):
        poller.watch(names)
    with pytest.raises(PollerClosedError):
        await poller.wait_until_done(names)


async def test_events_before_the_close_are_still_in_order(
    checked_mock: OpenMock, aio_session: Any
) -> None:
    """A Poller closed mid-watch: what the caller got before the error is well-formed."""
    mock = await checked_mock(seed=204, lifecycle=LIFE)
    # Three jobs never end on their own: the Poller always closes mid-watch.
    names = mock.seed_jobs(3) + mock.seed_jobs(3, prefix="long", lifecycle=FOREVER)
    seen: list[Event] = []
    async with anyio.create_task_group() as tg:
        poller = Poller(**quick_retry_opts(mock, aio_session))

        async def reader() -> None:
            with pytest.raises(PollerClosedError):
                async for event in poller.watch(names):
                    seen.append(event)

        async with poller:
            tg.start_soon(reader)
            await wait_until(lambda: len(seen) >= 3)
    unfinished = {e.job_name for e in seen} - {e.job_name for e in seen if e.is_terminal}
    finished = {e.job_name for e in seen} - unfinished
    check_events([e for e in seen if e.job_name in finished], finished)
    for name in unfinished:
        statuses = [e for e in seen if e.job_name == name]
        assert statuses[0].previous_status is None  # type: ignore[union-attr]
