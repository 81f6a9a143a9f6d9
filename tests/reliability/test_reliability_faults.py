"""Fault injection through real aiobotocore: every scenario keeps every promise.

Each scenario opens a fault window on the mock endpoint while jobs are watched, then
checks what every scenario promises: one terminal outcome per job, ordered events
that match the endpoint's ground truth, the request rate under ``max_rate`` plus burst,
and nothing left behind (tasks, connections, asyncio error reports); the last two are
checked after each test by the ``checked_mock`` fixture (``conftest.py``). Scenarios run
both ways to watch: the module-level ``watch`` (a private hub) and a shared ``Poller``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import structlog
from aiobotocore.config import AioConfig

from asyncoptjob import (
    AioBotocoreTransport,
    CredentialsError,
    Event,
    JobErrorEvent,
    JobNotFoundError,
    Poller,
    StatusChange,
    WaitTimeoutError,
    wait_until_done,
    watch,
)
from asyncoptjob.mock import Faults, Lifecycle, MockSageMaker
from asyncoptjob.testing import check_events
from tests.helpers import (
    DESCRIBE,
    FAST_POLL,
    FOREVER,
    QUICK_RETRY,
    OpenMock,
    RecordingTransport,
    check_against_mock,
    check_send_rate,
    fault_windows,
    quick_retry_opts,
    wait_until,
)

#: Jobs that outlive the fault windows below (they open at 0.1 s and close by 0.5 s).
LIFE = Lifecycle(starting=(0.05, 0.2), in_progress=(0.4, 0.7), stopping=(0.05, 0.1))
MAX_RATE = 80.0
MODES = ["watch", "poller"]


async def collect(
    mode: str, mock: MockSageMaker, session: Any, names: list[str], **extra: Any
) -> list[Event]:
    """Watch ``names`` to the end, with module-level watch() or a Poller; return every event."""
    options = quick_retry_opts(mock, session, max_rate=MAX_RATE, **extra)
    if mode == "watch":
        return [event async for event in watch(names, **options)]
    async with Poller(**options) as poller:
        events = [event async for event in poller.watch(names)]
        stats = poller.stats
        assert stats.subscribers == 0
        assert stats.jobs_active == 0
        assert stats.in_flight == 0
        # Every request the endpoint saw was one the library chose to send: nothing
        # below it (botocore, aiohttp) retried behind the rate budget's back. The
        # endpoint counts a request once its (injected) latency is over, which may be
        # after the client gave up on it: wait for its count to catch up first.
        sent = sum(stats.requests.values())
        with anyio.move_on_after(10):
            while mock.stats().count(DESCRIBE) < sent:
                await anyio.sleep(0.01)
        assert sent == mock.stats().count(DESCRIBE)
    return events


async def run_scenario(
    checked_mock: OpenMock,
    mode: str,
    session: Any,
    *,
    seed: int,
    windows: list[tuple[float, float, dict[str, Any]]],
    jobs: int = 16,
    **extra: Any,
) -> tuple[MockSageMaker, list[Event]]:
    """Seed ``jobs`` mixed-outcome jobs, watch them through ``windows`` of faults, check all.

    The checks every scenario shares (rate, leaks, asyncio's reports) come after the
    test, from ``checked_mock``.
    """
    mock = await checked_mock(seed=seed, lifecycle=LIFE, max_rate=MAX_RATE)
    names = (
        mock.seed_jobs(jobs - jobs // 4 - jobs // 8, prefix="ok", outcome="COMPLETED")
        + mock.seed_jobs(jobs // 4, prefix="bad", outcome="FAILED")
        + mock.seed_jobs(jobs // 8, prefix="stop", outcome="STOPPED")
    )
    events: list[Event] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(fault_windows, mock, windows)
            events = await collect(mode, mock, session, names, **extra)
    check_against_mock(mock, events, names)
    return mock, events


@pytest.mark.parametrize("mode", MODES)
async def test_throttling_storm_then_recovery(
    checked_mock: OpenMock, aio_session: Any, mode: str
) -> None:
    mock, _ = await run_scenario(
        checked_mock,
        mode,
        aio_session,
        seed=101,
        jobs=8,
        windows=[(0.1, 0.45, {"throttle_rate": 0.95})],
    )
    counts = mock.stats().counters[DESCRIBE]
    assert counts["ThrottlingException"] > 0
    # Recovery: the storm ended mid-lifecycle, and every job was still seen to its end.
    assert counts["ok"] > 0


async def test_the_library_never_sends_faster_than_max_rate_plus_burst(
    checked_mock: OpenMock, make_aio_client: Any
) -> None:
    """The strict bound, on the library's own send times, through storms and drops."""
    mock = await checked_mock(seed=116, lifecycle=LIFE, max_rate=MAX_RATE)
    async with make_aio_client(mock.url) as client:
        names = mock.seed_jobs(16)
        recorder = RecordingTransport(AioBotocoreTransport(client))
        options = {"transport": recorder, "poll_interval": FAST_POLL, "retry": QUICK_RETRY}
        windows = [(0.1, 0.3, {"throttle_rate": 0.5, "drop_rate": 0.3})]
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(fault_windows, mock, windows)
                events = [e async for e in watch(names, max_rate=MAX_RATE, **options)]
    check_against_mock(mock, events, names)
    check_send_rate(recorder.sent, MAX_RATE)
    assert len(recorder.sent) == mock.stats().count(DESCRIBE)


@pytest.mark.parametrize("mode", MODES)
async def test_bursts_of_500_and_503(checked_mock: OpenMock, aio_session: Any, mode: str) -> None:
    mock, _ = await run_scenario(
        checked_mock,
        mode,
        aio_session,
        seed=102,
        windows=[(0.1, 0.25, {"error_rate": 1.0}), (0.35, 0.5, {"error_rate": 1.0})],
    )
    counts = mock.stats().counters[DESCRIBE]
    assert counts.get("InternalFailure", 0) > 0
    assert counts.get("ServiceUnavailable", 0) > 0


@pytest.mark.parametrize("mode", MODES)
async def test_dropped_connections(checked_mock: OpenMock, aio_session: Any, mode: str) -> None:
    mock, _ = await run_scenario(
        checked_mock, mode, aio_session, seed=103, windows=[(0.1, 0.5, {"drop_rate": 0.6})]
    )
    assert mock.stats().count(DESCRIBE, "dropped") > 0


@pytest.mark.parametrize("mode", MODES)
async def test_responses_slower_than_the_read_timeout(
    checked_mock: OpenMock, aio_session: Any, mode: str
) -> None:
    mock, _ = await run_scenario(
        checked_mock,
        mode,
        aio_session,
        seed=104,
        windows=[(0.1, 0.45, {"latency_ms": 400})],
        config=AioConfig(read_timeout=0.15, connect_timeout=1),
    )
    # The endpoint served them (it logs on arrival); the client gave up and retried.
    assert mock.stats().count(DESCRIBE) > 0


@pytest.mark.parametrize("mode", MODES)
async def test_malformed_json_bodies(checked_mock: OpenMock, aio_session: Any, mode: str) -> None:
    mock, _ = await run_scenario(
        checked_mock, mode, aio_session, seed=105, windows=[(0.1, 0.5, {"malformed_rate": 0.7})]
    )
    assert mock.stats().count(DESCRIBE, "malformed") > 0


async def test_every_fault_at_once_with_many_overlapping_callers(
    checked_mock: OpenMock, aio_session: Any
) -> None:
    """An account limit, throttles, 5xx, drops, bad bodies and jitter, five callers."""
    faults = Faults(
        describe_rate=60,  # the account's limit, below max_rate: the adaptive rate engages
        describe_burst=20,
        error_rate=0.1,
        drop_rate=0.1,
        malformed_rate=0.1,
        latency_jitter_ms=20,
    )
    mock = await checked_mock(seed=106, lifecycle=LIFE, faults=faults, max_rate=MAX_RATE)
    names = mock.seed_jobs(16)
    groups = [names, names[:8], names[5:], names[::3]]
    results: dict[int, list[Event]] = {}
    waited: dict[str, Any] = {}
    with anyio.fail_after(60):
        async with Poller(**quick_retry_opts(mock, aio_session, max_rate=MAX_RATE)) as poller:

            async def one(i: int, group: list[str]) -> None:
                results[i] = [e async for e in poller.watch(group)]

            async def wait() -> None:
                waited.update(await poller.wait_until_done(names[4:14]))

            async with anyio.create_task_group() as tg:
                for i, group in enumerate(groups):
                    tg.start_soon(one, i, group)
                tg.start_soon(wait)
    for i, group in enumerate(groups):
        check_against_mock(mock, results[i], group)
    # Callers that started together saw the same history of each shared job.
    first = check_events(results[0], groups[0])
    for i in (1, 2, 3):
        for name, seq in check_events(results[i], groups[i]).items():
            assert [e.status for e in seq] == [e.status for e in first[name]]  # type: ignore[union-attr]
    truth = mock.transitions(names[4:14])
    assert {n: d["OptimizationJobStatus"] for n, d in waited.items()} == {
        n: t[-1][0] for n, t in truth.items()
    }
    counts = mock.stats().counters[DESCRIBE]
    # The faults are drawn at random per request, so which kinds hit a few dozen
    # requests varies; that several did is certain enough.
    faulted = {outcome for outcome in counts if outcome != "ok"}
    assert len(faulted) >= 2, counts


@pytest.mark.parametrize("mode", MODES)
async def test_not_found_that_clears_and_not_found_that_never_does(
    checked_mock: OpenMock, aio_session: Any, mode: str
) -> None:
    lifecycle = Lifecycle(starting=(0.05, 0.1), in_progress=(0.2, 0.4), not_found_for=0.3)
    mock = await checked_mock(seed=107, lifecycle=lifecycle, max_rate=MAX_RATE)
    late = mock.seed_jobs(6)
    ghosts = ["ghost-1", "ghost-2"]
    with anyio.fail_after(30):
        events = await collect(mode, mock, aio_session, late + ghosts, not_found_grace=1.0)
    by_job = check_against_mock(mock, events, late + ghosts, errors_ok=True)
    for name in late:  # cleared within the grace period: a normal job
        assert isinstance(by_job[name][-1], StatusChange)
    for name in ghosts:  # never appeared: one JobErrorEvent after the grace period
        (only,) = by_job[name]
        assert isinstance(only, JobErrorEvent)
        assert isinstance(only.error, JobNotFoundError)
        assert only.error.job_name == name
    log = mock.requests()
    assert sum(r.outcome == "ResourceNotFound" for r in log) >= len(late) + 2 * len(ghosts)


async def _delete_when_seen(
    mock: MockSageMaker, make_aio_client: Any, seen: anyio.Event, doomed: list[str]
) -> None:
    await seen.wait()
    async with make_aio_client(mock.url) as client:
        for name in doomed:
            await client.delete_optimization_job(OptimizationJobName=name)


@pytest.mark.parametrize("mode", MODES)
async def test_job_deleted_while_watched(
    checked_mock: OpenMock, aio_session: Any, make_aio_client: Any, mode: str
) -> None:
    lifecycle = Lifecycle(starting=(0.05, 0.05), in_progress=(0.8, 0.8))
    mock = await checked_mock(seed=108, lifecycle=lifecycle, max_rate=MAX_RATE)
    # The doomed jobs run until deleted, however late the deletion comes on a busy
    # machine; the others complete on their own.
    doomed = mock.seed_jobs(3, prefix="doomed", lifecycle=FOREVER)
    names = doomed + mock.seed_jobs(3, outcome="COMPLETED")
    seen = anyio.Event()
    first: set[str] = set()
    events: list[Event] = []
    options = quick_retry_opts(mock, aio_session, max_rate=MAX_RATE, not_found_grace=0.1)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_delete_when_seen, mock, make_aio_client, seen, doomed)
            async with (
                watch(names, **options) if mode == "watch" else _poller_watch(names, options)
            ) as stream:
                async for event in stream:
                    events.append(event)
                    first.add(event.job_name)
                    if first >= set(doomed):
                        seen.set()
    by_job = check_against_mock(mock, events, names, errors_ok=True)
    for name in doomed:
        *before, last = by_job[name]
        assert before, "the deleted job was seen before it was deleted"
        assert isinstance(last, JobErrorEvent)
        assert isinstance(last.error, JobNotFoundError)
    for name in names[3:]:
        assert by_job[name][-1].status == "COMPLETED"  # type: ignore[union-attr]


