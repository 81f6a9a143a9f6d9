"""The hub: one table of jobs, many subscribers, one place that decides what an answer means.

Data flows one way. Subscribers name the jobs they want; the hub keeps one entry per
job (in a :class:`~._job.JobTable`) however many subscribers share it, and queues its
name on the workers' due-queue. A worker hands a due job to :meth:`Hub.poll`, which fetches a
describe through the :class:`~._workers.Fetcher` and decides what the answer (or the
failure) means: :meth:`Hub.observe` is the only place that decides whether the status
changed, fans the event out and reschedules or finishes the job. Terminal jobs leave
the table.

The hub builds none of its collaborators (``_wiring.open_hub`` assembles them) and
talks to each through one narrow seam: the :class:`~._coordination.Coordination`
(one process or a fleet: the hub never asks which), the sweep driver (the hub is its
``SweepHost``), and :class:`~._stats.Statistics`, which it counts into.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ._breath import dropped, in_slices
from ._errors import CredentialsError, PollerClosedError, TransportError
from ._events import JobStatus
from ._job import JobEntry, JobTable, Verdict
from ._listing import Listings
from ._log import get_logger
from ._subscription import Subscription

if TYPE_CHECKING:
    from ._clock import Clock
    from ._coordination import Claim, Coordination
    from ._events import Description
    from ._options import Options
    from ._pacing import Pacer
    from ._stats import Statistics
    from ._workers import Answer, Fetcher

__all__ = ["Hub", "forget_jobs"]

log = get_logger()

#: Jobs a subscription adds to the table (and hands to the coordination) between two
#: checkpoints: a few ms of work on the loop, one Redis round trip in fleet mode.
ATTACH_SLICE = 200
#: Jobs a subscription leaving drops from the table in one go; a larger one is dropped
#: in slices of this size by the hub's task, letting the loop run between slices (1,000
#: jobs took 4-5 ms on a shared 2-core machine).
DETACH_SLICE = 250


class Departures:
    """Large subscriptions that left, whose jobs leave the hub's table a slice at a time.

    Args:
        drop: forgets a subscription and drops it from the entries of the named jobs.
    """

    def __init__(self, drop: Callable[[Subscription, Iterable[str]], None]) -> None:
        self._drop = drop
        self._leaving: deque[Subscription] = deque()
        self._left = anyio.Event()
        self._running = False

    def take(self, sub: Subscription) -> bool:
        """Queue ``sub`` if it is large and :meth:`run` runs; False: detach it at once."""
        if not self._running or len(sub.remaining) <= DETACH_SLICE:
            return False
        self._leaving.append(sub)
        self._left.set()
        return True

    async def run(self) -> None:
        """Drop the queued subscriptions' jobs, a checkpoint between slices; until cancelled."""
        self._running = True
        try:
            while True:
                await self._left.wait()
                self._left = anyio.Event()
                while self._leaving:
                    sub = self._leaving[0]
                    await anyio.lowlevel.checkpoint()
                    async for names in in_slices(list(sub.remaining), DETACH_SLICE):
                        self._drop(sub, names)
                    self._leaving.popleft()
        finally:
            # Stopping: the hub is closing, and ``forget_jobs`` forgets every job.
            self._running = False
            self._leaving.clear()


