"""Large batches of work yield in slices: the caller's loop keeps running meanwhile.

Nothing here measures time. A spinner task counts its turns on the loop while a large
batch is processed; the slice sizes are set low so that the batches stay small.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel
import pytest

from asyncoptjob import Poller, _breath, _hub, _names
from asyncoptjob._breath import Breather
from asyncoptjob._fleet import _store
from asyncoptjob._names import Unchecked, check_names
from asyncoptjob._state import ConsumerCursors, _consumer
from asyncoptjob._state._store import BatchedStore, Cursor
from asyncoptjob.testing import FakeTransport, ManualClock, RedisServer, describe_response

SLICE = 10
NAMES = [f"job-{i}" for i in range(20 * SLICE)]


class Spinner:
    """Counts its turns on the event loop."""

    def __init__(self) -> None:
        self.turns = 0

    async def run(self) -> None:
        while True:
            self.turns += 1
            await anyio.lowlevel.checkpoint()


@asynccontextmanager
async def spinning() -> AsyncIterator[Spinner]:
    spinner = Spinner()
    async with anyio.create_task_group() as tg:
        tg.start_soon(spinner.run)
        await anyio.lowlevel.checkpoint()
        yield spinner
        tg.cancel_scope.cancel()


def running_jobs() -> FakeTransport:
    return FakeTransport(lambda request: describe_response(request.job_name, "INPROGRESS"))


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_names, "CHECK_SLICE", SLICE)
    monkeypatch.setattr(_hub, "DETACH_SLICE", SLICE)


@pytest.mark.usefixtures("small_slices")
async def test_many_names_are_checked_in_slices_that_let_the_loop_run() -> None:
    unchecked = check_names([*NAMES, NAMES[0]])
    assert isinstance(unchecked, Unchecked)  # left for later: too many to check at once
    async with spinning() as spinner:
        before = spinner.turns
        valid = await unchecked.check()
        turns = spinner.turns - before
    assert valid == NAMES  # the duplicate collapsed, the order kept
    assert turns >= len(NAMES) // SLICE - 1


@pytest.mark.usefixtures("small_slices")
async def test_invalid_names_among_many_fail_the_watch_before_any_request() -> None:
    names = [*NAMES, "bad_name", *NAMES[:5], "-worse-"]
    transport = running_jobs()
    async with Poller(transport=transport, clock=ManualClock(), strategy="describe") as poller:
        watch = poller.watch(names)  # not checked yet: more than a slice
        with pytest.raises(ValueError, match=r"2 job names are not valid: 'bad_name', '-worse-'"):
            async with watch:
                pass
        with pytest.raises(ValueError, match="bad_name"):
            async for _ in poller.watch(names):
                pass
        with pytest.raises(ValueError, match="bad_name"):
            await poller.wait_until_done(names)
    assert transport.requests == []


@pytest.mark.usefixtures("small_slices")
async def test_few_names_are_still_checked_when_the_watch_is_made() -> None:
    async with Poller(transport=running_jobs(), clock=ManualClock()) as poller:
        with pytest.raises(ValueError, match="bad_name"):
            poller.watch(["job-a", "bad_name"])
        # Many names, a bad one among the first slice: wrong input, every offender now.
        with pytest.raises(ValueError, match=r"2 job names are not valid: 'bad_name', '-x'"):
            poller.watch(["bad_name", *NAMES, "-x"])
        with pytest.raises(TypeError):
            poller.watch(42)  # type: ignore[arg-type]


@pytest.mark.usefixtures("small_slices")
async def test_a_large_unsubscribe_drops_its_jobs_in_slices_that_let_the_loop_run() -> None:
    async with (
        Poller(transport=running_jobs(), clock=ManualClock(), strategy="describe") as poller,
        spinning() as spinner,
    ):
        hub = poller._running().hub
        async with poller.watch(NAMES):
            assert len(hub.jobs) == len(NAMES)
        assert hub.subscriptions == set()  # gone at once: no more events for it
        assert len(hub.jobs) > 0  # its jobs leave in slices
        before = spinner.turns
        while hub.jobs:
            await anyio.lowlevel.checkpoint()
        turns = spinner.turns - before
    assert turns >= len(NAMES) // SLICE - 1


async def test_a_large_list_is_freed_in_slices_that_let_the_loop_run() -> None:
    # What a closing hub does with its due-queue's 100,000 entries (DueQueue.clear).
    items = [(float(i), i, name) for i, name in enumerate(NAMES)]
    async with spinning() as spinner:
        before = spinner.turns
        await _breath.dropped(items, SLICE)
        turns = spinner.turns - before
    assert items == []
    assert turns >= len(NAMES) // SLICE - 1


class InstantStore(BatchedStore):
    """A state store that answers at once (no I/O, no await): no cursors yet."""

    async def _load(self, consumer: str, names: Sequence[str]) -> dict[str, Cursor]:
        return {}

    async def register(self, consumer: str, names: Sequence[str]) -> None:
        self.registered = list(names)


async def test_a_durable_watch_sorts_out_many_cursors_in_slices_that_let_the_loop_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_consumer, "START_SLICE", SLICE)
    cursors = ConsumerCursors("census")
    store = InstantStore()
    cursors.use(store)
    async with spinning() as spinner:
        before = spinner.turns
        watched, since = await cursors.start(NAMES)
        turns = spinner.turns - before
    assert (watched, since, store.registered) == (NAMES, {}, NAMES)
    assert turns >= len(NAMES) // SLICE - 1


@pytest.mark.usefixtures("small_slices")
async def test_a_job_watched_again_while_its_old_subscription_leaves_stays_watched() -> None:
    async with Poller(transport=running_jobs(), clock=ManualClock(), strategy="describe") as poller:
        hub = poller._running().hub
        async with poller.watch(NAMES):
            pass
        async with poller.watch(NAMES[-1:]):
            while len(hub.jobs) > 1:
                await anyio.lowlevel.checkpoint()
            assert list(hub.jobs) == NAMES[-1:]
        assert not hub.jobs


async def test_a_fleet_attaches_many_jobs_in_slices_that_let_the_loop_run(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_hub, "ATTACH_SLICE", SLICE)
    monkeypatch.setattr(_store, "CHUNK", SLICE // 2)
    options = {"transport": running_jobs(), "strategy": "describe", "redis_url": redis_server.url}
    async with Poller(**options) as poller, spinning() as spinner:  # type: ignore[arg-type]
        before = spinner.turns
        async with poller.watch(NAMES):
            turns = spinner.turns - before
        fleet = poller.stats.fleet
    assert fleet is not None
    assert fleet.connected
    # At least a turn between slices, and between the Redis calls of a slice.
    assert turns >= 2 * (len(NAMES) // SLICE) - 1


class TimerTicker:
    """Counts the turns of a timer due at once, re-armed each time (a host's timer)."""

    def __init__(self) -> None:
        self.ticks = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(0, self._tick)

    def _tick(self) -> None:
        self.ticks += 1
        self._handle = self._loop.call_later(0, self._tick)

    def stop(self) -> None:
        self._handle.cancel()


async def _steps_by_tick(breather: Breather, workers: int = 4, steps: int = 3) -> list[int]:
    """The host timer's tick count at each of ``workers`` x ``steps`` library steps."""
    ticks_seen: list[int] = []
    ticker = TimerTicker()

    async def worker() -> None:
        for _ in range(steps):
            await breather.turn()
            ticks_seen.append(ticker.ticks)

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)
    ticker.stop()
    return ticks_seen