@asynccontextmanager
async def _poller_watch(names: list[str], options: dict[str, Any]) -> AsyncIterator[Any]:
    """``async with _poller_watch(names, options) as events``: a Poller and one watch."""
    async with Poller(**options) as poller, poller.watch(names) as events:
        yield events


async def test_a_deleted_job_ends_at_once_even_with_a_long_grace(
    aio_session: Any, make_aio_client: Any
) -> None:
    lifecycle = Lifecycle(starting=(0.05, 0.05), in_progress=(5, 5))
    async with MockSageMaker(seed=109, lifecycle=lifecycle) as mock:
        (name,) = mock.seed_jobs(1)
        events: list[Event] = []
        seen = anyio.Event()
        options = quick_retry_opts(mock, aio_session, not_found_grace=60)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_delete_when_seen, mock, make_aio_client, seen, [name])
            # Not finishing within the timeout is the bug: the grace is for new jobs.
            async for event in watch(name, timeout=10, **options):
                events.append(event)
                seen.set()
        assert isinstance(events[-1], JobErrorEvent)
        assert mock.stats().count(DESCRIBE, "ResourceNotFound") == 1


@pytest.mark.parametrize("code", ["AccessDeniedException", "ExpiredTokenException"])
async def test_credentials_error_mid_watch_fails_its_callers_and_the_poller_survives(
    checked_mock: OpenMock, aio_session: Any, code: str
) -> None:
    lifecycle = Lifecycle(starting=(0.05, 0.1), in_progress=(0.4, 0.6))
    mock = await checked_mock(seed=110, lifecycle=lifecycle, max_rate=MAX_RATE)
    names = mock.seed_jobs(8, outcome="COMPLETED")
    raised: dict[int, BaseException] = {}
    events: dict[int, list[Event]] = defaultdict(list)
    seen = [anyio.Event(), anyio.Event()]
    with anyio.fail_after(30):
        async with Poller(**quick_retry_opts(mock, aio_session, max_rate=MAX_RATE)) as poller:

            async def one(i: int, group: list[str]) -> None:
                try:
                    async for event in poller.watch(group):
                        events[i].append(event)
                        seen[i].set()
                except CredentialsError as exc:
                    raised[i] = exc

            async with anyio.create_task_group() as tg:
                tg.start_soon(one, 0, names[:4])
                tg.start_soon(one, 1, names[4:])
                for event in seen:
                    await event.wait()
                mock.set_faults(error_code=code)
            # Both callers got the error, raised, with the code and a hint.
            assert set(raised) == {0, 1}
            assert all(isinstance(e, CredentialsError) for e in raised.values())
            assert {e.code for e in raised.values()} == {code}  # type: ignore[attr-defined]
            # Never retried: at most one refused call per job.
            assert mock.stats().count(DESCRIBE, code) <= len(names)
            stats = poller.stats
            assert (stats.subscribers, stats.jobs_active) == (0, 0)
            # Fresh credentials (the fault clears): the same Poller works again.
            mock.set_faults(error_code=None)
            results = await poller.wait_until_done(names)
    for i, group in ((0, names[:4]), (1, names[4:])):
        # Until the error, each caller's events were in order and only its own.
        last: dict[str, Any] = {}
        for event in events[i]:
            assert event.job_name in group
            assert isinstance(event, StatusChange)
            assert event.previous_status == last.get(event.job_name)
            last[event.job_name] = event.status
    assert {d["OptimizationJobStatus"] for d in results.values()} == {"COMPLETED"}


