"""One job's entry: what a failure means for it, and the fan-out of a status."""

from __future__ import annotations

from datetime import timezone

import pytest
import structlog

from asyncoptjob import (
    CredentialsError,
    InvalidRequestError,
    JobErrorEvent,
    JobNotFoundError,
    JobStatus,
    StatusChange,
    ThrottledError,
    TransientError,
)
from asyncoptjob._job import JobEntry, JobTable, Verdict
from asyncoptjob._stats import Statistics
from asyncoptjob._subscription import Subscription
from asyncoptjob.testing import describe_response

LOG = structlog.get_logger()


def entry() -> tuple[JobEntry, Statistics]:
    stats = Statistics()
    stats.jobs_pending = 1
    return JobTable().add("job-a", now=100.0), stats


@pytest.mark.parametrize(
    "error",
    [ThrottledError("slow down", code="ThrottlingException"), TransientError("boom", code="500")],
)
def test_a_passing_failure_is_retried_until_max_elapsed_since_it_began(error: Exception) -> None:
    job, _ = entry()
    assert job.judge(error, 100.0, 101.0, 60.0, 0.0) is Verdict.RETRY  # type: ignore[arg-type]
    assert job.failing_since == 100.0
    assert job.judge(error, 130.0, 159.9, 60.0, 0.0) is Verdict.RETRY  # type: ignore[arg-type]
    assert job.judge(error, 150.0, 160.0, 60.0, 0.0) is Verdict.GIVE_UP  # type: ignore[arg-type]
    job.answered(200.0)  # an answer: the count starts over
    assert job.failing_since is None
    assert job.give_up_at(300.0, 60.0) == 360.0


def test_not_found_waits_out_the_grace_only_for_a_job_never_seen() -> None:
    job, stats = entry()
    gone = JobNotFoundError("no such job", code="ResourceNotFound")
    assert job.judge(gone, 100.0, 110.0, 600.0, 30.0) is Verdict.NOT_FOUND_YET
    assert job.judge(gone, 100.0, 131.0, 600.0, 30.0) is Verdict.GIVE_UP
    job.apply(JobStatus.INPROGRESS, describe_response("job-a", "INPROGRESS"), stats, LOG)
    assert job.judge(gone, 100.0, 101.0, 600.0, 30.0) is Verdict.GIVE_UP  # deleted


def test_credentials_fail_the_subscribers_and_anything_else_gives_up() -> None:
    job, _ = entry()
    denied = CredentialsError("denied", code="AccessDeniedException")
    invalid = InvalidRequestError("bad name", code="ValidationException")
    assert job.judge(denied, 100.0, 100.0, 60.0, 0.0) is Verdict.FAIL_SUBSCRIBERS
    assert job.judge(invalid, 100.0, 100.0, 60.0, 0.0) is Verdict.GIVE_UP


def test_a_status_fans_out_and_a_waiting_subscriber_gets_its_first_event() -> None:
    job, stats = entry()
    early, late = Subscription(["job-a"]), Subscription(["job-a"])
    job.add(early)
    job.apply(JobStatus.STARTING, describe_response("job-a", "STARTING"), stats, LOG)
    job.add(late)
    job.apply(JobStatus.INPROGRESS, describe_response("job-a", "INPROGRESS"), stats, LOG)
    first, second = early.get_nowait(), early.get_nowait()
    assert isinstance(first, StatusChange)
    assert isinstance(second, StatusChange)
    assert (first.previous_status, first.status) == (None, JobStatus.STARTING)
    assert (second.previous_status, second.status) == (JobStatus.STARTING, JobStatus.INPROGRESS)
    assert second.observed_at.tzinfo is timezone.utc
    joined = late.get_nowait()
    assert isinstance(joined, StatusChange)
    assert (joined.previous_status, joined.status) == (None, JobStatus.INPROGRESS)
    assert stats.events == 3
    assert stats.delivered == {"STARTING": 1, "INPROGRESS": 2}
    assert stats.jobs_pending == 0


def test_a_durable_consumer_goes_on_from_its_committed_status() -> None:
    job, stats = entry()
    resumed = Subscription(["job-a"])
    resumed.since = {"job-a": JobStatus.INPROGRESS}
    job.add(resumed)
    job.apply(JobStatus.STARTING, describe_response("job-a", "STARTING"), stats, LOG)
    assert resumed.get_nowait() is None  # older than its cursor: it waits
    job.apply(JobStatus.COMPLETED, describe_response("job-a", "COMPLETED"), stats, LOG)
    done = resumed.get_nowait()
    assert isinstance(done, StatusChange)
    assert (done.previous_status, done.status) == (JobStatus.INPROGRESS, JobStatus.COMPLETED)


def test_an_error_is_everyone_s_terminal_outcome_once() -> None:
    job, stats = entry()
    seen, waiting = Subscription(["job-a"]), Subscription(["job-a"])
    job.add(seen)
    job.apply(JobStatus.STARTING, describe_response("job-a", "STARTING"), stats, LOG)
    job.add(waiting)
    error = TransientError("gave up", code="InternalFailure")
    job.end_with_error(error, stats)
    job.end_with_error(error, stats)  # a second time: nobody hears it twice
    assert seen.get_nowait() is not None
    for sub in (seen, waiting):
        ended = sub.get_nowait()
        assert isinstance(ended, JobErrorEvent)
        assert ended.error is error
        assert sub.get_nowait() is None
        assert sub.is_finished()
