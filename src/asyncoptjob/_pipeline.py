"""The request pipeline: one metered call for every request the library sends.

Describes, the last look at a caller's deadline and List sweeps all go through
:meth:`Pipeline.call`, in the same order of steps::

    take a token from the RateBudget -> note the send time -> call the transport
        -> count the outcome -> tell the budget (a success, or a throttle and when it was sent)

and, for calls worth retrying, :meth:`Pipeline.call_retrying` wraps the same call in
tenacity (``RetryPolicy``): every attempt takes its own token, so retries never
exceed the budget. Outcomes share one vocabulary, :data:`OUTCOMES`, per operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import RetryCallState

from ._clock import Clock
from ._errors import JobNotFoundError, ThrottledError, TransientError, TransportError
from ._log import get_logger
from ._ratelimit import RateBudget
from ._retry import RETRYABLE, RetryPolicy

__all__ = ["DESCRIBE", "LIST", "OPERATIONS", "OUTCOMES", "Pipeline", "outcome_of"]

log = get_logger()

T = TypeVar("T")

DESCRIBE = "DescribeOptimizationJob"
LIST = "ListOptimizationJobs"
OPERATIONS = (DESCRIBE, LIST)
#: What became of a call: accepted, throttled, a transient failure (5xx, timeout,
#: dropped connection), an unknown job, or any other error.
OUTCOMES = ("ok", "throttled", "transient", "not_found", "error")


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

    Attributes:
        requests: ``{operation: {outcome: count}}`` for every call sent.
        retries: backoff sleeps taken before a retry.
        retried: the same, by operation.
        in_flight: calls on the wire now.
        answered_at: clock time of the last call SageMaker answered (None: none yet).
        failures_in_a_row: calls that got no answer (throttled, transient, error) since
            the last answered one; a ``not_found`` is an answer.
    """

    __slots__ = (
        "answered_at",
        "clock",
        "failures_in_a_row",
        "in_flight",
        "log",
        "requests",
        "retried",
        "retries",
        "retry",
    )

    def __init__(self, *, clock: Clock, retry: RetryPolicy) -> None:
        self.clock = clock
        self.retry = retry
        self.requests: dict[str, dict[str, int]] = {
            operation: dict.fromkeys(OUTCOMES, 0) for operation in OPERATIONS
        }
        self.retries = 0
        self.retried = dict.fromkeys(OPERATIONS, 0)
        self.in_flight = 0
        self.answered_at: float | None = None
        self.failures_in_a_row = 0
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
        counts = self.requests[operation]
        self.in_flight += 1
        try:
            answer = await send()
        except TransportError as exc:
            outcome = outcome_of(exc)
            counts[outcome] += 1
            if outcome == "not_found":
                self._answered()
            else:
                self.failures_in_a_row += 1
                if outcome == "throttled":
                    budget.on_throttle(sent_at)
            raise
        finally:
            self.in_flight -= 1
        counts["ok"] += 1
        self._answered()
        budget.on_success(sent_at)
        return answer, sent_at

    def _answered(self) -> None:
        self.answered_at = self.clock.now()
        self.failures_in_a_row = 0

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
                is not worth retrying.
        """
        try:
            # The common case: one attempt, none of the retry machinery on the hot path.
            return await self.call(operation, budget, send)
        except RETRYABLE as exc:
            first: BaseException | None = exc

        def before_sleep(state: RetryCallState) -> None:
            self._before_sleep(state, budget)
            self.retried[operation] += 1

        retrying = self.retry.retrying(
            deadline=deadline, clock=self.clock, sleep=self.clock.sleep, before_sleep=before_sleep
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
        self.retries += 1
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
