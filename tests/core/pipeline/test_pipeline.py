"""The request pipeline on its own: one metered call, its outcome, its retries.

Every call goes to a FakeTransport; tokens, backoffs and the send times are on a
ManualClock (autojump: a backoff passes as soon as everything waits for it).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

from asyncoptjob import (
    AdaptiveRateLimiter,
    CredentialsError,
    JobNotFoundError,
    RetryPolicy,
    ThrottledError,
    TransientError,
    TransportError,
)
from asyncoptjob._operations import DESCRIBE, LIST, OUTCOMES
from asyncoptjob._pipeline import Pipeline
from asyncoptjob.testing import FakeRequest, FakeTransport, ManualClock, describe_response
from tests.helpers import RecordingBudget

RETRY = RetryPolicy(initial_wait=1, max_wait=8, max_elapsed=600, max_attempts=8)
FAR = float("inf")


def throttled() -> ThrottledError:
    return ThrottledError("Rate exceeded", code="ThrottlingException", operation=DESCRIBE)


def transient() -> TransientError:
    return TransientError("We encountered an internal error", code="InternalFailure")


def not_found() -> JobNotFoundError:
    return JobNotFoundError("Could not find job 'job-a'", code="ResourceNotFound")


def refused() -> CredentialsError:
    return CredentialsError("Access denied", code="AccessDeniedException")


class Answers:
    """A FakeTransport handler: ``answers`` in turn (errors are raised), then COMPLETED.

    ``sent`` keeps the clock's time at each call.
    """

    def __init__(self, clock: ManualClock, answers: Iterable[Exception | None] = ()) -> None:
        self.clock = clock
        self.answers = list(answers)
        self.sent: list[float] = []

    def __call__(self, request: FakeRequest) -> Any:
        self.sent.append(self.clock.now())
        answer = self.answers.pop(0) if self.answers else None
        return answer or describe_response(request.job_name or "", "COMPLETED")


def parts(
    *answers: Exception | None, clock: ManualClock | None = None, retry: RetryPolicy = RETRY
) -> tuple[Pipeline, RecordingBudget, FakeTransport, Answers]:
    """A pipeline, a budget that notes what it is told, and a transport giving ``answers``."""
    clock = clock or ManualClock(start=100, autojump=True)
    handler = Answers(clock, answers)
    budget = RecordingBudget(AdaptiveRateLimiter(clock=clock))
    return Pipeline(clock=clock, retry=retry), budget, FakeTransport(handler), handler


def describe(transport: FakeTransport) -> Any:
    return partial(transport.describe, "job-a")


# -- one call ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (None, "ok"),
        (throttled(), "throttled"),
        (transient(), "transient"),
        (not_found(), "not_found"),
        (refused(), "error"),
    ],
)
async def test_each_call_is_counted_under_its_operation_and_outcome(
    answer: Exception | None, outcome: str
) -> None:
    pipeline, budget, transport, _ = parts(answer)
    if answer is None:
        description, _ = await pipeline.call(DESCRIBE, budget, describe(transport))
        assert description["OptimizationJobStatus"] == "COMPLETED"
    else:
        with pytest.raises(type(answer)):
            await pipeline.call(DESCRIBE, budget, describe(transport))
    assert pipeline.stats.requests[DESCRIBE] == {name: int(name == outcome) for name in OUTCOMES}
    assert pipeline.stats.requests[LIST] == dict.fromkeys(OUTCOMES, 0)
    assert pipeline.stats.in_flight == 0
    assert budget.acquired == 1


async def test_the_budget_hears_each_answer_with_the_time_it_was_sent() -> None:
    clock = ManualClock(start=100, autojump=True)
    pipeline, budget, transport, handler = parts(None, throttled(), transient(), clock=clock)
    _, sent_at = await pipeline.call(DESCRIBE, budget, describe(transport))
    assert budget.successes == [sent_at] == [handler.sent[0]]
    clock.jump(5)
    with pytest.raises(ThrottledError):
        await pipeline.call(DESCRIBE, budget, describe(transport))
    assert budget.throttles == [handler.sent[1]]
    # A transient failure says nothing about the rate: the budget is not told.
    with pytest.raises(TransientError):
        await pipeline.call(DESCRIBE, budget, describe(transport))
    assert (len(budget.successes), len(budget.throttles)) == (1, 1)


async def test_the_send_time_is_taken_once_the_token_is_granted() -> None:
    clock = ManualClock(start=100, autojump=True)
    pipeline, _, transport, handler = parts(clock=clock)
    one_a_second = RecordingBudget(AdaptiveRateLimiter(max_rate=1, burst=1, clock=clock))
    sent = [(await pipeline.call(DESCRIBE, one_a_second, describe(transport)))[1] for _ in "ab"]
    assert sent == handler.sent
    # The second call waited a second for its token, then was sent.
    assert sent[1] - sent[0] == pytest.approx(1)


async def test_failures_in_a_row_count_calls_without_an_answer() -> None:
    clock = ManualClock(start=100, autojump=True)
    pipeline, budget, transport, _ = parts(throttled(), transient(), not_found(), clock=clock)
    assert pipeline.stats.answered_at is None
    for expected in (1, 2):
        with pytest.raises(TransportError):
            await pipeline.call(DESCRIBE, budget, describe(transport))
        assert pipeline.stats.failures_in_a_row == expected
    clock.jump(7)
    with pytest.raises(JobNotFoundError):  # SageMaker answered: the job is unknown
        await pipeline.call(DESCRIBE, budget, describe(transport))
    assert pipeline.stats.failures_in_a_row == 0
    assert pipeline.stats.answered_at == clock.now()


async def test_in_flight_counts_the_calls_on_the_wire() -> None:
    pipeline, budget, _, _ = parts()
    release = anyio.Event()

    async def slow(request: FakeRequest) -> Any:
        await release.wait()
        return describe_response(request.job_name or "", "INPROGRESS")

    transport = FakeTransport(slow)
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(pipeline.call, DESCRIBE, budget, describe(transport))
        while transport.count() < 3:
            await anyio.lowlevel.checkpoint()
        assert pipeline.stats.in_flight == 3
        release.set()
    assert pipeline.stats.in_flight == 0


# -- retried calls -------------------------------------------------------------------------


async def test_throttles_and_transient_errors_are_retried_each_with_its_own_token() -> None:
    pipeline, budget, transport, _ = parts(throttled(), transient(), throttled())
    description, _ = await pipeline.call_retrying(
        DESCRIBE, budget, describe(transport), deadline=FAR
    )
    assert description["OptimizationJobStatus"] == "COMPLETED"
    described = pipeline.stats.requests[DESCRIBE]
    assert (described["throttled"], described["transient"], described["ok"]) == (2, 1, 1)
    assert pipeline.stats.retries == pipeline.stats.retried[DESCRIBE] == 3
    assert pipeline.stats.retried[LIST] == 0
    assert budget.acquired == transport.count() == 4
    assert len(budget.throttles) == 2


async def test_an_answer_that_is_not_worth_retrying_ends_the_call_at_once() -> None:
    for answer in (not_found(), refused()):
        pipeline, budget, transport, _ = parts(answer)
        with pytest.raises(type(answer)):
            await pipeline.call_retrying(DESCRIBE, budget, describe(transport), deadline=FAR)
        assert (transport.count(), pipeline.stats.retries) == (1, 0)


async def test_retries_go_on_until_the_deadline_and_no_attempt_starts_after_it() -> None:
    clock = ManualClock(start=100, autojump=True)
    patient = RetryPolicy(initial_wait=1, max_wait=8, max_attempts=1000)
    pipeline, budget, transport, handler = parts(*[throttled()] * 1000, clock=clock, retry=patient)
    deadline = clock.now() + 60
    with pytest.raises(ThrottledError):
        await pipeline.call_retrying(DESCRIBE, budget, describe(transport), deadline=deadline)
    assert 2 < transport.count() < patient.max_attempts  # the deadline ended it
    assert all(at < deadline for at in handler.sent)
    assert pipeline.stats.requests[DESCRIBE]["throttled"] == transport.count()
    assert pipeline.stats.retries == transport.count() - 1


async def test_each_retry_is_logged_with_its_attempt_and_delay() -> None:
    with capture_logs() as logs:
        pipeline, budget, transport, _ = parts(throttled(), transient())
        await pipeline.call_retrying(DESCRIBE, budget, describe(transport), deadline=FAR)
    assert [(entry["event"], entry["attempt"]) for entry in logs] == [
        ("throttled", 1),
        ("retrying", 2),
    ]
    assert logs[1]["error"] == "InternalFailure"
    assert all(entry["delay"] >= 0 for entry in logs)
