"""Ground truth about traffic: counters per operation and outcome, a request log.

Tests of the poller compare what it did with what the endpoint saw: how many
Describe calls were throttled, and whether the rate the endpoint *served*
ever exceeded the limit (`Ledger.max_requests_in_window`).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from ._limits import family_of

__all__ = ["Ledger", "RequestRecord"]


class RequestRecord(NamedTuple):
    """One AWS request the mock received.

    Attributes:
        at: Monotonic arrival time (``time.monotonic()``), in seconds.
        operation: The operation, e.g. "DescribeOptimizationJob".
        outcome: "ok", an AWS error code, "dropped", or the bad answer sent
            ("malformed", "missing_status", "mistyped_status", "unknown_status",
            "stuck_list", "duplicate_list").
    """

    at: float
    operation: str
    outcome: str


class Ledger:
    """Counters and a bounded log of AWS requests.

    Args:
        log_size: How many of the latest requests the log keeps.
    """

    def __init__(self, log_size: int = 100_000) -> None:
        if not isinstance(log_size, int) or log_size < 0:
            raise ValueError(f"request_log_size must be an integer >= 0, got {log_size!r}")
        self.counters: dict[str, dict[str, int]] = {}
        self.log: deque[RequestRecord] = deque(maxlen=log_size)

    def record(self, at: float, operation: str, outcome: str) -> None:
        """Count one request and append it to the log."""
        by_outcome = self.counters.get(operation)
        if by_outcome is None:
            by_outcome = self.counters[operation] = {}
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
        self.log.append(RequestRecord(at, operation, outcome))

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Return a copy of the counters."""
        return {operation: dict(outcomes) for operation, outcomes in self.counters.items()}

    def max_requests_in_window(
        self, operation: str, window_s: float, outcome: str | None = "ok"
    ) -> int:
        """Return the most logged requests that arrived within any *window_s* seconds.

        Args:
            operation: An operation name ("DescribeOptimizationJob") or a
                family ("describe", "list").
            window_s: The window length in seconds (closed interval).
            outcome: Count only this outcome; None counts all.

        Example:
            >>> ledger = Ledger()
            >>> for t in (0.0, 0.4, 0.9, 2.0):
            ...     ledger.record(t, "DescribeOptimizationJob", "ok")
            >>> ledger.max_requests_in_window("describe", 1.0)
            3
        """
        if not window_s >= 0:
            raise ValueError(f"window_s must be >= 0 seconds, got {window_s!r}")
        times = sorted(
            record.at
            for record in self.log
            if (record.operation == operation or family_of(record.operation) == operation)
            and (outcome is None or record.outcome == outcome)
        )
        best = 0
        start = 0
        for end, t in enumerate(times):
            while t - times[start] > window_s:
                start += 1
            best = max(best, end - start + 1)
        return best

    def clear(self) -> None:
        """Forget every count and record."""
        self.counters.clear()
        self.log.clear()
