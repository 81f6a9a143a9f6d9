"""The request pipeline: one metered call for every request the library sends.

Describes, the last look at a caller's deadline and List sweeps all go through
:meth:`Pipeline.call`, in the same order of steps::

    take a token from the RateBudget -> note the send time -> call the transport
        -> count the outcome -> tell the budget (a success, or a throttle and when it was sent)

and, for calls worth retrying, :meth:`Pipeline.call_retrying` wraps the same call in
tenacity (``RetryPolicy.retrying``): every attempt takes its own token, so retries
never exceed the budget. That is the one place a failed call is retried or given up:
throttles and transient failures by the retry policy, and a failure to connect to an
endpoint that never answered by the first-answer rule (``_retry.FirstAnswer``, told
every outcome here, by every operation). The transport below makes one attempt per
call. Outcomes share one vocabulary, :data:`OUTCOMES`, per operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import RetryCallState

from ._clock import Clock
from ._errors import JobNotFoundError, ThrottledError, TransientError, TransportError
from ._log import get_logger
from ._ratelimit import RateBudget
from ._retry import DEFAULT_FIRST_ANSWER_TIMEOUT, RETRYABLE, FirstAnswer, RetryPolicy
from ._stats import Statistics

__all__ = ["Pipeline", "outcome_of"]

log = get_logger()

T = TypeVar("T")


def outcome_of(exc: TransportError) -> str:
    """The outcome name of a failed call."""
    if isinstance(exc, ThrottledError):
        return "throttled"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, JobNotFoundError):
        return "not_found"
    return "error"


class Pipeline:
    """Sends calls through a rate budget, counts their outcomes, retries with tenacity.

    Its counts go to ``stats`` (:class:`~._stats.Statistics`): ``requests`` by operation
    and outcome, ``retries`` and ``retried``, ``in_flight``, ``answered_at`` (a
    ``not_found`` is an answer) and ``failures_in_a_row`` (calls that got no answer:
    throttled, transient, error, since the last answered one).

    Args:
        first_answer_timeout: seconds an endpoint that never answered may fail to
            connect before calls to it fail for good (None: retried as an outage).
    """

    __slots__ = ("clock", "first_answer", "log", "retry", "stats")

    def __init__(
        self,
        *,
        clock: Clock,
        retry: RetryPolicy,
        stats: Statistics | None = None,
        first_answer_timeout: float | None = DEFAULT_FIRST_ANSWER_TIMEOUT,
    ) -> None:
        self.clock = clock
        self.retry = retry
        self.stats = stats if stats is not None else Statistics()
        #: The first-answer rule, and whether the endpoint ever answered.
        self.first_answer = FirstAnswer(first_answer_timeout)
        # Bound once: the logging route and its level gate are resolved now, not per call.
        self.log = log.bind()

    async def call(
        self, operation: str, budget: RateBudget, send: Callable[[], Awaitable[T]]
    ) -> tuple[T, float]:
        """One metered attempt: returns the answer and when the request was sent.

        Raises:
            TransportError: the call failed (counted, and a throttle reported to ``budget``).
        """
        await budget.acquire()
        sent_at = self.clock.now()
        stats = self.stats
        counts = stats.requests[operation]
        stats.in_flight += 1
        try:
            answer = await send()
        except TransportError as exc:
            self.first_answer.saw(exc, self.clock.now())
            outcome = outcome_of(exc)
            counts[outcome] += 1
            if outcome == "not_found":
                self._answered()
            else:
                stats.failures_in_a_row += 1
                if outcome == "throttled":
                    budget.on_throttle(sent_at)
            raise
        finally:
            stats.in_flight -= 1
        counts["ok"] += 1
        self.first_answer.saw(None, sent_at)
        self._answered()
        budget.on_success(sent_at)
        return answer, sent_at

    def _answered(self) -> None:
        self.stats.answered_at = self.clock.now()
        self.stats.failures_in_a_row = 0

    async def call_retrying(
        self,
        operation: str,
        budget: RateBudget,
        send: Callable[[], Awaitable[T]],
        *,
        deadline: float,
    ) -> tuple[T, float]:
        """:meth:`call`, retrying throttles and transient errors until ``deadline``.

        Args:
            deadline: the clock time after which no attempt starts.

        Raises:
            TransportError: the last failure, once retries are exhausted or the error
                is not worth retrying; code ``EndpointUnreachable`` when the endpoint
                never answered within ``first_answer_timeout``.
        """
        try:
            # The common case: one attempt, none of the retry machinery on the hot path.
            return await self.call(operation, budget, send)
        except RETRYABLE as exc:
            first: BaseException | None = exc

        def before_sleep(state: RetryCallState) -> None:
            self._before_sleep(state, budget)
            self.stats.retried[operation] += 1

        retrying = self.retry.retrying(
            deadline=deadline,
            clock=self.clock,
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            first_answer=self.first_answer,
        )
        async for attempt in retrying:
            with attempt:
                if first is not None:
                    # Hand tenacity the first failure so it counts as attempt 1.
                    failed, first = first, None
                    raise failed
                return await self.call(operation, budget, send)
        raise AssertionError("unreachable: tenacity re-raises the last failure")  # pragma: no cover

    def _before_sleep(self, state: RetryCallState, budget: RateBudget) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        fields = {
            "job_name": getattr(exc, "job_name", None),
            "operation": getattr(exc, "operation", None),
            "attempt": state.attempt_number,
            "delay": round(state.upcoming_sleep, 3),
        }
        if isinstance(exc, ThrottledError):
            self.log.info("throttled", rate_limit=budget.rate, **fields)
        else:
            self.log.info("retrying", error=getattr(exc, "code", type(exc).__name__), **fields)
