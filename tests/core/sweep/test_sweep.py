"""List sweeps: the Sweeper on a FakeTransport and a ManualClock, the hub sweeping the mock."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncoptjob import (
    JobErrorEvent,
    JobNotFoundError,
    Poller,
    PollerStats,
    PollPolicy,
    RetryPolicy,
    SweepPolicy,
    ThrottledError,
    TransientError,
    wait_until_done,
    watch,
)
from asyncoptjob._pipeline import Pipeline
from asyncoptjob._sweep import Sweeper
from asyncoptjob.mock import Faults, Lifecycle, MockSageMaker
from asyncoptjob.testing import FakeRequest, FakeTransport, ManualClock, check_events
from tests.helpers import opts, wait_until

QUICK_RETRY = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=1.0, max_attempts=3)
LIST = "ListOptimizationJobs"
#: A scripted page: its (name, status) summaries, and whether a NextToken follows.
Page = tuple[list[tuple[str, str]], bool]


class Pages:
    """A FakeTransport handler serving scripted List pages in order (then empty ones).

    ``fail_with``, while set, is every call's answer instead.
    """

    def __init__(self, pages: list[Page] | None = None) -> None:
        self.pages = list(pages or [])
        self.fail_with: Exception | None = None
        self.calls = 0

    def __call__(self, request: FakeRequest) -> dict[str, Any] | Exception:
        assert request.operation == LIST, "the sweeper never describes"
        self.calls += 1
        if self.fail_with is not None:
            return self.fail_with
        summaries, more = self.pages.pop(0) if self.pages else ([], False)
        page: dict[str, Any] = {
            "OptimizationJobSummaries": [
                {"OptimizationJobName": n, "OptimizationJobStatus": s} for n, s in summaries
            ]
        }
        if more:
            page["NextToken"] = f"token-{self.calls}"
        return page


def lists(transport: FakeTransport) -> list[Mapping[str, Any]]:
    """The parameters of every List call made, in order."""
    return [request.params for request in transport.requests if request.operation == LIST]


def make_sweeper(transport: FakeTransport, wall: ManualClock, **policy: Any) -> Sweeper:
    """A Sweeper on virtual time: retries and budget waits pass by themselves (autojump)."""
    return Sweeper(
        transport,
        SweepPolicy(**{"max_rate": None, **policy}),
        Pipeline(clock=ManualClock(autojump=True), retry=QUICK_RETRY),
        interval=10.0,
        wall_clock=wall.now,
    )


def note(hints: list[tuple[str, str]]) -> Callable[[Mapping[str, Any]], None]:
    """A hint callback that appends each summary's ``(name, status)`` to ``hints``."""
    return lambda s: hints.append((s["OptimizationJobName"], s["OptimizationJobStatus"]))


async def test_sweep_hints_every_listed_job_and_advances_the_watermark() -> None:
    wall = ManualClock(start=1_000.0)
    transport = FakeTransport(
        Pages([([("a", "INPROGRESS"), ("b", "COMPLETED")], True), ([("c", "FAILED")], False)])
    )
    sweeper = make_sweeper(transport, wall, overlap=30)
    hints: list[tuple[str, str]] = []
    wall.jump(50)
    assert await sweeper.sweep(note(hints))
    assert hints == [("a", "INPROGRESS"), ("b", "COMPLETED"), ("c", "FAILED")]
    first, second = lists(transport)
    assert first["MaxResults"] == 100
    assert first["LastModifiedTimeAfter"].timestamp() == 1_000.0 - 30
    assert second["NextToken"] == "token-1"
    assert sweeper.watermark == 1_050.0  # the start of the complete sweep


