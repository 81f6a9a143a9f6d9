"""RetryPolicy: what is retried, how long each backoff is, when retrying stops."""

from __future__ import annotations

import itertools

import pytest
from tenacity import RetryCallState

from asyncoptjob import (
    CredentialsError,
    InvalidRequestError,
    JobNotFoundError,
    RetryPolicy,
    ThrottledError,
    TransientError,
)
from asyncoptjob.testing import ManualClock

FOREVER = float("inf")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"initial_wait": 0}, "initial_wait"), ({"max_attempts": 0}, "max_attempts")],
)
def test_retry_policy_validation(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


async def attempts_until_it_stops(
    policy: RetryPolicy, clock: ManualClock, error: Exception, *, deadline: float = FOREVER
) -> tuple[list[float], list[float]]:
    """Fail every attempt with ``error`` until the policy stops; return when each attempt
    started and each backoff it announced (the clock autojumps through them)."""
    started: list[float] = []
    waits: list[float] = []

    def before_sleep(state: RetryCallState) -> None:
        waits.append(state.upcoming_sleep)

    retrying = policy.retrying(
        deadline=deadline, clock=clock, sleep=clock.sleep, before_sleep=before_sleep
    )
    with pytest.raises(type(error)) as info:
        async for attempt in retrying:
            with attempt:
                started.append(clock.now())
                raise error
    assert info.value is error  # the last failure itself, not a RetryError
    return started, waits


def throttled() -> ThrottledError:
    return ThrottledError("Rate exceeded", code="ThrottlingException")


async def test_backoffs_are_capped_exponential_with_full_jitter_on_the_given_clock() -> None:
    policy = RetryPolicy(initial_wait=0.5, max_wait=4, max_attempts=12)
    clock = ManualClock(autojump=True)
    started, waits = await attempts_until_it_stops(policy, clock, throttled())
    assert len(started) == policy.max_attempts
    for n, wait in enumerate(waits):
        # random(0, min(max_wait, initial_wait * 2**n)): AWS's "full jitter".
        assert 0 <= wait <= min(policy.max_wait, policy.initial_wait * 2**n)
    # Each backoff was slept on the clock it was given, and only that long.
    gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
    assert gaps == pytest.approx(waits)


@pytest.mark.parametrize(
    "error",
    [
        TransientError("We encountered an internal error", code="InternalFailure"),
        throttled(),
    ],
)
async def test_throttles_and_transient_errors_are_retried_up_to_max_attempts(
    error: Exception,
) -> None:
    policy = RetryPolicy(initial_wait=1, max_attempts=4)
    started, waits = await attempts_until_it_stops(policy, ManualClock(autojump=True), error)
    assert len(started) == policy.max_attempts
    assert len(waits) == policy.max_attempts - 1


@pytest.mark.parametrize(
    "error",
    [
        JobNotFoundError("Could not find job", code="ResourceNotFound"),
        CredentialsError("Access denied", code="AccessDeniedException"),
        InvalidRequestError("1 validation error", code="ValidationException"),
        ValueError("not the transport's"),
    ],
)
async def test_other_errors_are_never_retried(error: Exception) -> None:
    started, waits = await attempts_until_it_stops(RetryPolicy(), ManualClock(), error)
    assert (len(started), waits) == (1, [])


async def test_no_backoff_is_started_that_would_end_past_the_deadline() -> None:
    policy = RetryPolicy(initial_wait=2, max_wait=30, max_attempts=1000)
    clock = ManualClock(start=500, autojump=True)
    deadline = clock.now() + 60
    started, _ = await attempts_until_it_stops(policy, clock, throttled(), deadline=deadline)
    assert 1 < len(started) < policy.max_attempts  # the deadline stopped it, not the count
    assert all(at < deadline for at in started)
    assert clock.now() <= deadline