@pytest.mark.parametrize("code", ["AccessDeniedException", "ExpiredTokenException"])
async def test_credentials_error_mid_watch(
    checked_mock: OpenMock, aio_session: Any, code: str
) -> None:
    mock = await checked_mock(seed=111, lifecycle=LIFE, max_rate=MAX_RATE)
    names = mock.seed_jobs(6)
    seen: list[Event] = []
    with anyio.fail_after(30), pytest.raises(CredentialsError) as info:
        async for event in watch(names, **quick_retry_opts(mock, aio_session, max_rate=MAX_RATE)):
            seen.append(event)
            mock.set_faults(error_code=code)
    assert info.value.code == code
    assert len(seen) >= 1


async def test_slow_watch_consumer_does_not_pause_polling_and_loses_nothing(
    checked_mock: OpenMock,
    aio_session: Any,
) -> None:
    """Module-level ``watch``: a slow reader never pauses polling, never loses an event."""
    mock = await checked_mock(seed=112, lifecycle=LIFE, max_rate=MAX_RATE)
    names = mock.seed_jobs(10)
    events: list[Event] = []
    with anyio.fail_after(60):
        async for event in watch(names, **quick_retry_opts(mock, aio_session, max_rate=MAX_RATE)):
            events.append(event)
            if len(events) in (1, 5, 12):
                # Busy until the endpoint saw more describes: polling goes on meanwhile
                # (unless every job already ended and nothing is left to poll).
                before = mock.stats().count(DESCRIBE)
                await wait_until(
                    lambda before=before: (
                        mock.stats().count(DESCRIBE) > before + 2
                        or all(mock.status(n) in ("COMPLETED", "FAILED", "STOPPED") for n in names)
                    )
                )
            else:
                await anyio.sleep(0.02)
    check_against_mock(mock, events, names)