async def test_empty_pages_with_a_token_never_spin_and_resume_next_sweep() -> None:
    wall = ManualClock(start=1_000.0)
    empty_with_token: Page = ([], True)
    transport = FakeTransport(Pages([empty_with_token] * 7 + [([("x", "COMPLETED")], False)]))
    sweeper = make_sweeper(transport, wall, max_pages=3)
    hints: list[tuple[str, str]] = []
    wall.jump(10)
    assert await sweeper.sweep(note(hints))
    assert len(lists(transport)) == 3  # capped
    assert sweeper.watermark == 1_000.0  # not advanced: the window is not fully read
    assert not sweeper.behind  # empty pages: the next sweep waits its interval
    wall.jump(10)
    await sweeper.sweep(note(hints))
    await sweeper.sweep(note(hints))
    calls = lists(transport)
    assert len(calls) == 8
    assert calls[3]["NextToken"] == "token-3"  # resumed, same window
    assert calls[3]["LastModifiedTimeAfter"] == calls[0]["LastModifiedTimeAfter"]
    assert hints == [("x", "COMPLETED")]
    assert sweeper.watermark == 1_010.0  # the start of the window that was completed


async def test_a_burst_of_changes_is_read_on_without_waiting_an_interval() -> None:
    full = [(f"job-{i}", "INPROGRESS") for i in range(3)]
    transport = FakeTransport(Pages([(full, True)] * 4 + [(full[:1], False)]))
    sweeper = make_sweeper(transport, ManualClock(start=1_000.0), max_pages=2)
    hints: list[tuple[str, str]] = []
    behind = []
    for _ in range(3):
        await sweeper.sweep(note(hints))
        behind.append(sweeper.behind)
    # Two full sweeps stop at max_pages with changes left: read on; the third ends it.
    assert behind == [True, True, False]
    assert len(lists(transport)) == 5
    assert len(hints) == 13