async def test_the_library_s_steps_let_a_host_s_due_timer_run_between_bursts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_breath, "BURST", 0.0)  # every step is a burst of its own
    steps = 5
    ticks_seen = await _steps_by_tick(Breather(), workers=16, steps=steps)
    # A breath lets one burst through (here one step), not every step that waited for
    # it: 16 steps waiting together (16 answers arrived at once) would otherwise run back
    # to back in one turn of the loop. The host's timer runs between any two steps.
    assert len(ticks_seen) == 16 * steps
    assert len(set(ticks_seen)) == 16 * steps
    assert ticks_seen == sorted(ticks_seen)


async def test_the_least_loop_burst_of_the_open_pollers_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_breath, "BURST", 0.0)  # the default: a breath before every step
    breather = Breather()
    # A Poller with loop_burst=None open: no breaths. Every step runs in the loop turn it
    # is ready in, the host's timer never between two (12 steps, each ready at once).
    release_none = breather.hold(None)
    assert len(set(await _steps_by_tick(breather))) == 1
    # A second Poller whose burst is always spent: a breath before each step.
    release_zero = breather.hold(0.0)
    seen = await _steps_by_tick(breather)
    assert len(set(seen)) == len(seen) == 12
    release_zero()  # that Poller closed: no breaths again
    assert len(set(await _steps_by_tick(breather))) == 1
    release_none()  # none open: the library's default
    seen = await _steps_by_tick(breather)
    assert len(set(seen)) == len(seen) == 12


async def test_a_waiter_cancelled_does_not_cancel_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_breath, "BURST", 0.0)
    breather = Breather()
    done: list[str] = []

    async def wait(name: str) -> None:
        await breather.turn()
        done.append(name)

    loop = asyncio.get_running_loop()
    cancelled = loop.create_task(wait("cancelled"))
    kept = loop.create_task(wait("kept"))
    await asyncio.sleep(0)  # both wait for the breath now
    cancelled.cancel()
    await asyncio.wait({cancelled, kept})
    assert done == ["kept"]
    assert cancelled.cancelled()


def test_every_step_on_a_loop_takes_its_turn_from_one_breather() -> None:
    # The describes, the List pages and the watches' events share one burst per loop:
    # bursts of their own would add up in one turn of the loop.
    async def twice() -> tuple[Breather, Breather]:
        return _breath.loop_breather(), _breath.loop_breather()

    first, again = asyncio.run(twice())
    other, _ = asyncio.run(twice())
    assert first is again
    assert other is not first  # a loop of its own, a breather of its own
