"""The statistics snapshot a Poller hands out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["FleetStats", "PollerHealth", "PollerStats"]


@dataclass(frozen=True, slots=True)
class FleetStats:
    """This process's view of its fleet (``poller.stats.fleet``; None without ``redis_url``).

    Attributes:
        connected: Redis is reachable (False: local mode, polling every watched job).
        members: live processes in the fleet at the last heartbeat.
        leases: jobs this process polls for the fleet.
        published: status changes this process published to the fleet.
        remote_events: status changes received from other processes.
        outages: times Redis went away.
        budget_round_trips: Redis calls made to take rate-budget tokens.
        sweep_lease: this process holds the fleet's sweep lease (it runs the List
            sweeps for the whole fleet).
    """

    connected: bool
    members: int
    leases: int
    published: int
    remote_events: int
    outages: int
    budget_round_trips: int
    sweep_lease: bool = False


@dataclass(frozen=True, slots=True)
class PollerStats:
    """A point-in-time snapshot of a Poller (``poller.stats``).

    Attributes:
        requests: DescribeOptimizationJob calls by outcome: ``ok``, ``throttled``,
            ``transient``, ``not_found``, ``error``.
        retries: backoff sleeps taken before a retry.
        events_emitted: events delivered, counted once per subscriber.
        jobs_watched: distinct jobs ever added.
        jobs_active: jobs currently being polled.
        jobs_finished: jobs that reached a terminal outcome.
        subscribers: open subscriptions (watch/wait calls).
        in_flight: requests currently on the wire.
        rate_limit: requests/s the limiter allows now (None: not limited).
        measured_rate: successful describes/s the limiter measured recently.
        strategy: how jobs are polled right now: ``"describe"`` or ``"sweep"``.
        sweeps: list sweeps completed.
        list_requests: ListOptimizationJobs calls by the same outcomes (empty unless
            sweeps are on); ``requests`` counts describes only.
        sweep_hints: describes a sweep asked for because List showed a new status.
        fleet: fleet mode's figures (None without ``redis_url``).
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
    strategy: str = "describe"
    sweeps: int = 0
    list_requests: Mapping[str, int] = field(default_factory=dict)
    sweep_hints: int = 0
    fleet: FleetStats | None = None

    @property
    def total_requests(self) -> int:
        """All API calls sent (describes and lists), whatever their outcome."""
        return sum(self.requests.values()) + sum(self.list_requests.values())


@dataclass(frozen=True, slots=True)
class PollerHealth:
    """Whether a Poller is alive and ready (``poller.health()``), for probes and alerts.

    Example::

        health = poller.health()
        if not health.ready:
            print(f"{health.jobs_pending} jobs not described yet")

    Attributes:
        alive: the Poller is open and its loop runs (False before it opens, after it
            closes, and after a crash).
        ready: alive, and every watched job has been described (or its status learnt
            from the fleet) at least once since the Poller opened. True with no jobs.
        jobs_pending: watched jobs not described yet (a job inside its not-found grace
            counts: SageMaker does not know it yet).
        last_success_age: seconds since SageMaker last answered a call (None: no
            answer yet). A ``not_found`` answer counts: the endpoint answered.
        consecutive_failures: calls in a row that got no answer (throttled, transient
            failures, errors) since the last answered one.
        fleet_connected: Redis is reachable (None: no fleet, no ``redis_url``).
    """

    alive: bool
    ready: bool
    jobs_pending: int
    last_success_age: float | None
    consecutive_failures: int
    fleet_connected: bool | None = None
