"""Who polls which job: one protocol, two sides.

The hub asks its coordination one question per poll (:meth:`Coordination.owns`), hands
it the jobs a subscriber attached (and gets back what it knows of them, as
:class:`Claim` answers), every answer it applied (:meth:`~Coordination.publish`) and
every error it gave a job up with (:meth:`~Coordination.share_error`), and tells it
which jobs left (:meth:`~Coordination.forget`). It never asks which side it talks to:

* :class:`Solo`, one process: every job is its own, nothing is shared, and the rate
  budgets are this process's;
* ``_fleet.Fleet``, many processes sharing one Redis: leases say who polls a job, the
  budgets live in Redis, and findings travel on a stream.

Beside the flow, a coordination hears other processes' findings and its own mode
changes (Redis lost) and hands them to the hub through the :class:`CoordinationHost`
listener; the hub decides what they mean and reschedules its own jobs.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._errors import TransportError
    from ._events import Description, JobStatus, JobSummary
    from ._ratelimit import RateBudget
    from ._stats import FleetStats
    from ._sweep import ListingHost

__all__ = ["Claim", "Coordination", "CoordinationHost", "Solo"]


@dataclass(frozen=True, slots=True)
class Claim:
    """What the coordination knows of a job a subscriber just attached.

    Attributes:
        name: the job.
        gained: this process polls the job from now on: schedule it (a job polled
            here already, or elsewhere, is not gained).
        age: seconds since anyone last described the job (None: never, or unknown:
            describe it now).
        description: the last status another process saw (None: none known).
        error: the job was given up elsewhere with this error: end it the same here.
    """

    name: str
    gained: bool = True
    age: float | None = None
    description: Description | None = None
    error: TransportError | None = None


class CoordinationHost(Protocol):
    """The listener a coordination hands other processes' findings to (the hub)."""

    def watched(self) -> Collection[str]:
        """The names of the jobs watched in this process now."""
        ...

    def wants(self, name: str, status: str) -> bool:
        """Whether ``status`` of ``name``, seen by another process, is news here."""
        ...

    def apply_remote(self, name: str, description: Description) -> None:
        """Apply a status another process observed."""
        ...

    def apply_remote_error(self, name: str, error: TransportError) -> None:
        """Another process gave ``name`` up with ``error``: end it here too."""
        ...

    def hint(self, name: str, status: str) -> None:
        """A sweep listed ``name`` in ``status``: describe it if that is news."""
        ...

    @property
    def listings(self) -> ListingHost:
        """Where the List entries another process's sweeps and re-lists found go."""
        ...

    def lease_gained(self, name: str, age: float | None) -> None:
        """``name`` is this process's to poll now: describe it when the poll interval its
        status calls for has passed since it was last described, ``age`` seconds ago
        (None: never, or unknown: now)."""
        ...

    def in_flight(self, name: str) -> bool:
        """Whether a describe of ``name`` is under way here."""
        ...

    def ownership_widened(self) -> None:
        """This process now polls every job it watches (Redis went away): schedule the
        jobs it left to others."""
        ...


class Coordination(Protocol):
    """What the hub and the sweeps need from whoever coordinates the pollers."""

    @property
    def budget(self) -> RateBudget:
        """The describe rate budget."""
        ...

    @property
    def list_budget(self) -> RateBudget:
        """The List rate budget (sweeps)."""
        ...

    def owns(self, name: str) -> bool:
        """Whether this process polls ``name``."""
        ...

    async def attach(self, names: Sequence[str]) -> Sequence[Claim]:
        """Jobs a subscriber added: who polls them, and what is known of them."""
        ...

    def publish(self, name: str, previous: JobStatus | None, description: Description) -> None:
        """An answer the hub applied (``previous``: the status before it). Never waits."""
        ...

    def share_error(self, name: str, error: TransportError) -> None:
        """A job this process polled was given up with ``error``."""
        ...

    def forget(self, name: str) -> None:
        """``name`` left the hub."""
        ...

    async def sweep_turn(self, ttl: float) -> bool:
        """Whether this process sweeps now (for a fleet: it holds the sweep lease)."""
        ...

    async def sweep_watermark(self) -> float | None:
        """Where the sweeps of all processes got to (epoch seconds), if anywhere yet."""
        ...

    async def share_listed(
        self, summaries: Sequence[JobSummary], watermark: float | None, *, relisted: bool = False
    ) -> None:
        """What a sweep or a re-list listed, and the sweeps' watermark after it (None:
        unchanged), for the other processes."""
        ...

    async def share_relist(self, *, done: bool) -> None:
        """A re-list begins (or is done), for the other processes."""
        ...

    async def relist_since(self, oldest: float | None) -> float | None:
        """Where a re-list starts: the oldest job any process watches (``oldest``: this
        process's)."""
        ...

    async def run(self, host: CoordinationHost) -> None:
        """Background work (leases, the stream) until cancelled."""
        ...

    def statistics(self) -> FleetStats | None:
        """Fleet figures (None for a single process)."""
        ...


class Solo:
    """One process coordinating with nobody: every job is its own, nothing is shared."""

    __slots__ = ("budget", "list_budget")

    def __init__(self, budget: RateBudget, list_budget: RateBudget) -> None:
        self.budget = budget
        self.list_budget = list_budget

    def owns(self, name: str) -> bool:
        return True

    async def attach(self, names: Sequence[str]) -> Sequence[Claim]:
        # A late subscriber's first event comes from a fresh describe, soon.
        return [Claim(name) for name in names]

    def publish(self, name: str, previous: JobStatus | None, description: Description) -> None:
        pass

    def share_error(self, name: str, error: TransportError) -> None:
        pass

    def forget(self, name: str) -> None:
        pass

    async def sweep_turn(self, ttl: float) -> bool:
        return True

    async def sweep_watermark(self) -> float | None:
        return None

    async def share_listed(
        self, summaries: Sequence[JobSummary], watermark: float | None, *, relisted: bool = False
    ) -> None:
        pass

    async def share_relist(self, *, done: bool) -> None:
        pass

    async def relist_since(self, oldest: float | None) -> float | None:
        return oldest

    async def run(self, host: CoordinationHost) -> None:
        return  # nothing runs beside the flow

    def statistics(self) -> FleetStats | None:
        return None
