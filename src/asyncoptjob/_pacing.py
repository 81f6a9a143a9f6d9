"""Pacing: when each job is described next.

The hub decides *that* a job is polled again; :class:`Pacer` decides *when*, in one
place: the poll policy's interval for the job's status (backing off while nothing
changes), the sweeps' slower safety net while List sweeps report changes, at once, or
ahead of every routine poll (a sweep's hint). It queues the job's name on the
workers' due-queue, which wakes a worker if the job is due sooner than any sleeps.
"""

from __future__ import annotations

import random
from functools import partial
from typing import TYPE_CHECKING

from ._scheduler import URGENT

if TYPE_CHECKING:
    from ._clock import Clock
    from ._job import JobEntry
    from ._policy import PollPolicy
    from ._sweep import SweepDriver
    from ._workers import Workers

__all__ = ["RELIST_BACKSTOP", "Pacer"]

#: With ``confirm="terminal"``, every ``safety_interval`` a re-list shows which jobs need
#: a describe; a job's own safety-net describe is only a backstop, this many times later.
RELIST_BACKSTOP = 3.0


class Pacer:
    """Queues jobs for their next describe (a removed job is never queued)."""

    __slots__ = ("clock", "policy", "rng", "sweeps", "workers")

    def __init__(
        self,
        workers: Workers[str],
        policy: PollPolicy,
        clock: Clock,
        *,
        sweeps: SweepDriver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.workers = workers
        self.policy = policy
        self.clock = clock
        self.sweeps = sweeps
        self.rng = rng or random.Random()

    def delay(self, job: JobEntry) -> float:
        """Seconds from one describe of ``job`` to the next."""
        sweeps = self.sweeps
        if sweeps is not None and sweeps.sweeping and job.status is not None:
            # Sweeps report changes; describes are only the safety net (with
            # ``confirm="terminal"`` a backstop: the re-lists describe who needs it).
            delay = sweeps.sweeper.policy.safety_delay(self.rng)
            return delay * RELIST_BACKSTOP if sweeps.lists_first else delay
        return self.policy.next_delay(job.status, job.unchanged, self.rng)

    def next(self, job: JobEntry) -> None:
        """Describe ``job`` again when its interval from now has passed."""
        self.at(job, self.clock.now() + self.delay(job))

    def after_look(self, job: JobEntry, age: float) -> None:
        """Describe ``job`` when its interval from a describe ``age`` seconds ago passes."""
        self.at(job, self.clock.now() - age + self.delay(job))

    def first_look(self, job: JobEntry) -> None:
        """Describe ``job``, never seen here, now; or, while sweeps with
        ``confirm="terminal"`` report changes, once the next sweep is done if it did not
        list the job (its List entry is the first event, and no describe is needed)."""
        sweeps = self.sweeps
        if sweeps is not None and sweeps.lists_first:
            sweeps.hold(partial(self._unlisted, job))
        else:
            self.soon(job)

    def _unlisted(self, job: JobEntry) -> None:
        if job.status is None and self.idle(job):
            self.soon(job)

    def soon(self, job: JobEntry) -> None:
        """Describe ``job`` now (behind other jobs due now)."""
        self.at(job, self.clock.now())

    def urgent(self, job: JobEntry) -> None:
        """Describe ``job`` ahead of every routine poll (a sweep listed news)."""
        self.at(job, URGENT)

    def idle(self, job: JobEntry) -> bool:
        """Whether ``job`` is neither queued nor on the wire (nobody will poll it)."""
        return not job.in_flight and not self.queued(job)

    def queued(self, job: JobEntry) -> bool:
        """Whether ``job`` waits on the queue for its next describe."""
        return job.name in self.workers.queue

    def at(self, job: JobEntry, due: float) -> None:
        """Queue ``job`` at clock time ``due`` (rescheduling it if queued)."""
        if not job.removed:
            self.workers.schedule(job.name, due)

    def drop(self, job: JobEntry) -> None:
        """Take ``job`` off the queue."""
        self.workers.queue.discard(job.name)
