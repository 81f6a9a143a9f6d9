"""What a sweep's List entry means for a watched job: news to describe, or an event now.

List is eventually consistent and says less than a describe (no ``FailureReason``, no
outputs), so a listed status is only ever news when it ranks above what the job's entry
knows. :meth:`Listings.hint` (every sweep, ``SweepPolicy(confirm="change")``) queues a
describe of the job ahead of routine polls; :meth:`Listings.listed`
(``confirm="terminal"``) turns a non-terminal change into the event at once, from the
List entry, and leaves only a terminal (or unknown) status to be confirmed by a
describe, so a final event always carries the full description.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._events import KNOWN_STATUSES, summary_description

if TYPE_CHECKING:
    from ._events import JobSummary
    from ._job import JobEntry
    from ._pacing import Pacer
    from ._stats import Statistics

__all__ = ["Listings"]


class Listings:
    """The hub's side of a sweep: acts on listed statuses (its job table, its pacer)."""

    __slots__ = ("jobs", "log", "pacer", "stats")

    def __init__(
        self, jobs: dict[str, JobEntry], pacer: Pacer, stats: Statistics, log: Any
    ) -> None:
        self.jobs = jobs
        self.pacer = pacer
        self.stats = stats
        self.log = log

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

    def oldest_created(self) -> float | None:
        """The oldest CreationTime (epoch seconds) of the jobs seen, if any gave one."""
        created = [job.created for job in self.jobs.values() if job.created is not None]
        return min(created, default=None)

    def relisted(self, shown: set[str], started: float) -> None:
        """A re-list of the watched jobs' window begun at ``started`` (clock) is done.

        The jobs it did not show (a List entry missed for good, a deleted job) are
        described now; the others' safety-net describes move a safety delay on. Jobs
        attached since it began, not yet seen, or with a describe on its way are left.
        """
        for job in list(self.jobs.values()):
            status = job.status
            if status is None or job.in_flight or job.first_seen > started:
                continue
            if job.hinted > status.rank:
                continue  # a hint's describe is queued: keep it
            if job.name in shown:
                self.pacer.next(job)
            else:
                self.pacer.soon(job)
