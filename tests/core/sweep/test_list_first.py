"""``SweepPolicy(confirm="terminal")``: List's non-terminal changes are events at once.

Every test runs the mock over real HTTP; the invariants (forward order, one terminal
outcome per job, nothing missed, not-found handling) are checked under List's lag and
its empty pages with a ``NextToken``.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timezone
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asyncoptjob import (
    JobStatus,
    Poller,
    StatusChange,
    SweepPolicy,
)
from asyncoptjob._job import JobTable
from asyncoptjob._listing import SLICE, Listings
from asyncoptjob._stats import Statistics
from asyncoptjob._sweep import Relister
from asyncoptjob.mock import Faults, Lifecycle, MockSageMaker
from asyncoptjob.testing import FakeTransport, ManualClock, check_events
from tests.core.sweep.test_sweep import (
    QUICK_RETRY,
    Pages,
    lists,
    make_sweeper,
    note,
    sweep_opts,
)
from tests.fleet.test_fleet_events import counting
from tests.helpers import FAST_POLL


async def watch_list_first(
    mock: MockSageMaker, aio_session: Any, count: int, **policy: Any
) -> tuple[list[str], dict[str, list[Any]]]:
    """Seed ``count`` jobs, watch them to the end with ``confirm="terminal"``; check them.

    Every job ends in its true final status, from a describe (a full description), and
    every event from List carries its List entry.
    """
    sweep = SweepPolicy(
        **{
            "interval": 0.05,
            "overlap": 1.0,
            "safety_interval": 30,
            "max_rate": None,
            "confirm": "terminal",
            **policy,
        }
    )
    async with Poller(**sweep_opts(mock, aio_session, sweep=sweep)) as poller:
        names = mock.seed_jobs(count)
        events = [e async for e in poller.watch(names)]
    by_job = check_events(events, names)
    truth = mock.transitions(names)
    for name, seq in by_job.items():
        last = seq[-1]
        assert isinstance(last, StatusChange)
        assert last.status == truth[name][-1][0]
        assert last.source == "describe"
        assert last.summary is None
        for event in seq:
            assert isinstance(event, StatusChange)
            if event.source == "list":
                assert not event.status.is_terminal
                assert event.summary is not None
                assert event.summary["OptimizationJobStatus"] == event.status
                assert event.description["OptimizationJobStatus"] == event.status
                assert "OptimizationTypes" not in event.description
    return names, by_job


def from_list(by_job: dict[str, list[Any]]) -> int:
    return sum(1 for seq in by_job.values() for e in seq if e.source == "list")


async def test_non_terminal_changes_come_from_list_without_a_describe(aio_session: Any) -> None:
    lifecycle = Lifecycle(starting=(0.3, 0.5), in_progress=(0.6, 1.2), failure_rate=0.3)
    async with MockSageMaker(seed=51, lifecycle=lifecycle) as mock:
        names, by_job = await watch_list_first(mock, aio_session, 40)
        assert from_list(by_job) > 0
        describes = mock.stats().count("DescribeOptimizationJob")
        # The first look and the terminal confirmation: nothing in between.
        assert describes <= 2 * len(names)
        for name, seq in by_job.items():
            if seq[-1].status == "FAILED":
                assert "FailureReason" in seq[-1].description, name


async def test_list_lag_keeps_every_invariant(aio_session: Any) -> None:
    # List trails the truth: it may show INPROGRESS after a describe saw STOPPING or the
    # end. Such stale entries are no news; nothing goes backwards or ends twice.
    lifecycle = Lifecycle(starting=(0.2, 0.4), in_progress=(0.6, 1.2), failure_rate=0.3)
    async with MockSageMaker(seed=52, lifecycle=lifecycle, faults=Faults(list_lag=0.3)) as mock:
        names, by_job = await watch_list_first(mock, aio_session, 40)
        assert from_list(by_job) > 0
        assert mock.stats().count("DescribeOptimizationJob") <= 2 * len(names)


async def test_empty_pages_with_a_token_miss_nothing(aio_session: Any) -> None:
    lifecycle = Lifecycle(starting=(0.2, 0.3), in_progress=(0.4, 0.8))
    faults = Faults(empty_list_pages=4)
    async with MockSageMaker(seed=53, lifecycle=lifecycle, faults=faults) as mock:
        await watch_list_first(mock, aio_session, 30, max_pages=3)


async def test_a_list_that_never_shows_a_job_loses_nothing(aio_session: Any) -> None:
    # List misses every entry: the safety net's describes report every lifecycle.
    lifecycle = Lifecycle(starting=(0.1, 0.3), in_progress=(0.5, 1.0), failure_rate=0.3)
    faults = Faults(list_lag=math.inf)
    async with MockSageMaker(seed=54, lifecycle=lifecycle, faults=faults) as mock:
        _, by_job = await watch_list_first(mock, aio_session, 20, safety_interval=0.25)
        assert from_list(by_job) == 0


def test_confirm_is_validated_and_change_stays_the_default() -> None:
    assert SweepPolicy().confirm == "change"
    with pytest.raises(ValueError, match="confirm"):
        SweepPolicy(confirm="never")  # type: ignore[arg-type]


def test_a_status_change_is_from_a_describe_unless_told() -> None:
    at = datetime.now(timezone.utc)
    event = StatusChange("a", None, JobStatus.STARTING, {"OptimizationJobName": "a"}, at)
    assert event.source == "describe"
    assert event.summary is None


async def test_a_job_the_first_sweep_lists_needs_no_describe_at_attach(aio_session: Any) -> None:
    # The jobs are new, so the first sweep's window lists them all: their first event
    # comes from List, and the only describe left per job is its terminal confirmation.
    lifecycle = Lifecycle(starting=(0.5, 0.6), in_progress=(0.8, 1.2), failure_rate=0.3)
    async with MockSageMaker(seed=57, lifecycle=lifecycle) as mock:
        names, by_job = await watch_list_first(mock, aio_session, 40)
        firsts = [seq[0] for seq in by_job.values()]
        assert any(first.source == "list" for first in firsts)
        described_first = sum(1 for first in firsts if first.source == "describe")
        # A first event from a describe (the fallback, or a job that ended before the
        # first sweep) is that job's one extra describe; no other job has one.
        assert mock.stats().count("DescribeOptimizationJob") <= len(names) + described_first


async def test_re_lists_stand_in_for_safety_net_describes(aio_session: Any) -> None:
    # Jobs run several safety intervals: a re-list of their window shows every one of
    # them each time, so no safety-net describe is needed; only terminal confirmations.
    lifecycle = Lifecycle(starting=(0.4, 0.5), in_progress=(1.5, 2.0), failure_rate=0.3)
    async with MockSageMaker(seed=58, lifecycle=lifecycle) as mock:
        names, by_job = await watch_list_first(mock, aio_session, 30, safety_interval=0.3)
        described_first = sum(1 for seq in by_job.values() if seq[0].source == "describe")
        lists = mock.stats().count("ListOptimizationJobs")
        assert mock.stats().count("DescribeOptimizationJob") <= len(names) + described_first
        assert lists > 0


async def test_a_re_list_reads_the_watched_window_page_by_page() -> None:
    wall = ManualClock(start=5_000.0)
    pages = Pages([([("a", "INPROGRESS")], True), ([], True), ([("b", "STARTING")], False)])
    transport = FakeTransport(pages)
    relister = Relister(make_sweeper(transport, wall, overlap=30, max_pages=2))
    relister.begin(4_000.0)
    shown: list[tuple[str, str]] = []
    assert await relister.sweep(note(shown))
    assert not relister.done  # two pages a turn: resumed next time
    assert await relister.sweep(note(shown))
    assert relister.done
    assert shown == [("a", "INPROGRESS"), ("b", "STARTING")]
    first, _, third = lists(transport)
    assert first["CreationTimeAfter"].timestamp() == 4_000.0 - 30
    assert "LastModifiedTimeAfter" not in first
    assert third["NextToken"] == "token-2"  # the same window, resumed
    assert third["CreationTimeAfter"] == first["CreationTimeAfter"]


async def test_a_job_list_never_shows_is_caught_by_a_re_list(aio_session: Any) -> None:
    # One job is missing from List for good (List lag and empty pages on, too): no re-list
    # shows it, so after each one it is described, and its terminal change is found.
    lifecycle = Lifecycle(starting=(0.2, 0.3), in_progress=(1.2, 1.6), failure_rate=0.3)
    async with MockSageMaker(seed=59, lifecycle=lifecycle) as mock:
        names = mock.seed_jobs(20)
        hidden = names[5]
        mock.faults.update(list_hidden_jobs=[hidden], list_lag=0.1, empty_list_pages=1)
        sweep = SweepPolicy(
            interval=0.05, overlap=1.0, safety_interval=0.3, max_rate=None, confirm="terminal"
        )
        async with (
            counting(mock, aio_session) as transport,
            Poller(
                transport=transport,
                retry=QUICK_RETRY,
                strategy="sweep",
                sweep=sweep,
                poll_interval=FAST_POLL,
                initial_rate=None,
            ) as poller,
        ):
            events = [e async for e in poller.watch(names)]
        by_job = check_events(events, names)
        truth = mock.transitions(names)
        assert by_job[hidden][-1].status == truth[hidden][-1][0]
        assert all(event.source == "describe" for event in by_job[hidden])
        assert from_list(by_job) > 0
        relists = [p for p in lists(transport) if "CreationTimeAfter" in p]
        assert relists, "no re-list ran"
        # Re-lists showed every other job, so none of them needed a safety describe: the
        # hidden job is the only one described more than at its first look and its end.
        described = transport.describes
        assert described[hidden] >= 2
        assert all(described[name] <= 2 for name in names if name != hidden), described


class CountingPacer:
    """What a re-list's walk asks of the pacer, counted (no workers behind it)."""

    sweeps = None

    def __init__(self) -> None:
        self.clock = ManualClock(start=100.0)
        self.calls = 0

    def next(self, job: Any) -> None:
        self.calls += 1

    def soon(self, job: Any) -> None:
        self.calls += 1


