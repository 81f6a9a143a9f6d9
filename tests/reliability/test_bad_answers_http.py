"""Bad answers over real HTTP: the mock's fault modes through aiobotocore, nothing lost.

The same scenarios as ``tests/core/test_bad_answers.py`` (which generates them on the
testing kit's fake), here as the wire carries them: a body without a status, a status
of the wrong type, a 200 that is not JSON, an unknown status, a List stuck on one
``NextToken``, List pages repeating entries. Each job with good answers finishes as the
endpoint's ground truth says; a job whose answers stay bad ends alone.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asyncoptjob import (
    JobErrorEvent,
    JobStatus,
    Poller,
    RetryPolicy,
    StatusChange,
    SweepPolicy,
    TransientError,
)
from asyncoptjob.mock import MockSageMaker
from asyncoptjob.testing import check_events
from tests.helpers import FAST, check_ground_truth, quick_retry_opts


async def watch_all(mock: MockSageMaker, session: Any, names: list[str], **extra: Any) -> Any:
    async with Poller(**quick_retry_opts(mock, session, **extra)) as poller:
        with anyio.fail_after(60):
            events = [event async for event in poller.watch(names)]
        assert poller.health().alive
    return check_events(events, names)


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param({"missing_status_rate": 0.3}, id="no status"),
        pytest.param({"mistyped_status_rate": 0.3}, id="a number"),
        pytest.param({"malformed_rate": 0.3}, id="not JSON"),
    ],
)
async def test_malformed_answers_are_retried_and_every_job_finishes(
    aio_session: Any, faults: dict[str, Any]
) -> None:
    async with MockSageMaker(seed=21, lifecycle=FAST) as mock:
        names = mock.seed_jobs(12, outcome="COMPLETED")
        mock.set_faults(**faults)
        by_job = await watch_all(mock, aio_session, names)
        check_ground_truth(mock, by_job)
        assert all(by_job[name][-1].status is JobStatus.COMPLETED for name in names)  # type: ignore[union-attr]


@pytest.mark.parametrize("fault", ["missing_status_jobs", "mistyped_status_jobs", "malformed_jobs"])
async def test_a_job_whose_answers_stay_bad_ends_alone(aio_session: Any, fault: str) -> None:
    async with MockSageMaker(seed=22, lifecycle=FAST) as mock:
        names = mock.seed_jobs(6, outcome="COMPLETED")
        mock.set_faults(**{fault: (names[0],)})
        retry = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=1.0)
        by_job = await watch_all(mock, aio_session, names, retry=retry)
        (ended,) = by_job[names[0]]
        assert isinstance(ended, JobErrorEvent)
        assert isinstance(ended.error, TransientError)
        assert ended.error.code == "MalformedResponse"
        good = {name: by_job[name] for name in names[1:]}
        check_ground_truth(mock, good)


async def test_an_unknown_status_is_delivered_and_the_job_still_finishes(
    aio_session: Any,
) -> None:
    async with MockSageMaker(seed=23, lifecycle=FAST) as mock:
        names = mock.seed_jobs(8, outcome="COMPLETED")
        mock.set_faults(unknown_status="PAUSED", unknown_status_jobs=(names[0],))
        async with Poller(**quick_retry_opts(mock, aio_session)) as poller:
            with anyio.fail_after(60):
                async with poller.watch(names[0]) as events:
                    first = await anext(events)
                assert isinstance(first, StatusChange)
                assert first.status == "PAUSED"
                assert not first.status.is_known
                assert not first.is_terminal
                mock.set_faults(unknown_status_jobs=())  # the job's real status again
                rest = [event async for event in poller.watch(names)]
        by_job = check_events(rest, names)
        assert all(by_job[name][-1].status is JobStatus.COMPLETED for name in names)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param({"stuck_list_rate": 1.0}, id="stuck on one token"),
        pytest.param({"duplicate_list_rate": 1.0}, id="duplicate entries"),
    ],
)
async def test_odd_list_answers_lose_nothing(aio_session: Any, faults: dict[str, Any]) -> None:
    async with MockSageMaker(seed=24, lifecycle=FAST) as mock:
        names = mock.seed_jobs(30, outcome="COMPLETED")
        mock.set_faults(**faults)
        sweep = SweepPolicy(interval=0.05, safety_interval=600.0, max_rate=None, page_size=5)
        by_job = await watch_all(mock, aio_session, names, strategy="sweep", sweep=sweep)
        check_ground_truth(mock, by_job)
        assert all(by_job[name][-1].status is JobStatus.COMPLETED for name in names)  # type: ignore[union-attr]