async def test_slow_poller_consumer_gets_every_event_the_hub_saw(
    checked_mock: OpenMock, aio_session: Any
) -> None:
    """A reader far slower than polling still gets exactly the changes the hub observed."""
    mock = await checked_mock(seed=113, lifecycle=LIFE, max_rate=MAX_RATE)
    names = mock.seed_jobs(10)
    slow: list[Event] = []
    fast: list[Event] = []
    with structlog.testing.capture_logs() as logs, anyio.fail_after(60):
        async with Poller(**quick_retry_opts(mock, aio_session, max_rate=MAX_RATE)) as poller:
            finished_polling = anyio.Event()

            async def slow_reader() -> None:
                async for event in poller.watch(names):
                    slow.append(event)
                    await anyio.sleep(0.05)

            async def fast_reader() -> None:
                fast.extend([e async for e in poller.watch(names)])
                finished_polling.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_reader)
                tg.start_soon(fast_reader)
                await finished_polling.wait()
                # Polling is over for everyone while the slow reader is still behind.
                assert len(slow) < len(fast)
    for seq in (slow, fast):
        by_job = check_against_mock(mock, seq, names)
        changes = defaultdict(list)
        for entry in logs:
            if entry["event"] == "job_status_changed":
                changes[entry["job_name"]].append(entry["status"])
        for name, job_events in by_job.items():
            # The first event is the subscriber's first look; later ones are changes.
            assert [e.status.value for e in job_events[1:]] == changes[name]  # type: ignore[union-attr]


