"""Throttling, transient faults, credentials and logs, through real aiobotocore."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
import structlog

from asyncoptjob import (
    CredentialsError,
    Event,
    InvalidRequestError,
    JobErrorEvent,
    Poller,
    PollPolicy,
    RetryPolicy,
    StatusChange,
    wait_until_done,
    watch,
)
from asyncoptjob.mock import Faults, Lifecycle, MockSageMaker
from asyncoptjob.testing import check_events
from tests.helpers import DESCRIBE, FAST, FOREVER, check_rate, quick_retry_opts, wait_until


async def test_throttling_storm_opens_and_closes_and_every_job_finishes(
    aio_session: Any,
) -> None:
    lifecycle = Lifecycle(starting=(0.1, 0.2), in_progress=(0.6, 1.0))
    async with MockSageMaker(seed=11, lifecycle=lifecycle) as mock:
        names = mock.seed_jobs(30)
        rates: list[float | None] = []
        events: list[Event] = []
        async with Poller(**quick_retry_opts(mock, aio_session)) as poller:

            async def storm() -> None:
                # The storm breaks once polling is under way: every job described once.
                await wait_until(lambda: mock.stats().count(DESCRIBE) >= len(names))
                mock.set_faults(throttle_rate=0.95)
                for _ in range(6):
                    await anyio.sleep(0.1)
                    rates.append(poller.stats.rate_limit)
                mock.set_faults(throttle_rate=0.0)

            async with anyio.create_task_group() as tg:
                tg.start_soon(storm)
                async for event in poller.watch(names):
                    events.append(event)
            final_rate = poller.stats.rate_limit
            stats = poller.stats
        check_events(events, names)
        assert not [e for e in events if isinstance(e, JobErrorEvent)]
        assert stats.requests["throttled"] > 0
        assert stats.retries > 0
        # The adaptive rate dropped during the storm and grew back after it.
        limited = [r for r in rates if r is not None]
        assert limited, "the limiter never engaged during the storm"
        assert final_rate is not None
        assert final_rate > min(limited)


async def test_rate_seen_by_the_mock_never_exceeds_max_rate_plus_burst(
    aio_session: Any,
) -> None:
    async with MockSageMaker(seed=12, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(40)
        with pytest.raises(TimeoutError):
            await wait_until_done(
                names,
                timeout=1.5,
                **quick_retry_opts(mock, aio_session, max_rate=20, max_concurrency=8),
            )
        # max_rate plus the bucket's burst (1 at 20/s), give or take the arrival
        # jitter; unlimited, 8 workers on 40 jobs send hundreds per second.
        check_rate(mock, 20)


async def test_account_rate_limit_throttles_are_absorbed(aio_session: Any) -> None:
    async with MockSageMaker(
        seed=13, lifecycle=FAST, faults=Faults(describe_rate=30, describe_burst=5)
    ) as mock:
        names = mock.seed_jobs(40, outcome="COMPLETED")
        async with Poller(**quick_retry_opts(mock, aio_session, max_concurrency=16)) as poller:
            results = await poller.wait_until_done(names)
            stats = poller.stats
        assert {d["OptimizationJobStatus"] for d in results.values()} == {"COMPLETED"}
        assert stats.requests["throttled"] > 0
        assert stats.rate_limit is not None  # adaptive mode engaged after the throttles


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 0.3},
        {"malformed_rate": 0.3},
        {"drop_rate": 0.2},
    ],
    ids=["5xx", "malformed-bodies", "dropped-connections"],
)
async def test_transient_faults_are_retried_and_nothing_is_lost(
    aio_session: Any, faults: dict[str, float]
) -> None:
    async with MockSageMaker(seed=14, lifecycle=FAST, faults=Faults(**faults)) as mock:
        names = mock.seed_jobs(15)
        events = [e async for e in watch(names, **quick_retry_opts(mock, aio_session))]
        by_job = check_events(events, names)
        assert not [e for e in events if isinstance(e, JobErrorEvent)]
        assert all(seq[-1].is_terminal for seq in by_job.values())
        counts = mock.stats().counters["DescribeOptimizationJob"]
        assert sum(n for outcome, n in counts.items() if outcome != "ok") > 0


async def test_persistent_transient_failure_becomes_a_job_error(aio_session: Any) -> None:
    async with MockSageMaker(seed=15, lifecycle=FOREVER, faults=Faults(error_rate=1.0)) as mock:
        names = mock.seed_jobs(2)
        retry = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=0.3, max_attempts=3)
        events = [e async for e in watch(names, **quick_retry_opts(mock, aio_session, retry=retry))]
        assert {e.job_name for e in events} == set(names)
        assert all(isinstance(e, JobErrorEvent) for e in events)
        assert all(e.error.code in ("InternalFailure", "ServiceUnavailable") for e in events)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("AccessDeniedException", "permission"),
        ("ExpiredTokenException", "refresh"),
        ("UnrecognizedClientException", "not recognised"),
        ("InvalidSignatureException", "signature"),
    ],
)
async def test_credential_errors_surface_and_are_not_retried(
    aio_session: Any, code: str, hint: str
) -> None:
    async with MockSageMaker(
        seed=16, lifecycle=FOREVER, faults=Faults(error_code=code, error_code_rate=1.0)
    ) as mock:
        names = mock.seed_jobs(3)
        with pytest.raises(CredentialsError, match=hint) as info:
            async for _ in watch(names, **quick_retry_opts(mock, aio_session)):
                pass
        assert info.value.code == code
        with pytest.raises(CredentialsError):
            await wait_until_done(names, **quick_retry_opts(mock, aio_session))
        # Not retried: at most one call per job per attempt to watch.
        assert mock.stats().count("DescribeOptimizationJob") <= 2 * len(names)


async def test_validation_error_becomes_a_job_error(aio_session: Any) -> None:
    async with MockSageMaker(
        seed=17,
        lifecycle=FOREVER,
        faults=Faults(error_code="ValidationException", error_code_rate=1.0),
    ) as mock:
        names = mock.seed_jobs(2)
        events = [e async for e in watch(names, **quick_retry_opts(mock, aio_session))]
        assert len(events) == 2
        for event in events:
            assert isinstance(event, JobErrorEvent)
            assert isinstance(event.error, InvalidRequestError)
        with pytest.raises(InvalidRequestError):
            await wait_until_done(names, **quick_retry_opts(mock, aio_session))


async def test_structured_logs_and_stats(aio_session: Any) -> None:
    # In progress long enough that every job is seen changing, retries and all.
    lifecycle = Lifecycle(starting=(0.05, 0.1), in_progress=(0.6, 1.0))
    async with MockSageMaker(seed=18, lifecycle=lifecycle, faults=Faults(error_rate=0.5)) as mock:
        with structlog.testing.capture_logs() as logs:
            async with Poller(**quick_retry_opts(mock, aio_session)) as poller:
                # Seeded once the client is open: a slow start-up on a busy machine must
                # not let the jobs end before their first describe (no change to log).
                names = mock.seed_jobs(8, outcome="COMPLETED")
                events = [e async for e in poller.watch(names)]
                stats = poller.stats
        # One log line per change the hub observed after a job's first look (a job a
        # retried first describe only saw finished has no change to log).
        observed = {
            (e.job_name, e.status.value)
            for e in events
            if isinstance(e, StatusChange) and e.previous_status is not None
        }
        changed = [e for e in logs if e["event"] == "job_status_changed"]
        assert observed
        assert {(e["job_name"], e["status"]) for e in changed} == observed
        assert len(changed) == len(observed)
        assert all(e["log_level"] == "info" for e in changed)
        polled = [e for e in logs if e["event"] == "job_polled"]
        assert polled
        assert all(e["log_level"] == "debug" for e in polled)
        retrying = [e for e in logs if e["event"] == "retrying"]
        assert retrying
        assert all({"job_name", "attempt", "delay"} <= e.keys() for e in retrying)
        assert stats.retries == len(retrying)
        assert stats.requests["transient"] >= len(retrying)
        assert stats.jobs_finished == len(names)
        assert stats.jobs_active == 0
        assert stats.in_flight == 0
        assert stats.total_requests == sum(stats.requests.values())


async def test_credentials_never_appear_in_logs_or_reprs(
    aio_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "SENTINEL-SECRET-KEY-do-not-log-1234567890"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    async with MockSageMaker(seed=19, lifecycle=FAST, faults=Faults(error_rate=0.2)) as mock:
        names = mock.seed_jobs(3, outcome="FAILED")
        with structlog.testing.capture_logs() as logs:
            async with Poller(**quick_retry_opts(mock, aio_session)) as poller:
                events = [e async for e in poller.watch(names)]
                texts = [repr(poller), repr(poller.stats), *map(repr, events)]
        texts += [repr(entry) for entry in logs]
        assert all(secret not in text for text in texts)
        assert all("testing" not in text for text in texts[:1])


async def test_slow_consumer_loses_nothing(aio_session: Any) -> None:
    async with MockSageMaker(seed=20, lifecycle=FAST) as mock:
        names = mock.seed_jobs(10)
        async with Poller(**quick_retry_opts(mock, aio_session)) as poller:
            fast_events: list[Event] = []
            slow_events: list[Event] = []

            async def fast() -> None:
                fast_events.extend([e async for e in poller.watch(names)])

            async def slow() -> None:
                async for event in poller.watch(names):
                    slow_events.append(event)
                    await asyncio.sleep(0.05)  # far slower than the polls

            async with anyio.create_task_group() as tg:
                tg.start_soon(fast)
                tg.start_soon(slow)
        check_events(fast_events, names)
        check_events(slow_events, names)
        assert [(e.job_name, getattr(e, "status", None)) for e in slow_events if e.is_terminal]


async def test_custom_policy_per_status(aio_session: Any) -> None:
    policy = PollPolicy(interval=5, status_intervals={"STARTING": 0.02, "INPROGRESS": 0.02})
    async with MockSageMaker(seed=21, lifecycle=FAST) as mock:
        names = mock.seed_jobs(3, outcome="COMPLETED")
        results = await wait_until_done(
            names, **quick_retry_opts(mock, aio_session, poll_interval=policy)
        )
        assert len(results) == 3
