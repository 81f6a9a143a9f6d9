"""The one retry decision: the retry policy and the first-answer rule, in virtual time.

Every call here goes through the request pipeline to a :class:`FakeTransport` on a
:class:`ManualClock`; "refused" is the error the aiobotocore transport raises when no
connection could be made (nothing is sent anywhere).
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import pytest

from asyncoptjob import (
    AdaptiveRateLimiter,
    JobErrorEvent,
    Poller,
    RetryPolicy,
    ThrottledError,
    TransientError,
    TransportError,
    wait_until_done,
)
from asyncoptjob._errors import ConnectError
from asyncoptjob._operations import DESCRIBE, LIST
from asyncoptjob._pipeline import Pipeline
from asyncoptjob.testing import FakeRequest, FakeTransport, ManualClock, describe_response

URL = "http://sagemaker.example.invalid"
CAUSE = "the connection was refused"
FIRST_ANSWER_TIMEOUT = 5.0
# Backoffs well inside the first-answer timeout, so the rule (not the policy) ends a call.
POLICY = RetryPolicy(initial_wait=0.1, max_wait=1.0, max_elapsed=3600.0, max_attempts=3)


def refused(request: FakeRequest) -> ConnectError:
    return ConnectError(
        f"{request.operation} failed: EndpointConnectionError: could not connect",
        endpoint_url=URL,
        cause=CAUSE,
        code="EndpointConnectionError",
        operation=request.operation,
        job_name=request.job_name,
    )


def throttled(request: FakeRequest) -> ThrottledError:
    return ThrottledError(
        "slow down",
        code="ThrottlingException",
        operation=request.operation,
        job_name=request.job_name,
        http_status=400,
    )


class Endpoint:
    """A fake endpoint whose answer can change, recording when each request came."""

    def __init__(self, clock: ManualClock, answer: Callable[[FakeRequest], Any]) -> None:
        self.clock = clock
        self.answer = answer
        self.times: list[float] = []
        self.transport = FakeTransport(self.handle)

    def handle(self, request: FakeRequest) -> Any:
        self.times.append(self.clock.now())
        return self.answer(request)


def ok(request: FakeRequest) -> dict[str, Any]:
    if request.operation == LIST:
        return {"OptimizationJobSummaries": []}
    return describe_response(request.job_name or "", "INPROGRESS")


async def run(clock: ManualClock, call: Callable[[], Awaitable[Any]]) -> Any:
    """Await ``call()`` while moving the clock to each sleeper's wake-up; return or raise."""
    outcome: list[Any] = []

    async def attempt() -> None:
        try:
            outcome.append(await call())
        except TransportError as exc:
            outcome.append(exc)

    with anyio.fail_after(10):  # a hang guard, not a timing assertion
        async with anyio.create_task_group() as tg:
            tg.start_soon(attempt)
            while not outcome:
                await clock.advance(0)
                due = clock.next_deadline
                if due is not None and not outcome:
                    await clock.advance(due - clock.now())
    (result,) = outcome
    if isinstance(result, TransportError):
        raise result
    return result


def pipeline_on(clock: ManualClock, **kwargs: Any) -> Pipeline:
    kwargs.setdefault("first_answer_timeout", FIRST_ANSWER_TIMEOUT)
    kwargs.setdefault("retry", POLICY)
    return Pipeline(clock=clock, **kwargs)


def describe(pipeline: Pipeline, endpoint: Endpoint, clock: ManualClock) -> Callable[[], Any]:
    budget = AdaptiveRateLimiter(clock=clock)
    send = partial(endpoint.transport.describe, "job-a")
    deadline = clock.now() + pipeline.retry.max_elapsed
    return partial(pipeline.call_retrying, DESCRIBE, budget, send, deadline=deadline)


async def test_a_never_answering_endpoint_fails_at_the_first_answer_deadline() -> None:
    clock = ManualClock()
    endpoint = Endpoint(clock, refused)
    pipeline = pipeline_on(clock)
    with pytest.raises(TransportError) as info:
        await run(clock, describe(pipeline, endpoint, clock))
    error = info.value
    assert error.code == "EndpointUnreachable"
    assert not isinstance(error, TransientError)
    assert URL in str(error)
    assert CAUSE in str(error)
    assert "endpoint_url" in str(error)
    assert error.job_name == "job-a"
    assert isinstance(error.__cause__, ConnectError)
    # Retried past the policy's max_attempts, and the last attempt came at the deadline.
    assert len(endpoint.times) > POLICY.max_attempts
    assert endpoint.times[-1] == pytest.approx(endpoint.times[0] + FIRST_ANSWER_TIMEOUT)
    assert clock.now() == pytest.approx(endpoint.times[0] + FIRST_ANSWER_TIMEOUT)


async def test_after_the_deadline_every_call_fails_at_its_first_attempt() -> None:
    clock = ManualClock()
    endpoint = Endpoint(clock, refused)
    pipeline = pipeline_on(clock)
    with pytest.raises(TransportError):
        await run(clock, describe(pipeline, endpoint, clock))
    sent, ended_at = len(endpoint.times), clock.now()
    with pytest.raises(TransportError) as info:
        await run(clock, describe(pipeline, endpoint, clock))
    assert info.value.code == "EndpointUnreachable"
    assert len(endpoint.times) == sent + 1
    assert clock.now() == ended_at


