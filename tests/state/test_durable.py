"""Durable watches (state=): commit rules, continuity, consumers, resume; real HTTP to the mock."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from math import inf
from pathlib import Path
from typing import Any

import pytest

from asyncoptjob import Event, JobStatus, Poller, StatusChange, wait_until_done, watch
from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.helpers import FAST, FOREVER, opts, wait_until

pytestmark = pytest.mark.filterwarnings("error")

#: INPROGRESS until stopped; then STOPPING briefly, then STOPPED.
STOPPABLE = Lifecycle(starting=(0.01, 0.01), in_progress=(inf, inf), stopping=(0.05, 0.1))


def cursors(path: Path, consumer: str = "default") -> dict[str, str | None]:
    """The committed statuses in a state file (read after the Poller closed it)."""
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT job, status FROM cursors WHERE consumer = ?", (consumer,))
        return dict(rows.fetchall())


async def closed() -> None:
    """Wait until every watch task ended (a bare ``async for`` is closed by its finalizer)."""
    gc.collect()
    await wait_until(
        lambda: (
            not any(
                t.get_name() == "asyncoptjob-watch" and not t.done() for t in asyncio.all_tasks()
            )
        )
    )


def pairs(events: list[Any]) -> list[tuple[str, str | None, str]]:
    return [
        (e.job_name, e.previous_status and e.previous_status.value, e.status.value) for e in events
    ]


async def test_bare_async_for_left_by_break_delivers_the_last_event_again(
    mock: MockSageMaker, aio_session: Any, tmp_path: Path
) -> None:
    names = mock.seed_jobs(4, prefix="brk", outcome="COMPLETED")
    path = tmp_path / "watch.db"
    options = opts(mock, aio_session, state=str(path))
    seen = []
    async for event in watch(names, consumer="deployer", **options):
        seen.append(event)
        if len(seen) == 2:
            break
    await closed()  # the abandoned generator closes the watch (and the file) by itself
    # The first event was committed when the loop asked for the second; the second was not.
    committed = cursors(path, "deployer")
    assert committed[seen[0].job_name] == seen[0].status
    assert committed[seen[1].job_name] != seen[1].status
    rest = [e async for e in watch(names, consumer="deployer", **options)]
    assert seen[1].job_name in {e.job_name for e in rest}
    assert seen[0].job_name not in {e.job_name for e in rest} or not seen[0].is_terminal
    # A normal end commits everything: a third run has nothing to say.
    assert [e async for e in watch(names, consumer="deployer", **options)] == []
    assert set(cursors(path, "deployer").values()) == {"COMPLETED"}


async def test_async_with_commits_the_last_event_on_a_clean_exit_only(
    mock: MockSageMaker, aio_session: Any, tmp_path: Path
) -> None:
    names = mock.seed_jobs(3, prefix="ctx", outcome="FAILED")
    path = tmp_path / "w.db"
    options = opts(mock, aio_session, state=str(path))
    with pytest.raises(RuntimeError, match="handler failed"):
        async with watch(names, **options) as events:
            async for event in events:
                first = event
                raise RuntimeError("handler failed")
    # Not committed: delivered again (from the start: the job may have moved on since).
    assert cursors(path)[first.job_name] is None
    async with watch(names, **options) as events:
        async for event in events:
            again = event
            break
    assert (again.job_name, again.previous_status) == (first.job_name, None)
    # Committed by the clean exit: not delivered again.
    assert cursors(path)[again.job_name] == again.status
    rest = [e async for e in watch(names, **options)]
    for event in rest:
        if event.job_name == again.job_name:
            assert event.previous_status == again.status != event.status
    assert {e.job_name for e in rest if e.is_terminal} | {
        name for name, status in cursors(path).items() if status == "FAILED"
    } == set(names)
    assert set(cursors(path).values()) == {"FAILED"}


async def stop_all(client: Any, names: list[str]) -> None:
    """Stop running jobs (a ``FOREVER`` job then goes STOPPING, then STOPPED)."""
    for name in names:
        await client.stop_optimization_job(OptimizationJobName=name)


async def until_all_running(events: AsyncIterator[Event], names: list[str]) -> None:
    """Handle events until every job was seen INPROGRESS (the last one is not committed)."""
    running: set[str] = set()
    async for event in events:
        assert isinstance(event, StatusChange)
        if event.status is JobStatus.INPROGRESS:
            running.add(event.job_name)
        if running == set(names):
            return


def check_goes_on(events: list[Event], names: list[str], committed: JobStatus) -> None:
    """Each job's events start from ``committed`` and move on to STOPPED, continuously."""
    for name in names:
        mine = [e for e in events if e.job_name == name]
        assert mine, name
        previous: JobStatus | None = committed
        for event in mine:
            assert isinstance(event, StatusChange)
            assert event.previous_status is previous
            assert event.status.rank > committed.rank
            previous = event.status
        assert previous is JobStatus.STOPPED