async def test_the_hub_reads_a_burst_in_back_to_back_sweeps(aio_session: Any) -> None:
    # 300 jobs change at once; a page holds 10 and a sweep reads one page. Paced by the
    # interval, the 30 pages would take 30 intervals; behind, the hub reads on at once.
    lifecycle = Lifecycle(starting=(1.5, 1.5), in_progress=(60, 60))
    async with MockSageMaker(seed=41, lifecycle=lifecycle) as mock:
        names = mock.seed_jobs(300)
        policy = SweepPolicy(interval=3, overlap=1.0, max_pages=1, page_size=10, max_rate=None)
        seen: set[str] = set()
        async with Poller(**sweep_opts(mock, aio_session, sweep=policy)) as poller:
            with anyio.fail_after(60):  # a hang guard: paced sweeps would take 90 s
                async with poller.watch(names) as events:
                    async for event in events:
                        if event.status == "INPROGRESS":  # type: ignore[union-attr]
                            seen.add(event.job_name)
                            if len(seen) == len(names):
                                break
            assert poller.stats.sweep_hints > 0
        lists = [r.at for r in mock.requests() if r.operation == "ListOptimizationJobs"]
        assert len(lists) >= len(names) // 10
        # No interval between the sweeps that read the burst (30 x 3 s if paced).
        gaps = [b - a for a, b in itertools.pairwise(lists[: len(names) // 10])]
        assert max(gaps) < policy.interval


async def test_failed_sweep_reports_failure_and_keeps_the_watermark() -> None:
    wall = ManualClock(start=1_000.0)
    pages = Pages()
    pages.fail_with = ThrottledError("Rate exceeded", code="ThrottlingException")
    transport = FakeTransport(pages)
    sweeper = make_sweeper(transport, wall)
    wall.jump(1_000)
    assert not await sweeper.sweep(lambda n, s: None)
    assert sweeper.failures_in_a_row == 1
    assert sweeper.watermark == 1_000.0
    # Retried (each retry waits for the List budget, cut by the throttle) within its bounds.
    assert sweeper.pipeline.stats.requests[LIST]["throttled"] == transport.count(LIST)
    assert 2 <= transport.count(LIST) <= QUICK_RETRY.max_attempts
    pages.fail_with = TransientError("boom", code="InternalFailure")
    assert not await sweeper.sweep(lambda n, s: None)
    assert sweeper.failures_in_a_row == 2
    pages.fail_with = None
    assert await sweeper.sweep(lambda n, s: None)
    assert sweeper.failures_in_a_row == 0


page_strategy = st.tuples(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from(["STARTING", "INPROGRESS", "COMPLETED"]),
        ),
        max_size=4,
    ),
    st.booleans(),
)


@settings(deadline=None, max_examples=60)
@given(
    pages=st.lists(page_strategy, max_size=25),
    max_pages=st.integers(1, 5),
    sweeps=st.integers(1, 12),
)
async def test_sweep_invariants(pages: list[Page], max_pages: int, sweeps: int) -> None:
    """Never more than max_pages per sweep; every listed entry hinted once, in order;
    the watermark never moves back and only moves when a window was fully read."""
    wall = ManualClock(start=1_000.0)
    transport = FakeTransport(Pages(pages))
    sweeper = make_sweeper(transport, wall, max_pages=max_pages)
    hints: list[tuple[str, str]] = []
    watermark = sweeper.watermark
    for _ in range(sweeps):
        wall.jump(5)
        before = transport.count(LIST)
        assert await sweeper.sweep(note(hints))
        assert transport.count(LIST) - before <= max_pages
        assert sweeper.watermark >= watermark
        if sweeper.watermark != watermark:
            # It only moves after the last page of a window (one without a NextToken).
            last = transport.count(LIST) - 1
            assert last >= len(pages) or not pages[last][1]
        watermark = sweeper.watermark
    served = [entry for summaries, _ in pages[: transport.count(LIST)] for entry in summaries]
    assert hints == served


def sweep_opts(mock: MockSageMaker, session: Any, **extra: Any) -> dict[str, Any]:
    sweep = SweepPolicy(interval=0.05, overlap=1.0, safety_interval=30, max_rate=None)
    # Sub-second lifecycles: every job's first describe must come at once (no slow start),
    # or the first describes, not the sweeps, would see the jobs end.
    defaults = {"retry": QUICK_RETRY, "strategy": "sweep", "sweep": sweep}
    return opts(mock, session, **{**defaults, **extra})


async def sweep_to_the_end(
    mock: MockSageMaker, aio_session: Any, count: int, **extra: Any
) -> tuple[list[str], PollerStats]:
    """Seed ``count`` jobs and watch them to the end with sweeps; check every job's events.

    The jobs are seeded once the Poller is open, so a slow client start-up on a busy
    machine cannot let their short lifecycles end before the first look.
    """
    async with Poller(**sweep_opts(mock, aio_session, **extra)) as poller:
        names = mock.seed_jobs(count)
        events = [e async for e in poller.watch(names)]
        # Both read in one step of the loop the in-process mock shares: a List call the
        # endpoint counted that the library has not yet seen answered is on the wire.
        stats = poller.stats
        lists_served = mock.stats().count("ListOptimizationJobs")
        assert sum(stats.list_requests.values()) <= lists_served
        assert lists_served <= sum(stats.list_requests.values()) + stats.in_flight
    by_job = check_events(events, names)
    truth = mock.transitions(names)
    for name, seq in by_job.items():
        assert not isinstance(seq[-1], JobErrorEvent)
        assert seq[-1].status == truth[name][-1][0]
    assert stats.strategy == "sweep"
    assert stats.sweeps > 0
    return names, stats


async def test_sweep_strategy_reports_every_lifecycle_with_fewer_describes(
    aio_session: Any,
) -> None:
    lifecycle = Lifecycle(starting=(0.1, 0.3), in_progress=(0.8, 1.5), failure_rate=0.3)
    async with MockSageMaker(seed=31, lifecycle=lifecycle) as mock:
        names, stats = await sweep_to_the_end(mock, aio_session, 60)
        assert stats.sweep_hints > 0
        describes = mock.stats().count("DescribeOptimizationJob")
        # One describe to start, and one per change a sweep reported (at most three).
        assert describes <= 4 * len(names)


async def test_sweep_with_the_empty_page_quirk_still_misses_nothing(aio_session: Any) -> None:
    lifecycle = Lifecycle(starting=(0.1, 0.2), in_progress=(0.4, 0.8))
    async with MockSageMaker(
        seed=32, lifecycle=lifecycle, faults=Faults(empty_list_pages=4)
    ) as mock:
        names = mock.seed_jobs(30, outcome="COMPLETED")
        policy = SweepPolicy(interval=0.05, overlap=1.0, max_pages=3, max_rate=None)
        events = [e async for e in watch(names, **sweep_opts(mock, aio_session, sweep=policy))]
        by_job = check_events(events, names)
        assert all(seq[-1].status == "COMPLETED" for seq in by_job.values())  # type: ignore[union-attr]


async def test_list_lag_within_the_overlap_is_caught_by_sweeps(aio_session: Any) -> None:
    # List trails the truth by 0.3 s (eventual consistency); the watermark trails the
    # last sweep by 1 s, so every change is still reported by a sweep, not the safety net.
    lifecycle = Lifecycle(starting=(0.1, 0.3), in_progress=(0.6, 1.2), failure_rate=0.3)
    async with MockSageMaker(seed=36, lifecycle=lifecycle, faults=Faults(list_lag=0.3)) as mock:
        names, stats = await sweep_to_the_end(mock, aio_session, 40)
        assert stats.sweep_hints >= len(names)  # every job's end came from a sweep
        assert mock.stats().count("ListOptimizationJobs") > 0
        # At most one describe per true status: the stale statuses a lagging List still
        # shows (INPROGRESS after the job is COMPLETED, say) are not news.
        statuses = sum(len(seq) for seq in mock.transitions(names).values())
        assert mock.stats().count("DescribeOptimizationJob") <= statuses


async def test_a_list_that_never_shows_a_job_loses_nothing(aio_session: Any) -> None:
    # List misses every entry: the safety net alone reports every lifecycle in order.
    lifecycle = Lifecycle(starting=(0.1, 0.3), in_progress=(0.5, 1.0), failure_rate=0.3)
    faults = Faults(list_lag=math.inf)
    async with MockSageMaker(seed=37, lifecycle=lifecycle, faults=faults) as mock:
        policy = SweepPolicy(interval=0.05, safety_interval=0.25, max_rate=None)
        _, stats = await sweep_to_the_end(mock, aio_session, 30, sweep=policy)
        assert stats.sweep_hints == 0


@pytest.mark.parametrize("confirm", ["change", "terminal"])
async def test_a_job_deleted_while_sweeping_is_confirmed_by_a_describe(
    aio_session: Any, make_aio_client: Any, confirm: Any
) -> None:
    # A deleted job never shows in List again; its safety-net describe (or, with
    # confirm="terminal", the describe of a job a re-list did not show) finds it gone.
    lifecycle = Lifecycle(starting=(0.05, 0.05), in_progress=(30, 30))
    async with MockSageMaker(seed=38, lifecycle=lifecycle) as mock:
        names = mock.seed_jobs(5)
        doomed = names[0]
        policy = SweepPolicy(interval=0.05, safety_interval=0.3, max_rate=None, confirm=confirm)
        events: list[Any] = []
        async with Poller(**sweep_opts(mock, aio_session, sweep=policy)) as poller:
            async for event in poller.watch(doomed):
                events.append(event)
                if len(events) == 1:
                    async with make_aio_client(mock.url) as client:
                        await client.delete_optimization_job(OptimizationJobName=doomed)
            assert poller.stats.sweeps > 0
        check_events(events, [doomed])
        assert isinstance(events[-1], JobErrorEvent)
        assert isinstance(events[-1].error, JobNotFoundError)
        assert mock.stats().count("DescribeOptimizationJob", "ResourceNotFound") >= 1


async def test_a_change_a_sweep_reports_goes_ahead_of_a_describe_backlog(
    aio_session: Any,
) -> None:
    # 300 newly watched jobs queue 15 s of describes at max_rate=20; a change a sweep
    # reports meanwhile is confirmed ahead of them, not after the whole backlog.
    async with MockSageMaker(seed=39) as mock:
        (changer,) = mock.seed_jobs(
            1, prefix="changer", lifecycle=Lifecycle(starting=(0.3, 0.3), in_progress=(60, 60))
        )
        backlog = mock.seed_jobs(
            300, prefix="backlog", lifecycle=Lifecycle(starting=(60, 60), in_progress=(60, 60))
        )
        seen: list[str] = []
        async with Poller(**sweep_opts(mock, aio_session, max_rate=20)) as poller:

            async def watch_backlog(started: anyio.Event) -> None:
                async with poller.watch(backlog) as events:
                    started.set()
                    async for event in events:
                        seen.append(event.job_name)

            async with anyio.create_task_group() as tg, poller.watch(changer) as events:
                async for event in events:
                    if event.status == "STARTING":  # type: ignore[union-attr]
                        started = anyio.Event()
                        tg.start_soon(watch_backlog, started)
                        await started.wait()
                    else:
                        assert event.status == "INPROGRESS"  # type: ignore[union-attr]
                        break
                tg.cancel_scope.cancel()
        # Only what was on the wire or within the first burst went first, not the backlog.
        assert len(seen) < len(backlog) // 2


async def test_sweeps_run_while_every_describe_worker_is_busy(aio_session: Any) -> None:
    # Two workers keep two describes on the wire for the whole first wave (200 jobs at
    # 20 ms each). The client's pool has a connection more for the sweep's List call, so
    # sweeps run during the wave instead of after it.
    lifecycle = Lifecycle(starting=(60, 60), in_progress=(60, 60))
    async with MockSageMaker(seed=40, lifecycle=lifecycle, faults=Faults(latency_ms=20)) as mock:
        names = mock.seed_jobs(200)
        first = 0
        options = sweep_opts(mock, aio_session, max_concurrency=2)
        async with Poller(**options) as poller, poller.watch(names) as events:
            async for _ in events:
                first += 1
                if first == len(names):
                    break
        operations = [r.operation for r in mock.requests()]
        assert "ListOptimizationJobs" in operations
        assert operations.index("ListOptimizationJobs") < len(names) // 2


async def test_failing_sweeps_fall_back_to_describe(aio_session: Any) -> None:
    lifecycle = Lifecycle(starting=(0.05, 0.1), in_progress=(0.6, 1.0))
    # List is throttled hard (one call per 100 s): sweeps fail, describes carry on.
    async with MockSageMaker(
        seed=33, lifecycle=lifecycle, faults=Faults(list_rate=0.01, list_burst=1)
    ) as mock:
        policy = SweepPolicy(interval=0.05, safety_interval=60, max_rate=None)
        async with Poller(**sweep_opts(mock, aio_session, sweep=policy)) as poller:
            # Seeded once the client is open, so the jobs outlive a slow start-up.
            names = mock.seed_jobs(20, outcome="COMPLETED")
            results = await poller.wait_until_done(names)
            stats = poller.stats
        assert {d["OptimizationJobStatus"] for d in results.values()} == {"COMPLETED"}
        assert stats.list_requests["throttled"] > 0


async def test_auto_sweeps_only_for_large_sets_it_can_afford(aio_session: Any) -> None:
    lifecycle = Lifecycle(starting=(0.1, 0.1), in_progress=(float("inf"), float("inf")))
    async with MockSageMaker(seed=34, lifecycle=lifecycle) as mock:
        many = mock.seed_jobs(12, prefix="many")
        few = mock.seed_jobs(3, prefix="few")
        policy = PollPolicy(interval=0.05, jitter=0)
        sweep = SweepPolicy(threshold=10, safety_interval=60, max_rate=None)
        opts = sweep_opts(mock, aio_session, strategy="auto", sweep=sweep, poll_interval=policy)
        async with Poller(**opts) as poller:
            with pytest.raises(TimeoutError):
                await poller.wait_until_done(few, timeout=0.3)
            assert poller.stats.strategy == "describe"
            with pytest.raises(TimeoutError):
                await poller.wait_until_done(many, timeout=0.3)
            assert poller.stats.strategy == "sweep"
            assert poller.stats.sweeps > 0
        # A List budget too small for the interval keeps "auto" on describe.
        tight = SweepPolicy(threshold=10, max_rate=1.0)  # 1/s cannot sweep every 0.05 s
        opts = sweep_opts(mock, aio_session, strategy="auto", sweep=tight, poll_interval=policy)
        async with Poller(**opts) as poller:
            with pytest.raises(TimeoutError):
                await poller.wait_until_done(many, timeout=0.3)
            assert poller.stats.strategy == "describe"
            assert poller.stats.sweeps == 0


@settings(deadline=None)
@given(st.floats(0.01, 86_400), st.integers(0, 2**32))
def test_safety_net_describes_come_due_within_the_last_fifth_of_the_interval(
    safety: float, seed: int
) -> None:
    policy = SweepPolicy(safety_interval=safety)
    rng = random.Random(seed)
    delays = [policy.safety_delay(rng) for _ in range(200)]
    assert all(0.8 * safety <= d <= safety for d in delays)
    # Spread out (jobs watched together do not come due together), never all alike.
    assert max(delays) - min(delays) > 0.1 * safety


async def test_strategy_option_validation() -> None:
    with pytest.raises(ValueError, match="strategy"):
        Poller(strategy="fastest")  # type: ignore[typeddict-item]
    with pytest.raises(ValueError, match="sweep"):
        Poller(sweep={"interval": 3})  # type: ignore[typeddict-item]
    for kwargs, name in [
        ({"interval": 0}, "interval"),
        ({"page_size": 101}, "page_size"),
        ({"max_pages": 0}, "max_pages"),
        ({"threshold": 0}, "threshold"),
        ({"overlap": -1}, "overlap"),
    ]:
        with pytest.raises(ValueError, match=name):
            SweepPolicy(**kwargs)  # type: ignore[arg-type]


async def test_describe_strategy_never_lists(aio_session: Any) -> None:
    async with MockSageMaker(
        seed=35, lifecycle=Lifecycle(starting=(0.05, 0.1), in_progress=(0.1, 0.2))
    ) as mock:
        names = mock.seed_jobs(30, outcome="COMPLETED")
        await wait_until_done(names, **sweep_opts(mock, aio_session, strategy="describe"))
        assert mock.stats().count("ListOptimizationJobs") == 0
        await asyncio.sleep(0)


async def test_an_interrupted_sweep_resumes_where_it_stopped() -> None:
    wall = ManualClock(start=1_000.0)
    pages = Pages(
        [([("a", "INPROGRESS")], True), ([("b", "FAILED")], True), ([("c", "COMPLETED")], False)]
    )

    async def hangs_on_the_second_call(request: FakeRequest) -> dict[str, Any] | Exception:
        if transport.count(LIST) == 2:
            await anyio.sleep_forever()  # on the wire when the caller is cancelled
        return pages(request)

    transport = FakeTransport(hangs_on_the_second_call)
    sweeper = make_sweeper(transport, wall)
    hints: list[tuple[str, str]] = []
    wall.jump(10)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sweeper.sweep, note(hints))
            await wait_until(lambda: transport.count(LIST) == 2, what="the second page asked for")
            scope.cancel()
    assert hints == [("a", "INPROGRESS")]
    assert sweeper.watermark == 1_000.0
    wall.jump(10)
    assert await sweeper.sweep(note(hints))
    assert hints == [("a", "INPROGRESS"), ("b", "FAILED"), ("c", "COMPLETED")]
    # Resumed from the interrupted page of the same window, not restarted.
    calls = lists(transport)
    assert calls[2]["NextToken"] == "token-1"
    assert calls[2]["LastModifiedTimeAfter"] == calls[0]["LastModifiedTimeAfter"]
    assert sweeper.watermark == 1_010.0
