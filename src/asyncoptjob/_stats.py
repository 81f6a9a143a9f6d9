"""The statistics snapshot a Poller hands out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PollerStats"]


@dataclass(frozen=True, slots=True)
class PollerStats:
    """A point-in-time snapshot of a Poller (``poller.stats``).

    Attributes:
        requests: API calls by outcome: ``ok``, ``throttled``, ``transient``,
            ``not_found``, ``other``.
        retries: backoff sleeps taken before a retry.
        events_emitted: events delivered, counted once per subscriber.
        jobs_watched: distinct jobs ever added.
        jobs_active: jobs currently being polled.
        jobs_finished: jobs that reached a terminal outcome.
        subscribers: open subscriptions (watch/wait calls).
        in_flight: requests currently on the wire.
        rate_limit: requests/s the limiter allows now (None: not limited).
        measured_rate: successful requests/s the limiter measured recently.
    """

    requests: Mapping[str, int]
    retries: int
    events_emitted: int
    jobs_watched: int
    jobs_active: int
    jobs_finished: int
    subscribers: int
    in_flight: int
    rate_limit: float | None
    measured_rate: float

    @property
    def total_requests(self) -> int:
        """All API calls sent, whatever their outcome."""
        return sum(self.requests.values())
