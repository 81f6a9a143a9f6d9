"""When each job is next polled: status-aware intervals, backoff and jitter."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ._events import KNOWN_STATUSES, JobStatus
from ._validate import check_fraction, check_non_negative, check_positive

__all__ = ["PollPolicy"]


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How long to wait between two describes of the same job.

    The first describe of a job is immediate. After that a job is polled every
    ``interval`` seconds (or ``status_intervals[status]``), and the interval grows by
    ``backoff`` each poll that sees no change, up to ``max_interval``. Any status
    change resets it. Each delay is jittered down by up to ``jitter`` (a fraction) so
    jobs started together drift apart instead of polling in lock-step.

    The defaults suit real SageMaker jobs, which run for minutes to hours::

        >>> policy = PollPolicy(interval=0.2, max_interval=1.0)  # for tests and demos
        >>> PollPolicy.from_interval(30).max_interval
        180.0

    Args:
        interval: base seconds between polls (> 0).
        max_interval: cap on the grown interval (>= interval); default ``6 * interval``.
        backoff: growth factor per unchanged poll (>= 1; 1 disables backoff).
        jitter: fraction of each delay that is randomised (0-1).
        status_intervals: base interval per status, overriding ``interval``.
        not_found_interval: seconds between describes of a job SageMaker does not know
            yet (within the not-found grace period); default ``min(interval, 2)``.
    """

    interval: float = 20.0
    max_interval: float | None = None
    backoff: float = 1.5
    jitter: float = 0.2
    status_intervals: Mapping[JobStatus, float] = field(
        default_factory=lambda: MappingProxyType({})
    )
    not_found_interval: float | None = None

    def __post_init__(self) -> None:
        check_positive("interval", self.interval)
        if self.max_interval is None:
            object.__setattr__(self, "max_interval", self.interval * 6)
        check_positive("max_interval", self.max_interval)
        assert self.max_interval is not None
        if self.max_interval < self.interval:
            raise ValueError(
                f"max_interval must be >= interval ({self.interval:g}), got {self.max_interval!r}"
            )
        if isinstance(self.backoff, bool) or not isinstance(self.backoff, (int, float)):
            raise ValueError(f"backoff must be a number >= 1, got {self.backoff!r}")
        if not 1 <= self.backoff <= 100:
            raise ValueError(f"backoff must be between 1 and 100, got {self.backoff!r}")
        check_fraction("jitter", self.jitter)
        statuses = {}
        for status, seconds in dict(self.status_intervals).items():
            key = KNOWN_STATUSES.get(status)
            if key is None:
                raise ValueError(
                    f"status_intervals has an unknown status {status!r}; "
                    f"use one of {', '.join(s.value for s in JobStatus)}"
                )
            check_positive(f"status_intervals[{key.value}]", seconds)
            statuses[key] = float(seconds)
        object.__setattr__(self, "status_intervals", MappingProxyType(statuses))
        if self.not_found_interval is None:
            object.__setattr__(self, "not_found_interval", min(self.interval, 2.0))
        assert self.not_found_interval is not None
        check_non_negative("not_found_interval", self.not_found_interval)

    @classmethod
    def from_interval(cls, interval: float) -> PollPolicy:
        """A policy with base ``interval`` and the other settings at their defaults."""
        return cls(interval=interval)

    def next_delay(
        self, status: JobStatus | None, unchanged_polls: int, rng: random.Random
    ) -> float:
        """Seconds until the next describe of a job.

        Args:
            status: the job's last known status (None if never seen).
            unchanged_polls: polls since the last status change (0 right after a change).
            rng: the random source for jitter.
        """
        base = self.status_intervals.get(status, self.interval) if status else self.interval
        cap = max(base, self.max_interval or base)
        # Bounded exponent: past the cap more growth is pointless and could overflow.
        delay = min(cap, base * self.backoff ** min(unchanged_polls, 64))
        if self.jitter:
            delay *= 1.0 - self.jitter * rng.random()
        return delay
