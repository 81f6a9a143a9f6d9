"""watch() and Poller.watch() through real aiobotocore against the mock endpoint."""

from __future__ import annotations

import asyncio
import gc
from math import inf
from typing import Any

import anyio
import pytest

from asyncoptjob import (
    Event,
    JobStatus,
    Poller,
    PollerClosedError,
    StatusChange,
    WaitTimeoutError,
    watch,
)
from asyncoptjob.mock import Lifecycle, MockSageMaker
from asyncoptjob.testing import check_events
from tests.helpers import FAST, FAST_POLL, FOREVER, opts, settle_tasks, wait_until

pytestmark = pytest.mark.filterwarnings("error")


async def test_watch_reports_every_lifecycle_to_its_terminal_status(aio_session: Any) -> None:
    lifecycle = Lifecycle(
        starting=(0.05, 0.15), in_progress=(0.1, 0.4), stopping=(0.05, 0.1), time_scale=1.0
    )
    async with MockSageMaker(seed=7, lifecycle=lifecycle) as mock:
        done = mock.seed_jobs(6, prefix="ok", outcome="COMPLETED")
        failed = mock.seed_jobs(4, prefix="bad", outcome="FAILED")
        stopped = mock.seed_jobs(3, prefix="stop", outcome="STOPPED")
        names = done + failed + stopped
        events = [e async for e in watch(names, **opts(mock, aio_session))]
        by_job = check_events(events, names)
        finals = {name: seq[-1] for name, seq in by_job.items()}
        for name in names:
            final = finals[name]
            assert isinstance(final, StatusChange)
            expected = "COMPLETED" if name in done else "FAILED" if name in failed else "STOPPED"
            assert final.status == expected
            assert final.description["OptimizationJobStatus"] == expected
            assert final.description == {**final.description}  # a plain parsed dict
        failure = finals[failed[0]]
        assert isinstance(failure, StatusChange)
        assert failure.description.get("FailureReason")
        # Every job was seen before its end too (sub-second polls, longer lifecycles).
        assert any(len(seq) > 1 for seq in by_job.values())
        # A poll may miss a short phase (STOPPING lasts 50-100 ms here), so only
        # the order is certain; test_stop_is_reported_as_stopping shows STOPPING.
        lifecycle_order = list(JobStatus.__members__.values())
        for name in stopped:
            seen = [e.status for e in by_job[name] if isinstance(e, StatusChange)]
            assert set(seen) <= {"STARTING", "INPROGRESS", "STOPPING", "STOPPED"}
            assert seen == sorted(seen, key=lifecycle_order.index), seen


async def test_stop_is_reported_as_stopping(aio_session: Any, make_aio_client: Any) -> None:
    # STOPPING never ends here, so the poll that sees it cannot be late.
    lifecycle = Lifecycle(starting=(0.01, 0.01), in_progress=(inf, inf), stopping=(inf, inf))
    async with MockSageMaker(seed=4, lifecycle=lifecycle) as mock:
        (name,) = mock.seed_jobs(1)
        seen: list[tuple[JobStatus | None, JobStatus]] = []
        async with make_aio_client(mock.url) as client:
            async for event in watch([name], **opts(mock, aio_session, timeout=30)):
                assert isinstance(event, StatusChange)
                seen.append((event.previous_status, event.status))
                if event.status == JobStatus.INPROGRESS:
                    await client.stop_optimization_job(OptimizationJobName=name)
                if event.status == JobStatus.STOPPING:
                    break
        assert seen[-1] == (JobStatus.INPROGRESS, JobStatus.STOPPING)
        assert mock.status(name) == "STOPPING"


async def test_watch_as_async_context_manager(aio_session: Any) -> None:
    async with MockSageMaker(seed=2, lifecycle=FAST) as mock:
        names = mock.seed_jobs(3, outcome="COMPLETED")
        collected: list[Event] = []
        async with watch(names, **opts(mock, aio_session)) as events:
            async for event in events:
                collected.append(event)
        check_events(collected, names)
        assert await settle_tasks() == set()


async def test_duplicate_names_collapse(aio_session: Any) -> None:
    async with MockSageMaker(seed=2, lifecycle=FAST) as mock:
        (name,) = mock.seed_jobs(1, outcome="COMPLETED")
        events = [e async for e in watch([name, name, name], **opts(mock, aio_session))]
        check_events(events, [name])