class Hub:
    """Job table and fan-out. Internal: use ``Poller`` or ``watch``."""

    def __init__(
        self,
        options: Options,
        *,
        fetcher: Fetcher,
        pacer: Pacer,
        coordination: Coordination,
        stats: Statistics,
    ) -> None:
        self.options = options
        self.clock: Clock = options.clock
        self.fetcher = fetcher
        self.pacer = pacer
        self.coordination = coordination
        self.stats = stats
        self.jobs = JobTable()
        self.subscriptions: set[Subscription] = set()
        # Bound once: the logging route and its level gate are resolved now, not per call.
        self.log = log.bind()
        self.listings = Listings(self.jobs, pacer, stats, self.log)
        self.departures = Departures(self._detach)

    @property
    def closed(self) -> bool:
        """Whether the hub stopped (closed, or crashed): nothing can subscribe."""
        return self.stats.closed

    # -- subscribers --------------------------------------------------------------------

    def subscribe(self, names: Iterable[str]) -> Subscription:
        """Open a subscription for ``names`` (validated, de-duplicated); ``attach`` it next."""
        if self.closed:
            raise PollerClosedError("the Poller is closed: open a new one with `async with`")
        sub = Subscription(names, self.clock.now())
        if sub.names:
            self.subscriptions.add(sub)
            self.stats.subscribers = len(self.subscriptions)
        return sub

    async def attach(self, sub: Subscription) -> None:
        """Add ``sub`` to its jobs' entries, yielding to the loop every :data:`ATTACH_SLICE`.

        Adding 100,000 jobs in one go would block the event loop for a noticeable
        time; slices keep every step short. Jobs start being polled as they are added.
        The subscription takes in its names first (:meth:`Subscription.fill`).
        """
        await sub.fill()
        jobs = self.jobs
        stats = self.stats
        async for added in in_slices(sub.names, ATTACH_SLICE):
            if _gone(self, sub):  # it left, or the hub closed: attach no more
                return
            now = self.clock.now()
            for name in added:
                job = jobs.get(name)
                if job is None:
                    job = jobs.add(name, now)
                    stats.jobs_watched += 1
                    stats.jobs_active += 1
                    stats.jobs_pending += 1
                job.add(sub)
            # A step of its own, as a fleet's Redis round trip: the table's maps and the
            # due-queue's then outgrow their tables (copied whole) in separate steps.
            await anyio.lowlevel.checkpoint()
            if _gone(self, sub):
                return  # claim nothing
            for claim in await self.coordination.attach(added):
                self._claimed(claim)

    def _claimed(self, claim: Claim) -> None:
        """Act on what the coordination knows of a job just attached."""
        job = self.jobs.get(claim.name)
        if job is None or job.removed:
            if claim.gained:  # gone while the claim was on its way: hand it back
                self.coordination.forget(claim.name)
            return
        if claim.error is not None:
            self.apply_remote_error(claim.name, claim.error)
        elif claim.description is not None:
            self.apply_remote(claim.name, claim.description)
        if claim.gained:
            self.lease_gained(claim.name, claim.age)

    def unsubscribe(self, sub: Subscription) -> None:
        """Drop ``sub``; jobs nobody else watches leave the table (in slices, by
        :class:`Departures`, past :data:`DETACH_SLICE`). Synchronous and idempotent."""
        sub.close()
        if sub not in self.subscriptions:
            return  # left already (or never attached: no names)
        queued = self.departures.take(sub)
        self._detach(sub, () if queued else sub.remaining)

    def _detach(self, sub: Subscription, names: Iterable[str]) -> None:
        """Forget ``sub``, and drop it from the entries of ``names``."""
        self.subscriptions.discard(sub)
        self.stats.subscribers = len(self.subscriptions)
        for name in names:
            job = self.jobs.get(name)
            if job is not None and job.drop(sub):
                self._remove(job)

    def close(self, error: BaseException) -> None:
        """Fail every open subscription with ``error``; :func:`forget_jobs` forgets the jobs."""
        self.stats.closed = True
        for sub in list(self.subscriptions):
            if not sub.is_finished():
                sub.fail(error)
        self.subscriptions.clear()
        self.stats.subscribers = 0

    # -- polling ------------------------------------------------------------------------

    async def poll(self, name: str) -> None:
        """Describe job ``name`` (retrying throttles and transient errors) and act on the
        answer (a worker's due job: a job that left the table meanwhile is not polled)."""
        job = self.jobs.get(name)
        if job is None:
            return
        job.in_flight = True
        started = self.clock.now()
        try:
            deadline = job.give_up_at(started, self.options.retry.max_elapsed)
            answer = await self.fetcher.describe(job.name, deadline=deadline)
        finally:
            job.in_flight = False
        self._settle(job, answer, started)

    async def poll_once(self, names: Iterable[str]) -> None:
        """Describe each named job once now (one attempt, no retry): a caller's last look."""
        watched = [name for name in names if name in self.jobs]
        answers = await self.fetcher.last_look(watched, self.options.max_concurrency)
        for name, description, sent_at in answers:
            if (job := self.jobs.get(name)) is not None:
                self._settle(job, (description, sent_at), sent_at)

    # -- answers ------------------------------------------------------------------------

    def _settle(self, job: JobEntry, answer: Answer | Exception, started: float) -> None:
        """Act on one answer or failure; anything raised ends this job alone (logged)."""
        try:
            if isinstance(answer, TransportError):
                self.failed(job, answer, started)
            elif isinstance(answer, Exception):
                raise answer
            else:
                self.observe(job, *answer)
        except Exception as exc:
            self.log.error("job_answer_failed", job_name=job.name, exc_info=exc)
            if not job.removed:
                self._end_with_error(job, exc)

    def observe(self, job: JobEntry, description: Description, sent_at: float) -> None:
        """Apply a describe answer: fan out a change, then reschedule or finish the job."""
        if job.removed:
            return
        status = JobStatus(description["OptimizationJobStatus"])
        if sent_at < job.applied_at or (job.status is not None and status.rank < job.status.rank):
            # A newer answer was already applied (here, or by another process: statuses
            # only move forward). Keep the job scheduled.
            if self.pacer.idle(job):
                self.pacer.next(job)
            return
        job.answered(sent_at)
        self.log.debug("job_polled", job_name=job.name, status=status.value)
        previous = job.status
        observed_at = job.apply(status, description, self.stats, self.log)
        self.coordination.publish(job.name, previous, description)
        if previous is not None and status is not previous:
            self.stats.changed(status, description, observed_at)
        if status.is_terminal:
            self._finish(job)
        elif not job.in_flight:
            self.pacer.next(job)

    def failed(self, job: JobEntry, error: TransportError, started: float) -> None:
        """Act on what a failed poll of ``job`` (started at ``started``) means."""
        now = self.clock.now()
        options = self.options
        verdict = job.judge(error, started, now, options.retry.max_elapsed, options.not_found_grace)
        if verdict is Verdict.RETRY:
            self.pacer.next(job)
        elif verdict is Verdict.NOT_FOUND_YET:
            self.log.debug("job_not_found_yet", job_name=job.name)
            self.pacer.at(job, now + (options.policy.not_found_interval or 0.0))
        elif isinstance(error, CredentialsError):  # Verdict.FAIL_SUBSCRIBERS
            self.log.error(
                "credentials_error", job_name=job.name, error=error.code, message=str(error)
            )
            for sub in job.fail_subscribers(error):
                self._detach(sub, sub.remaining)
            self._remove(job)
        else:
            self._give_up(job, error)

    def _give_up(self, job: JobEntry, error: TransportError) -> None:
        """This process gives ``job`` up with ``error``: every watcher hears of it."""
        self.coordination.share_error(job.name, error)
        self._end_with_error(job, error)

    def _end_with_error(self, job: JobEntry, error: Exception) -> None:
        code = getattr(error, "code", type(error).__name__)
        self.log.warning("job_error", job_name=job.name, error=code, message=str(error))
        job.end_with_error(error, self.stats)
        self._finish(job)

    # -- the coordination's listener (CoordinationHost) ---------------------------------

    def watched(self) -> Collection[str]:
        """The names of the jobs watched now."""
        return self.jobs.names()

    def wants(self, name: str, status: str) -> bool:
        """Whether ``status`` of ``name`` (seen by another process) is news here."""
        job = self.jobs.get(name)
        return job is not None and _news(job, JobStatus(status))

    def apply_remote(self, name: str, description: Description) -> None:
        """Apply a status another process observed (from the fleet's stream or snapshot)."""
        job = self.jobs.get(name)
        status = JobStatus(description["OptimizationJobStatus"])
        if job is None or not _news(job, status):
            return
        job.apply(status, description, self.stats, self.log)
        if status.is_terminal:
            self._finish(job)

    def apply_remote_error(self, name: str, error: TransportError) -> None:
        """Another process gave ``name`` up with ``error``: the same error event here."""
        job = self.jobs.get(name)
        if job is not None and not job.removed:
            self._end_with_error(job, error)

    def lease_gained(self, name: str, age: float | None) -> None:
        """``name`` is ours to poll: describe it when it is due, counted from the last
        describe ``age`` seconds ago (now if never, or if never seen here)."""
        job = self.jobs.get(name)
        if job is None or job.in_flight:
            return
        if job.status is None:
            self.pacer.first_look(job)
        elif age is None and not self.listings.lists_first:
            self.pacer.soon(job)
        elif job.hinted > job.status.rank:
            # A sweep listed news that nobody here described: the last holder may have
            # handed the lease over before it did. Ahead of routine polls, as a hint.
            self.pacer.urgent(job)
        else:
            # No describe anywhere yet (age None) while List reports changes: the status
            # came from List, whose sweeps and re-lists cover the job from here.
            self.pacer.after_look(job, age or 0.0)

    def in_flight(self, name: str) -> bool:
        """Whether a describe of ``name`` is under way."""
        job = self.jobs.get(name)
        return job is not None and job.in_flight

    def ownership_widened(self) -> None:
        """Every watched job is ours now (Redis went away): describe those left to others."""
        for job in self.jobs.views(list(self.jobs)):
            if self.pacer.idle(job):
                self.pacer.soon(job)

    # -- the sweep driver's view (SweepHost) --------------------------------------------

    def job_count(self) -> int:
        """How many jobs are watched now."""
        return len(self.jobs)

    def hint(self, name: str, status: str) -> None:
        """A sweep listed ``name`` in ``status``: describe it soon if that is news."""
        self.listings.hint(name, status)

    def strategy_changed(self, sweeping: bool) -> None:
        """Back to describe-only: pull in jobs parked at the slow safety cadence."""
        if sweeping:
            return
        for job in self.jobs.views(list(self.jobs)):
            if self.pacer.queued(job):
                self.pacer.next(job)

    # -- leaving ----------------------------------------------------------------------

    def _finish(self, job: JobEntry) -> None:
        self.stats.jobs_finished += 1
        self._remove(job)

    def _remove(self, job: JobEntry) -> None:
        if job.removed:
            return
        self.pacer.drop(job)
        self.jobs.remove(job)
        self.stats.jobs_active -= 1
        if job.status is None:
            self.stats.jobs_pending -= 1
        self.coordination.forget(job.name)


def _gone(hub: Hub, sub: Subscription) -> bool:
    """Whether ``sub`` left, or ``hub`` closed (either may happen at any checkpoint)."""
    return sub.closed or hub.closed


def _news(job: JobEntry, status: JobStatus) -> bool:
    """Whether ``status`` is news for ``job``: newer, or the first event someone awaits."""
    if job.removed:
        return False
    if job.status is None or status.rank > job.status.rank:
        return True
    return job.waiting and status is job.status


async def forget_jobs(hub: Hub) -> None:
    """Forget every job of a closed hub, :data:`DETACH_SLICE` at a time (shielded: the
    Poller is closing; its tasks have stopped)."""
    with anyio.CancelScope(shield=True):
        # Nothing polls any more: the queue goes at once (dropping its keys one by one
        # would rebuild its heap as they go), its entries freed in slices.
        await dropped(hub.pacer.workers.queue.clear(), DETACH_SLICE * 8)
        async for names in in_slices(list(hub.jobs), DETACH_SLICE):
            for job in hub.jobs.views(names):
                hub._remove(job)