async def test_a_deadline_during_a_fault_window_still_gives_a_clean_timeout(
    checked_mock: OpenMock,
    aio_session: Any,
) -> None:
    """A timeout that falls inside a fault window: a WaitTimeoutError, no hang, no leak."""
    mock = await checked_mock(seed=114, lifecycle=FOREVER, max_rate=MAX_RATE)
    names = mock.seed_jobs(2)
    # 5xx and drops, not throttles: a throttle storm would also cut the rate, and
    # the last look at the deadline then waits for tokens (bounded: see the test below).
    mock.set_faults(error_rate=0.7, drop_rate=0.2, latency_jitter_ms=30)
    with anyio.fail_after(30), pytest.raises(WaitTimeoutError) as info:
        async for _ in watch(
            names, timeout=0.5, **quick_retry_opts(mock, aio_session, max_rate=MAX_RATE)
        ):
            pass
    assert set(info.value.pending) == set(names)


async def test_the_timeout_is_a_hard_deadline_even_when_the_rate_budget_is_low(
    aio_session: Any,
) -> None:
    async with MockSageMaker(seed=115, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(4)
        # One request per 5 s: the last look at 4 jobs would take 15-20 s of tokens.
        options = quick_retry_opts(mock, aio_session, max_rate=0.2)
        with anyio.fail_after(5), pytest.raises(WaitTimeoutError):
            await wait_until_done(names, timeout=0.2, **options)
