"""Statistics: the counters a running Poller keeps, and the snapshots it hands out.

:class:`Statistics` is the one object the hub and the request pipeline count into, and
the one that ``poller.stats``, ``poller.health()`` and the OpenTelemetry metrics read;
it also tells its listeners of each change a describe observed (the metrics' detection
lag). Nothing hooks into the hub or reads its fields. :class:`PollerStats`,
:class:`PollerHealth` and :class:`FleetStats` are the public snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ._operations import OPERATIONS, OUTCOMES

if TYPE_CHECKING:
    from ._events import Description, JobStatus

__all__ = ["ChangeListener", "FleetStats", "PollerHealth", "PollerStats", "Statistics"]

#: Hears each change a describe observed after the job's first observation.
ChangeListener = Callable[["JobStatus", "Description", datetime], None]


class Statistics:
    """The counters of one hub and its pipeline (plain ints: the poll path pays nothing).

    Attributes:
        requests: ``{operation: {outcome: count}}`` for every call sent.
        retries: backoff sleeps taken before a retry; ``retried``: the same by operation.
        in_flight: calls on the wire now.
        answered_at: clock time of the last call SageMaker answered (None: none yet).
        failures_in_a_row: calls that got no answer since the last answered one.
        events: events delivered, once per subscriber; ``delivered``: status changes
            delivered, by status (``events`` less the error events).
        jobs_watched / jobs_active / jobs_finished / jobs_pending: jobs ever added,
            watched now, ended, and watched but not described (nor learnt) yet.
        subscribers: open subscriptions.
        hints: describes a sweep asked for.
        closed: the hub stopped (closed, or crashed).
    """

    __slots__ = (
        "_listeners",
        "answered_at",
        "closed",
        "delivered",
        "events",
        "failures_in_a_row",
        "hints",
        "in_flight",
        "jobs_active",
        "jobs_finished",
        "jobs_pending",
        "jobs_watched",
        "requests",
        "retried",
        "retries",
        "subscribers",
    )

    def __init__(self) -> None:
        self.requests: dict[str, dict[str, int]] = {
            operation: dict.fromkeys(OUTCOMES, 0) for operation in OPERATIONS
        }
        self.retries = 0
        self.retried = dict.fromkeys(OPERATIONS, 0)
        self.in_flight = 0
        self.answered_at: float | None = None
        self.failures_in_a_row = 0
        self.events = 0
        self.delivered: dict[str, int] = {}
        self.jobs_watched = 0
        self.jobs_active = 0
        self.jobs_finished = 0
        self.jobs_pending = 0
        self.subscribers = 0
        self.hints = 0
        self.closed = False
        self._listeners: list[ChangeListener] = []

    def count_delivered(self, status: JobStatus, count: int) -> None:
        """``count`` subscribers were told of ``status``."""
        self.events += count
        self.delivered[status.value] = self.delivered.get(status.value, 0) + count

    def listen(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener`` on each observed change; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def changed(self, status: JobStatus, description: Description, observed_at: datetime) -> None:
        """A describe observed ``status`` after the job's first observation."""
        for listener in self._listeners:
            listener(status, description, observed_at)


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
        relist_pages: List calls (pages read) of the re-lists that stand in for
            safety-net describes with ``SweepPolicy(confirm="terminal")``; counted in
            ``list_requests`` too.
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
    relist_pages: int = 0

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