async def test_a_walk_over_a_large_table_yields_to_the_loop_in_slices() -> None:
    # 100,000 watched jobs: a re-list's walk (and the one that finds the oldest job) must
    # let other tasks run between slices of SLICE jobs, never all at once. Counted in
    # ticks of a concurrent task, never in wall time.
    jobs = JobTable()
    for i in range(100_000):
        job = jobs.add(f"job-{i}", 0.0)
        job.status = JobStatus.INPROGRESS
        job.created = 1_000.0 + i
    pacer = CountingPacer()
    listings = Listings(jobs, pacer, Statistics(), None)  # type: ignore[arg-type]
    calls_at_ticks: list[int] = []
    done = anyio.Event()

    async def ticker() -> None:
        while not done.is_set():
            calls_at_ticks.append(pacer.calls)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.lowlevel.checkpoint()
        assert await listings.oldest_created() == 1_000.0
        ticks_in_oldest = len(calls_at_ticks)
        await listings.relisted({f"job-{i}" for i in range(0, 100_000, 2)}, started=50.0)
        done.set()
    assert pacer.calls == 100_000
    assert ticks_in_oldest >= 100_000 // SLICE - 1
    steps = [b - a for a, b in itertools.pairwise(calls_at_ticks)]
    assert len(steps) >= 2 * (100_000 // SLICE) - 2
    assert max(steps) <= SLICE


async def test_auto_sweeps_list_first_when_asked_and_never_by_itself(aio_session: Any) -> None:
    # strategy="auto" uses the confirm mode it is given: list-first once enough jobs are
    # watched with confirm="terminal"; with the default, every event is a describe's.
    lifecycle = Lifecycle(starting=(0.3, 0.5), in_progress=(0.6, 1.0), failure_rate=0.3)
    sources = {}
    for confirm in ("terminal", "change"):
        async with MockSageMaker(seed=60, lifecycle=lifecycle) as mock:
            sweep = SweepPolicy(
                interval=0.05, overlap=1.0, max_rate=None, threshold=5, confirm=confirm
            )
            options = sweep_opts(mock, aio_session, sweep=sweep, strategy="auto")
            async with Poller(**options) as poller:
                names = mock.seed_jobs(20)
                events = [e async for e in poller.watch(names)]
                assert poller.stats.sweeps > 0
            check_events(events, names)
            sources[confirm] = {e.source for e in events if isinstance(e, StatusChange)}
    assert "list" in sources["terminal"]
    assert sources["change"] == {"describe"}