@pytest.mark.parametrize(
    "first",
    [
        pytest.param((DESCRIBE, ok), id="a describe answered"),
        pytest.param((LIST, ok), id="a list answered"),
        pytest.param((DESCRIBE, throttled), id="a throttle answered"),
    ],
)
async def test_an_endpoint_that_answered_once_keeps_the_retry_budget(
    first: tuple[str, Callable[[FakeRequest], Any]],
) -> None:
    operation, answer = first
    clock = ManualClock()
    endpoint = Endpoint(clock, answer)
    # max_attempts out of the way: the job's deadline (max_elapsed) ends the call.
    policy = RetryPolicy(
        initial_wait=0.1, max_wait=1.0, max_elapsed=4 * FIRST_ANSWER_TIMEOUT, max_attempts=10_000
    )
    pipeline = pipeline_on(clock, retry=policy)
    budget = AdaptiveRateLimiter(clock=clock)
    transport = endpoint.transport
    send = partial(transport.describe, "job-a") if operation == DESCRIBE else transport.list_jobs
    with contextlib.suppress(ThrottledError):  # an answer all the same
        await pipeline.call(operation, budget, send)
    endpoint.answer = refused
    started = clock.now()
    deadline = started + policy.max_elapsed
    with pytest.raises(ConnectError) as info:
        await run(clock, describe(pipeline, endpoint, clock))
    assert info.value.code != "EndpointUnreachable"
    assert endpoint.times[-1] - started > FIRST_ANSWER_TIMEOUT
    assert deadline - policy.max_wait <= endpoint.times[-1] <= deadline


async def test_none_retries_a_never_answering_endpoint_as_an_outage() -> None:
    clock = ManualClock()
    endpoint = Endpoint(clock, refused)
    pipeline = pipeline_on(clock, first_answer_timeout=None)
    with pytest.raises(ConnectError) as info:
        await run(clock, describe(pipeline, endpoint, clock))
    # The retry policy alone decided: max_attempts, then the job is polled again later.
    assert isinstance(info.value, TransientError)
    assert info.value.code != "EndpointUnreachable"
    assert len(endpoint.times) == POLICY.max_attempts


async def test_throttles_are_retried_to_max_attempts_each_taking_a_token() -> None:
    clock = ManualClock()
    endpoint = Endpoint(clock, throttled)
    pipeline = pipeline_on(clock)
    budget = AdaptiveRateLimiter(clock=clock)
    send = partial(endpoint.transport.describe, "job-a")
    deadline = clock.now() + POLICY.max_elapsed
    with pytest.raises(ThrottledError):
        await run(clock, partial(pipeline.call_retrying, DESCRIBE, budget, send, deadline=deadline))
    stats = budget.statistics()
    assert len(endpoint.times) == POLICY.max_attempts
    assert stats.acquired == stats.throttles == POLICY.max_attempts
    assert pipeline.stats.requests[DESCRIBE]["throttled"] == POLICY.max_attempts
    assert pipeline.stats.retries == pipeline.stats.retried[DESCRIBE] == POLICY.max_attempts - 1


async def test_the_poller_ends_a_watch_of_a_never_answering_endpoint() -> None:
    clock = ManualClock()
    endpoint = Endpoint(clock, refused)
    with pytest.raises(TransportError) as info:
        await run(
            clock,
            partial(
                wait_until_done,
                "job-a",
                transport=endpoint.transport,
                clock=clock,
                first_answer_timeout=FIRST_ANSWER_TIMEOUT,
                retry=POLICY,
            ),
        )
    assert info.value.code == "EndpointUnreachable"
    # The first attempt at or past the deadline (after its rate-budget token) was the last.
    deadline = endpoint.times[0] + FIRST_ANSWER_TIMEOUT
    assert endpoint.times[-2] < deadline <= endpoint.times[-1]


async def test_the_poller_retries_an_outage_when_first_answer_timeout_is_none() -> None:
    clock = ManualClock()
    endpoint = Endpoint(clock, refused)
    policy = RetryPolicy(initial_wait=0.1, max_wait=1.0, max_elapsed=4 * FIRST_ANSWER_TIMEOUT)
    async with (
        Poller(
            transport=endpoint.transport, clock=clock, first_answer_timeout=None, retry=policy
        ) as poller,
        poller.watch(["job-a"]) as events,
    ):
        event = await run(clock, partial(anext, events))
    assert isinstance(event, JobErrorEvent)
    assert isinstance(event.error, ConnectError)
    assert endpoint.times[-1] - endpoint.times[0] > FIRST_ANSWER_TIMEOUT


def test_a_connect_error_keeps_its_endpoint_and_cause_through_pickling() -> None:
    error = refused(FakeRequest(DESCRIBE, {"OptimizationJobName": "job-a"}))
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ConnectError
    assert (again.endpoint_url, again.cause, again.code, again.job_name) == (
        URL,
        CAUSE,
        error.code,
        "job-a",
    )
