"""wait_until_done(): results, failures, deadlines, unknown jobs, client ownership."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asyncoptjob import (
    JobFailedError,
    JobNotFoundError,
    JobStatus,
    Poller,
    WaitTimeoutError,
    wait_until_done,
)
from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.helpers import FAST, FAST_POLL, FOREVER, opts


async def test_one_name_returns_its_final_description(aio_session: Any) -> None:
    async with MockSageMaker(seed=1, lifecycle=FAST) as mock:
        (name,) = mock.seed_jobs(1, outcome="COMPLETED")
        description = await wait_until_done(name, **opts(mock, aio_session))
        assert description["OptimizationJobName"] == name
        assert description["OptimizationJobStatus"] == "COMPLETED"
        assert description["OptimizationOutput"]["RecommendedInferenceImage"]


async def test_many_names_return_every_final_description_failures_included(
    aio_session: Any,
) -> None:
    async with MockSageMaker(seed=1, lifecycle=FAST) as mock:
        ok = mock.seed_jobs(3, prefix="ok", outcome="COMPLETED")
        bad = mock.seed_jobs(2, prefix="bad", outcome="FAILED")
        stopped = mock.seed_jobs(1, prefix="stop", outcome="STOPPED")
        results = await wait_until_done(ok + bad + stopped, **opts(mock, aio_session))
        assert {n: d["OptimizationJobStatus"] for n, d in results.items()} == {
            **dict.fromkeys(ok, "COMPLETED"),
            **dict.fromkeys(bad, "FAILED"),
            **dict.fromkeys(stopped, "STOPPED"),
        }


async def test_raise_on_failure_carries_the_descriptions(aio_session: Any) -> None:
    async with MockSageMaker(seed=1, lifecycle=FAST) as mock:
        ok = mock.seed_jobs(2, prefix="ok", outcome="COMPLETED")
        bad = mock.seed_jobs(1, prefix="bad", outcome="FAILED")
        with pytest.raises(JobFailedError) as info:
            await wait_until_done(ok + bad, raise_on_failure=True, **opts(mock, aio_session))
        assert info.value.failed == bad
        assert set(info.value.descriptions) == set(ok + bad)
        assert bad[0] in str(info.value)
        assert "FAILED" in str(info.value)
        # All completed: no error.
        results = await wait_until_done(ok, raise_on_failure=True, **opts(mock, aio_session))
        assert set(results) == set(ok)


async def test_timeout_is_a_hard_deadline_with_a_last_describe(aio_session: Any) -> None:
    async with MockSageMaker(seed=1, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(3)
        slow = FAST_POLL.__class__(interval=60, jitter=0)  # only the first poll would happen
        with pytest.raises(WaitTimeoutError) as info:
            await wait_until_done(names, timeout=2, **opts(mock, aio_session, poll_interval=slow))
        assert info.value.pending == dict.fromkeys(names, JobStatus.INPROGRESS)
        assert info.value.done == {}
        # One describe each at the start, one each at the deadline.
        assert mock.stats().count("DescribeOptimizationJob") == 2 * len(names)


async def test_the_last_describe_at_the_deadline_can_still_succeed(aio_session: Any) -> None:
    lifecycle = Lifecycle(starting=(0.01, 0.01), in_progress=(0.2, 0.2))
    async with MockSageMaker(seed=1, lifecycle=lifecycle) as mock:
        names = mock.seed_jobs(2, outcome="COMPLETED")
        slow = FAST_POLL.__class__(interval=60, jitter=0)
        results = await wait_until_done(
            names, timeout=0.5, **opts(mock, aio_session, poll_interval=slow)
        )
        assert {d["OptimizationJobStatus"] for d in results.values()} == {"COMPLETED"}


async def test_timeout_reports_finished_jobs_too(aio_session: Any) -> None:
    async with MockSageMaker(seed=1, lifecycle=FAST) as mock:
        quick = mock.seed_jobs(1, prefix="quick", outcome="COMPLETED")
        never = mock.seed_jobs(1, prefix="never", lifecycle=FOREVER)
        with pytest.raises(WaitTimeoutError) as info:
            await wait_until_done(quick + never, timeout=1.0, **opts(mock, aio_session))
        assert set(info.value.pending) == set(never)
        assert set(info.value.done) == set(quick)


async def test_unknown_job_raises_not_found_after_the_grace_period(aio_session: Any) -> None:
    async with MockSageMaker(seed=1, lifecycle=FAST) as mock:
        with pytest.raises(JobNotFoundError) as info:
            await wait_until_done("no-such-job", not_found_grace=1.0, **opts(mock, aio_session))
        assert info.value.job_name == "no-such-job"
        assert info.value.code == "ResourceNotFound"
        # It was retried within the grace period, not given up at the first answer.
        assert mock.stats().count("DescribeOptimizationJob", "ResourceNotFound") >= 2


async def test_not_found_that_clears_within_the_grace_period(aio_session: Any) -> None:
    # Eventual consistency after Create: unknown for a while, then a normal job.
    lifecycle = Lifecycle(starting=(0.05, 0.05), in_progress=(0.1, 0.1), not_found_for=1.0)
    async with MockSageMaker(seed=1, lifecycle=lifecycle) as mock:
        names = mock.seed_jobs(3, outcome="COMPLETED")
        results = await wait_until_done(names, not_found_grace=5, **opts(mock, aio_session))
        assert {d["OptimizationJobStatus"] for d in results.values()} == {"COMPLETED"}
        assert mock.stats().count("DescribeOptimizationJob", "ResourceNotFound") >= 3


async def test_caller_owned_client_is_never_closed(aio_session: Any, make_aio_client: Any) -> None:
    async with MockSageMaker(seed=1, lifecycle=FAST) as mock:
        names = mock.seed_jobs(2, outcome="COMPLETED")
        async with make_aio_client(mock.url) as client:
            await wait_until_done(names, client=client, poll_interval=FAST_POLL)
            async with Poller(client=client, poll_interval=FAST_POLL) as poller:
                await poller.wait_until_done(names)
            # Still usable: the library did not close it.
            again = await client.describe_optimization_job(OptimizationJobName=names[0])
            assert again["OptimizationJobStatus"] == "COMPLETED"


async def test_client_cannot_be_combined_with_endpoint_options(make_aio_client: Any) -> None:
    async with MockSageMaker(seed=1) as mock, make_aio_client(mock.url) as client:
        with pytest.raises(ValueError, match="client= cannot be combined"):
            await wait_until_done("a", client=client, endpoint_url=mock.url)


async def test_wrong_client_type_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="aiobotocore SageMaker client"):
        await wait_until_done("job-a", client=object())  # type: ignore[arg-type]


async def test_default_timeout_from_the_poller_options(aio_session: Any) -> None:
    async with (
        MockSageMaker(seed=1, lifecycle=FOREVER) as mock,
        Poller(**opts(mock, aio_session, timeout=0.2)) as poller,
    ):
        (name,) = mock.seed_jobs(1)
        with pytest.raises(WaitTimeoutError):
            await poller.wait_until_done(name)
        await asyncio.sleep(0)
