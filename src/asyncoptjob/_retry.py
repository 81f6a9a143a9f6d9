"""What to retry, how long to wait, when to give up: composed from tenacity's parts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from ._clock import Clock
from ._errors import ThrottledError, TransientError
from ._validate import check_positive, check_positive_int

__all__ = ["RetryPolicy"]

RETRYABLE = (ThrottledError, TransientError)


class stop_at_deadline(stop_base):
    """Stop once ``deadline()`` (the clock's time) has passed or the next wait would pass it."""

    def __init__(self, deadline: float, clock: Clock) -> None:
        self.deadline = deadline
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        upcoming = retry_state.upcoming_sleep or 0.0
        return self.clock.now() + upcoming >= self.deadline


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the library retries throttled and transient failures.

    Throttles and transient errors (5xx, timeouts, dropped connections, malformed
    bodies) are retried after a capped exponential backoff with full jitter
    (``random(0, min(max_wait, initial_wait * 2**n))``, see the AWS Architecture Blog's
    "Exponential Backoff And Jitter"). Each attempt first takes a token from the shared
    rate budget, so retries never exceed it. A job whose calls keep failing for
    ``max_elapsed`` seconds gets a :class:`~asyncoptjob.JobErrorEvent`; nothing retries
    forever. Other errors are never retried here (not-found has its own grace period).

    Args:
        initial_wait: first backoff scale in seconds (> 0).
        max_wait: cap of one backoff in seconds (> 0).
        max_elapsed: seconds a job may keep failing before it is given up (> 0).
        max_attempts: attempts per poll before the job is rescheduled (>= 1).
    """

    initial_wait: float = 0.5
    max_wait: float = 20.0
    max_elapsed: float = 600.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        check_positive("initial_wait", self.initial_wait)
        check_positive("max_wait", self.max_wait)
        check_positive("max_elapsed", self.max_elapsed)
        check_positive_int("max_attempts", self.max_attempts)

    def retrying(
        self,
        *,
        deadline: float,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]],
        before_sleep: Callable[[RetryCallState], None] | None = None,
    ) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for one poll of one job.

        Args:
            deadline: the clock time after which no attempt starts (the job's give-up time).
            clock: the time source the deadline is on.
            sleep: how to sleep between attempts (injected so tests and soft stops work).
            before_sleep: called before each backoff sleep (logging, statistics).
        """
        kwargs: dict[str, Any] = {}
        if before_sleep is not None:
            kwargs["before_sleep"] = before_sleep
        return AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE),
            wait=wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait),
            stop=stop_after_attempt(self.max_attempts) | stop_at_deadline(deadline, clock),
            sleep=sleep,
            reraise=True,
            **kwargs,
        )