async def test_break_cancels_and_reaps_everything(aio_session: Any) -> None:
    async with MockSageMaker(seed=3, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(20)
        async for event in watch(names, **opts(mock, aio_session)):
            assert event.job_name in names
            break
        gc.collect()
        assert await settle_tasks() == set()
        requests_after_break = mock.stats().count("DescribeOptimizationJob")
        await asyncio.sleep(0.2)  # nothing polls any more
        assert mock.stats().count("DescribeOptimizationJob") == requests_after_break


async def test_exception_in_the_loop_body_cleans_up(aio_session: Any) -> None:
    async with MockSageMaker(seed=3, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(5)

        class Boom(Exception):
            pass

        with pytest.raises(Boom):
            async with watch(names, **opts(mock, aio_session)) as events:
                async for _ in events:
                    raise Boom
        assert await settle_tasks() == set()


async def test_cancelled_caller_cleans_up(aio_session: Any) -> None:
    async with MockSageMaker(seed=3, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(5)
        first = anyio.Event()

        async def consume() -> None:
            async for _ in watch(names, **opts(mock, aio_session)):
                first.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await first.wait()
            tg.cancel_scope.cancel()
        gc.collect()
        assert await settle_tasks() == set()


async def test_watch_timeout_raises_with_last_statuses(aio_session: Any) -> None:
    async with MockSageMaker(seed=3, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(3)
        seen: list[Event] = []
        with pytest.raises(WaitTimeoutError) as info:
            async for event in watch(names, timeout=0.3, **opts(mock, aio_session)):
                seen.append(event)
        assert set(info.value.pending) == set(names)
        assert all(s == JobStatus.INPROGRESS for s in info.value.pending.values())
        assert {e.job_name for e in seen} == set(names)


async def test_poller_shares_one_describe_per_job_between_watchers(aio_session: Any) -> None:
    """Two watchers and a waiter of the same jobs: the mock counts one describe per job."""
    async with MockSageMaker(seed=4, lifecycle=FAST) as mock:
        names = mock.seed_jobs(10, outcome="COMPLETED")
        # Every job is terminal before anyone looks (the endpoint's ground truth).
        await wait_until(lambda: all(mock.status(n) == "COMPLETED" for n in names))
        async with Poller(**opts(mock, aio_session)) as poller:

            async def collect() -> list[Event]:
                return [e async for e in poller.watch(names)]

            first, second, waited = await asyncio.gather(
                collect(), collect(), poller.wait_until_done(names)
            )
            assert mock.stats().count("DescribeOptimizationJob") == len(names)
            check_events(first, names)
            check_events(second, names)
            assert [e.job_name for e in first] == [e.job_name for e in second]
            assert set(waited) == set(names)
            stats = poller.stats
            assert stats.requests["ok"] == len(names)
            assert stats.jobs_watched == len(names)
            assert stats.jobs_finished == len(names)
            assert stats.events_emitted == 2 * len(names) + len(names)


async def test_one_poll_serves_all_watchers_of_a_running_job(aio_session: Any) -> None:
    async with MockSageMaker(seed=4, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(5)
        policy = FAST_POLL.__class__(interval=0.05, max_interval=0.05, jitter=0)
        async with Poller(**opts(mock, aio_session, poll_interval=policy)) as poller:
            with pytest.raises(WaitTimeoutError):
                await asyncio.gather(
                    poller.wait_until_done(names, timeout=0.5),
                    poller.wait_until_done(names, timeout=0.5),
                    poller.wait_until_done(names, timeout=0.5),
                )
            describes = mock.stats().count("DescribeOptimizationJob")
            # ~10 polls per job in 0.5 s plus the final look: far below 3 watchers' worth.
            assert describes <= len(names) * (0.5 / 0.05 + 3)


async def test_late_subscriber_first_gets_the_current_status(aio_session: Any) -> None:
    async with MockSageMaker(seed=5, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(2)
        async with Poller(**opts(mock, aio_session)) as poller:
            early = poller.watch(names).__aiter__()
            first = await early.__anext__()
            assert first.previous_status is None
            # The hub has seen every job running before the late subscriber comes.
            running = {first.job_name} if first.status == JobStatus.INPROGRESS else set()
            while running != set(names):
                event = await early.__anext__()
                if event.status == JobStatus.INPROGRESS:  # type: ignore[union-attr]
                    running.add(event.job_name)
            late: list[Event] = []
            async with poller.watch(names) as events:
                async for event in events:
                    late.append(event)
                    if len(late) == 2:
                        break
            assert {e.job_name for e in late} == set(names)
            for event in late:
                assert isinstance(event, StatusChange)
                assert event.previous_status is None
                assert event.status == JobStatus.INPROGRESS
            await early.aclose()  # type: ignore[attr-defined]


async def test_jobs_can_be_added_while_others_are_watched(aio_session: Any) -> None:
    async with MockSageMaker(seed=6, lifecycle=FAST) as mock:
        first = mock.seed_jobs(3, prefix="first", outcome="COMPLETED")
        async with Poller(**opts(mock, aio_session)) as poller:
            results: dict[str, list[Event]] = {}

            async def collect(key: str, names: list[str]) -> None:
                results[key] = [e async for e in poller.watch(names)]

            async with anyio.create_task_group() as tg:
                tg.start_soon(collect, "first", first)
                await wait_until(lambda: poller.stats.jobs_watched == len(first))
                second = mock.seed_jobs(3, prefix="second", outcome="FAILED")
                tg.start_soon(collect, "second", second)
            check_events(results["first"], first)
            check_events(results["second"], second)


async def test_closing_the_poller_fails_pending_waits_clearly(aio_session: Any) -> None:
    async with MockSageMaker(seed=6, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(2)
        outcome: list[BaseException] = []
        poller = Poller(**opts(mock, aio_session))
        async with anyio.create_task_group() as tg, poller:

            async def wait() -> None:
                try:
                    await poller.wait_until_done(names)
                except PollerClosedError as exc:
                    outcome.append(exc)

            tg.start_soon(wait)
            await wait_until(lambda: poller.stats.subscribers == 1)  # the wait is pending
        assert len(outcome) == 1
        assert "closed" in str(outcome[0])
        with pytest.raises(PollerClosedError):
            poller.watch(names)
        with pytest.raises(RuntimeError, match="only once"):
            async with poller:
                pass
        assert await settle_tasks() == set()


async def test_poller_needs_to_be_open() -> None:
    poller = Poller(endpoint_url="http://127.0.0.1:9")
    with pytest.raises(PollerClosedError, match="async with"):
        await poller.wait_until_done("job-a")
    with pytest.raises(PollerClosedError):
        _ = poller.stats
