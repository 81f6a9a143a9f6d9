"""What a sweep's List entry means for a watched job: news to describe, or an event now.

List is eventually consistent and says less than a describe (no ``FailureReason``, no
outputs), so a listed status is only ever news when it ranks above what the job's entry
knows. :meth:`Listings.hint` (every sweep, ``SweepPolicy(confirm="change")``) queues a
describe of the job ahead of routine polls; :meth:`Listings.listed`
(``confirm="terminal"``) turns a non-terminal change into the event at once, from the
List entry, and leaves only a terminal (or unknown) status to be confirmed by a
describe, so a final event always carries the full description. :meth:`Listings.found`
picks between the two for each entry, whoever listed it (this process's sweep, or, in a
fleet, the sweep-lease holder's, heard on the stream).

The safety net of ``confirm="terminal"`` is a re-list of the watched jobs' window: between
:meth:`~Listings.relist_begin` and :meth:`~Listings.relist_done` the listings note which
jobs it showed, then describe the others. That walk over the whole table, and the one
that finds the oldest watched job, yield to the event loop every :data:`SLICE` jobs.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._breath import in_slices
from ._events import KNOWN_STATUSES, summary_description

if TYPE_CHECKING:
    from ._events import JobSummary
    from ._job import JobEntry, JobTable
    from ._pacing import Pacer
    from ._stats import Statistics

__all__ = ["SLICE", "Listings"]

#: Jobs a walk over the table handles between two yields to the event loop (a slice of
#: this many takes well under a millisecond, so 100,000 jobs never hold the loop long).
SLICE = 1000


class Listings:
    """The hub's side of a sweep: acts on listed statuses (its job table, its pacer)."""

    __slots__ = ("_relist", "jobs", "log", "pacer", "stats")

    def __init__(self, jobs: JobTable, pacer: Pacer, stats: Statistics, log: Any) -> None:
        self.jobs = jobs
        self.pacer = pacer
        self.stats = stats
        self.log = log
        # The re-list under way: when it began here (clock) and the jobs it showed so far.
        self._relist: tuple[float, set[str]] | None = None

    @property
    def lists_first(self) -> bool:
        """Whether List entries are events now (``confirm="terminal"`` while sweeping)."""
        sweeps = self.pacer.sweeps
        return sweeps is not None and sweeps.lists_first

    def found(self, summary: JobSummary, *, relisted: bool = False) -> None:
        """A List entry (``relisted``: from a re-list of the watched jobs' window): an
        event now or a hint (see :meth:`listed` and :meth:`hint`)."""
        name = summary["OptimizationJobName"]
        if relisted and self._relist is not None and name in self.jobs:
            self._relist[1].add(name)  # (the window's jobs nobody here watches: not kept)
        if self.lists_first:
            self.listed(summary)
        else:
            self.hint(name, summary["OptimizationJobStatus"])

    def hint(self, name: str, status: str) -> None:
        """A sweep listed ``name`` in ``status``: describe it soon if that is news."""
        job = self.jobs.get(name)
        if job is None or job.status is None or job.in_flight:
            return
        listed = KNOWN_STATUSES.get(status)
        if listed is not None and listed.rank <= job.status.rank:
            # The known status, or an older one a lagging (eventually consistent) List
            # still shows: no news. An unknown status is news: describe to find out.
            return
        self.stats.hints += 1
        # Remembered: a job polled elsewhere now may be ours by the time it is described
        # (a lease handed over must not lose the hint with it).
        job.hinted = max(job.hinted, math.inf if listed is None else listed.rank)
        # Ahead of routine polls: a burst of due safety-net describes must not delay it.
        self.pacer.urgent(job)

    def listed(self, summary: JobSummary) -> None:
        """A sweep listed ``summary``: a non-terminal change is an event now, from List.

        A terminal or unknown status is a hint (a describe confirms it; a job not yet
        described gets that describe now); a status no newer than the job's is no news.
        A job not yet described gets its first event from List, and its first describe
        (held back a short fallback at attach, see :meth:`Pacer.first_look`) moves to
        the safety net's cadence.
        """
        name = summary["OptimizationJobName"]
        job = self.jobs.get(name)
        if job is None or job.removed:
            return
        listed = KNOWN_STATUSES.get(summary["OptimizationJobStatus"])
        first = job.status is None
        if listed is None or listed.is_terminal:
            if first and not job.in_flight:
                self.pacer.urgent(job)
            else:
                self.hint(name, summary["OptimizationJobStatus"])
            return
        if job.status is not None and listed.rank <= job.status.rank:
            return
        description = summary_description(summary)
        observed_at = job.apply(listed, description, self.stats, self.log, summary=summary)
        if not first:
            self.stats.changed(listed, description, observed_at)
        elif not job.in_flight:
            self.pacer.next(job)

    async def oldest_created(self) -> float | None:
        """The oldest CreationTime (epoch seconds) of the jobs seen, if any gave one."""
        oldest: float | None = None
        async for job in self._walk():
            created = job.created
            if created is not None and (oldest is None or created < oldest):
                oldest = created
        return oldest

    def relist_begin(self) -> None:
        """A re-list of the watched jobs' window begins now."""
        self._relist = (self.pacer.clock.now(), set())

    async def relist_done(self) -> None:
        """The re-list under way is done: describe the watched jobs it did not show."""
        if self._relist is None:
            return  # its beginning was not heard here (a fleet's stream trimmed)
        started, shown = self._relist
        self._relist = None
        await self.relisted(shown, started)

    async def relisted(self, shown: set[str], started: float) -> None:
        """A re-list of the watched jobs' window begun at ``started`` (clock) is done.

        The jobs it did not show (a List entry missed for good, a deleted job) are
        described now; the others' safety-net describes move a safety delay on. Jobs
        attached since it began, not yet seen, or with a describe on its way are left.
        (In a fleet a job polled elsewhere is queued here but described by its owner.)
        """
        async for job in self._walk():
            status = job.status
            if job.removed or status is None or job.in_flight or job.first_seen > started:
                continue
            if job.hinted > status.rank:
                continue  # a hint's describe is queued: keep it
            if job.name in shown:
                self.pacer.next(job)
            else:
                self.pacer.soon(job)

    async def _walk(self) -> AsyncIterator[JobEntry]:
        """Every job in the table now, yielding to the loop every :data:`SLICE` jobs."""
        async for names in in_slices(list(self.jobs), SLICE):
            for job in self.jobs.views(names):
                yield job
