"""What the request pipeline needs from a rate budget, and the snapshot a budget gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["RateBudget", "RateLimiterStatistics"]


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    """A snapshot of a limiter.

    Attributes:
        rate: requests/s currently allowed (``None``: not limited yet).
        max_rate: the hard ceiling, if one was given.
        measured_rate: successful requests/s over the last measurement window.
        throttles: throttle answers reported.
        cuts: times the rate was cut (at most one per congestion event).
        acquired: requests let through.
    """

    rate: float | None
    max_rate: float | None
    measured_rate: float
    throttles: int
    cuts: int
    acquired: int


class RateBudget(Protocol):
    """What the request pipeline needs from a rate budget.

    Two implementations: :class:`AdaptiveRateLimiter` (one process) and the fleet's
    ``FleetRateLimiter`` (one budget in Redis for every process of a fleet).
    """

    @property
    def rate(self) -> float | None:
        """Requests/s allowed now (``None`` while nothing limits)."""
        ...

    def statistics(self) -> RateLimiterStatistics:
        """A snapshot of the budget."""
        ...

    async def acquire(self) -> None:
        """Wait until one request may be sent."""
        ...

    def on_success(self, sent_at: float | None = None) -> None:
        """Report a request the service accepted, sent at ``sent_at`` (the budget's clock)."""
        ...

    def on_throttle(self, sent_at: float | None = None) -> None:
        """Report a throttled request sent at ``sent_at`` (the budget's clock)."""
        ...