async def test_a_restart_goes_on_from_the_committed_status(
    mock: MockSageMaker, aio_session: Any, aio_client: Any, tmp_path: Path
) -> None:
    mock.lifecycle = STOPPABLE
    names = mock.seed_jobs(3, prefix="cont")
    options = opts(mock, aio_session, state=str(tmp_path / "w.db"))
    async with Poller(**options) as poller, poller.watch(names, consumer="c") as events:
        await until_all_running(events, names)
    # INPROGRESS is not delivered again; the restart goes on from it once the jobs move.
    await stop_all(aio_client, names)
    async with Poller(**options) as poller:
        second = [e async for e in poller.watch(names, consumer="c")]
    check_goes_on(second, names, JobStatus.INPROGRESS)


async def test_two_consumers_keep_separate_cursors(
    mock: MockSageMaker, aio_session: Any, tmp_path: Path
) -> None:
    names = mock.seed_jobs(3, prefix="two", outcome="STOPPED")
    path = tmp_path / "w.db"
    async with Poller(**opts(mock, aio_session, state=str(path))) as poller:
        a = [e async for e in poller.watch(names, consumer="a")]
        assert {e.job_name for e in a if e.is_terminal} == set(names)
        # b has seen nothing: it gets every job, from the start.
        b = [e async for e in poller.watch(names, consumer="b")]
        assert {e.job_name for e in b if e.is_terminal} == set(names)
        assert all(e.previous_status is None for e in b)
        # a has seen everything: nothing more.
        assert [e async for e in poller.watch(names, consumer="a")] == []
    assert set(cursors(path, "a").values()) == set(cursors(path, "b").values()) == {"STOPPED"}


async def test_unfinished_lists_what_a_consumer_has_not_seen_finish(
    aio_session: Any, tmp_path: Path
) -> None:
    async with MockSageMaker(seed=4, lifecycle=FAST) as mock:
        done = mock.seed_jobs(2, prefix="done", outcome="COMPLETED")
        mock.lifecycle = FOREVER
        running = mock.seed_jobs(2, prefix="run")
        options = opts(mock, aio_session, state=str(tmp_path / "w.db"))
        async with Poller(**options) as poller:
            assert await poller.unfinished(consumer="svc") == []
            finished = [e async for e in poller.watch(done, consumer="svc")]
            assert {e.job_name for e in finished if e.is_terminal} == set(done)
            async with poller.watch(running, consumer="svc") as events:
                async for _ in events:
                    break
            assert await poller.unfinished(consumer="svc") == sorted(running)
            assert await poller.unfinished(consumer="other") == []
        # Across a restart, too (and without a list of one's own).
        async with Poller(**options) as poller:
            assert await poller.unfinished(consumer="svc") == sorted(running)


async def test_wait_until_done_answers_a_committed_job_without_a_describe(
    mock: MockSageMaker, aio_session: Any, tmp_path: Path
) -> None:
    names = mock.seed_jobs(2, prefix="wud", outcome="COMPLETED")
    options = opts(mock, aio_session, state=str(tmp_path / "w.db"))
    first = await wait_until_done(names, consumer="w", **options)
    before = mock.stats().count("DescribeOptimizationJob")
    again = await wait_until_done(names, consumer="w", **options)
    assert mock.stats().count("DescribeOptimizationJob") == before
    assert again == first
    assert again[names[0]]["OptimizationJobStatus"] == "COMPLETED"
    # The datetimes come back as datetimes.
    assert again[names[0]]["CreationTime"] == first[names[0]]["CreationTime"]


async def test_consumer_needs_somewhere_to_keep_cursors(mock: MockSageMaker) -> None:
    with pytest.raises(ValueError, match="consumer= needs somewhere"):
        watch(["a"], consumer="x", endpoint_url=mock.url)
    with pytest.raises(ValueError, match="consumer= needs somewhere"):
        await wait_until_done(["a"], consumer="x", endpoint_url=mock.url)
    with pytest.raises(ValueError, match="state= or redis_url=, not both"):
        Poller(state="w.db", redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(ValueError, match="consumer must be"):
        watch(["a"], consumer="", state="w.db")
    with pytest.raises(ValueError, match="state must be"):
        Poller(state="")  # type: ignore[typeddict-item]
