"""What to retry, how long to wait, when to give up: composed from tenacity's parts.

Whether a failed call is tried again is decided in one place: the ``AsyncRetrying``
that :meth:`RetryPolicy.retrying` builds and the request pipeline wraps around every
call. Two rules meet there:

- **the retry policy**: throttles and transient failures are retried after a backoff,
  until ``max_attempts`` or the job's deadline (:class:`RetryPolicy`);
- **the first-answer rule**: while the endpoint has never answered, a failure to
  connect is retried until ``first_answer_timeout`` seconds after the first one, then
  ends the call with a :class:`~asyncoptjob.TransportError` (code
  ``EndpointUnreachable``): a typo in ``endpoint_url`` fails in seconds, not after
  ``max_elapsed`` (:class:`FirstAnswer`).

The transport makes one attempt per call and only says what happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ._clock import Clock
from ._errors import ConnectError, ThrottledError, TransientError, TransportError
from ._validate import check_positive, check_positive_int

__all__ = ["DEFAULT_FIRST_ANSWER_TIMEOUT", "FirstAnswer", "RetryPolicy"]

RETRYABLE = (ThrottledError, TransientError)

#: Seconds an endpoint that has never answered may fail to connect (refused, a host
#: name that does not resolve) before calls to it fail for good: a typo, not an outage.
DEFAULT_FIRST_ANSWER_TIMEOUT = 30.0


class stop_at_deadline(stop_base):
    """Stop once ``deadline()`` (the clock's time) has passed or the next wait would pass it."""

    def __init__(self, deadline: float, clock: Clock) -> None:
        self.deadline = deadline
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        upcoming = retry_state.upcoming_sleep or 0.0
        return self.clock.now() + upcoming >= self.deadline


class FirstAnswer:
    """Whether the endpoint has ever answered, and how long one that has not is tried.

    One per request pipeline, shared by every operation, and told each call's outcome.
    An answer is a success or an error that came with an HTTP response (it carries
    ``http_status``): a throttle, a 5xx, a not-found all prove the endpoint is there.
    Until the first answer, a ``ConnectError`` is retried
    until ``timeout`` seconds after the first one, whatever the retry policy's
    ``max_attempts`` and deadline, and then ends the call with :meth:`final_error`.
    After it, connection failures are an outage: the retry policy decides.

    Args:
        timeout: seconds (> 0); ``None`` treats a never-answering endpoint as an
            outage from the start.
    """

    __slots__ = ("answered", "timeout", "unreachable_since")

    def __init__(self, timeout: float | None = DEFAULT_FIRST_ANSWER_TIMEOUT) -> None:
        check_positive("first_answer_timeout", timeout, allow_none=True)
        self.timeout = timeout
        #: Whether any call was answered.
        self.answered = False
        #: When the first failure to connect was seen (None: none yet).
        self.unreachable_since: float | None = None

    def saw(self, error: TransportError | None, now: float) -> None:
        """Note a call's outcome at ``now``: ``None`` for a success, else its error."""
        if self.answered:
            return
        if error is None or error.http_status is not None:
            self.answered = True
        elif isinstance(error, ConnectError) and self.unreachable_since is None:
            self.unreachable_since = now

    def deadline(self, error: BaseException | None) -> float | None:
        """Until when ``error`` is retried by this rule; None when the rule does not apply."""
        if (
            self.answered
            or self.timeout is None
            or self.unreachable_since is None
            or not isinstance(error, ConnectError)
        ):
            return None
        return self.unreachable_since + self.timeout

    def final_error(self, error: ConnectError) -> TransportError:
        """The error that ends a call to an endpoint that never answered."""
        return TransportError(
            f"the SageMaker endpoint {error.endpoint_url} never answered: {error.cause}"
            f" (for {self.timeout or 0.0:g}s). Check endpoint_url / region_name"
            " and that the service is running there; an endpoint that has answered"
            " before is retried as an outage instead",
            code="EndpointUnreachable",
            operation=error.operation,
            job_name=error.job_name,
        )

    def give_up(self, retry_state: RetryCallState) -> NoReturn:
        """Raise the last failure, or :meth:`final_error` if this rule ended the retries."""
        error = _failure(retry_state)
        if isinstance(error, ConnectError) and self.deadline(error) is not None:
            raise self.final_error(error) from error
        raise error if error is not None else AssertionError("gave up before any attempt")

    def __repr__(self) -> str:
        return (
            f"FirstAnswer(timeout={self.timeout!r}, answered={self.answered}, "
            f"unreachable_since={self.unreachable_since!r})"
        )


class stop_first_answer(stop_base):
    """Stop at the first-answer deadline while that rule applies, else as ``otherwise`` says."""

    def __init__(self, rule: FirstAnswer, clock: Clock, otherwise: stop_base) -> None:
        self.rule = rule
        self.clock = clock
        self.otherwise = otherwise

    def __call__(self, retry_state: RetryCallState) -> bool:
        until = self.rule.deadline(_failure(retry_state))
        if until is None:
            return self.otherwise(retry_state)
        return self.clock.now() >= until


class wait_first_answer(wait_base):
    """``otherwise``'s wait, cut so that no sleep passes the first-answer deadline.

    The last attempt then comes at the deadline itself: an endpoint is given the whole
    ``first_answer_timeout``, not whatever the backoff happened to leave of it.
    """

    def __init__(self, rule: FirstAnswer, clock: Clock, otherwise: wait_base) -> None:
        self.rule = rule
        self.clock = clock
        self.otherwise = otherwise

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self.otherwise(retry_state)
        until = self.rule.deadline(_failure(retry_state))
        if until is None:
            return wait
        return max(0.0, min(wait, until - self.clock.now()))


def _failure(retry_state: RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None else None


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
        first_answer: FirstAnswer | None = None,
    ) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for one call: the one place retries are decided.

        Args:
            deadline: the clock time after which no attempt starts (the job's give-up time).
            clock: the time source the deadlines are on.
            sleep: how to sleep between attempts (injected so tests and soft stops work).
            before_sleep: called before each backoff sleep (logging, statistics).
            first_answer: the endpoint's first-answer rule, if it has one.
        """
        stop: stop_base = stop_after_attempt(self.max_attempts) | stop_at_deadline(deadline, clock)
        wait: wait_base = wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)
        kwargs: dict[str, Any] = {}
        if before_sleep is not None:
            kwargs["before_sleep"] = before_sleep
        if first_answer is not None:
            stop = stop_first_answer(first_answer, clock, stop)
            wait = wait_first_answer(first_answer, clock, wait)
            kwargs["retry_error_callback"] = first_answer.give_up
        return AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE),
            wait=wait,
            stop=stop,
            sleep=sleep,
            reraise=True,
            **kwargs,
        )
