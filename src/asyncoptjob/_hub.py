"""The hub: one table of jobs, many subscribers, one place that decides what changed.

Data flows one way. Subscribers name the jobs they want; the hub keeps one entry per
job however many subscribers share it, and queues it on the due-queue. The workers
(``_workers.py``) pop due jobs and call :meth:`Hub.poll`, which describes the job
through the request pipeline (``_pipeline.py``) and hands the answer to
:meth:`Hub.observe`: the only place that decides whether the status changed, fans the
event out to every subscriber of the job, and reschedules or finishes it. Terminal
jobs leave the table.

Beside the flow, through narrow protocols the hub implements: the sweep driver
(``SweepHost``: a List sweep hints which jobs changed) and the fleet (``FleetHost``:
the jobs watched, whether a status is news, apply a remote status, a lease gained).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ._clock import Clock
from ._errors import (
    CredentialsError,
    JobNotFoundError,
    PollerClosedError,
    ThrottledError,
    TransientError,
    TransportError,
)
from ._events import JobErrorEvent, JobStatus, StatusChange
from ._log import get_logger
from ._pipeline import Pipeline
from ._ratelimit import RateBudget
from ._scheduler import NOT_QUEUED, URGENT, DueQueue
from ._subscription import Subscription
from ._sweep import SWEEP_INTERVAL_FACTOR, SweepDriver, Sweeper
from ._workers import Describer, Workers

if TYPE_CHECKING:
    from ._events import Description
    from ._fleet import Fleet
    from ._options import Options
    from ._state import BatchedStore
    from ._transport import Transport

__all__ = ["Hub"]

log = get_logger()

_STATUSES = {status.value: status for status in JobStatus}


class _Job:
    """The hub's bookkeeping for one job (kept small: 100,000 of these fit in ~50 MB)."""

    __slots__ = (
        "applied_at",
        "failing_since",
        "first_seen",
        "hinted",
        "in_flight",
        "name",
        "pending",
        "removed",
        "status",
        "subs",
        "token",
        "unchanged",
    )

    def __init__(self, name: str, now: float) -> None:
        self.name = name
        self.status: JobStatus | None = None
        # Subscribers that have seen ``status``; ``pending`` ones still await a first event.
        self.subs: list[Subscription] = []
        self.pending: list[Subscription] | None = None
        self.unchanged = 0
        self.first_seen = now
        self.failing_since: float | None = None
        self.applied_at = -math.inf
        self.token = NOT_QUEUED
        self.in_flight = False
        self.removed = False
        # The rank of the newest status a sweep listed and no describe here answered yet
        # (-inf: none). It outlives a lease moving: whoever polls the job next looks soon.
        self.hinted = -math.inf


class Hub:
    """Job table and fan-out. Internal: use ``Poller`` or ``watch``."""

    def __init__(
        self,
        transport: Transport,
        options: Options,
        *,
        limiter: RateBudget,
        fleet: Fleet | None = None,
        rng: random.Random | None = None,
        state: BatchedStore | None = None,
    ) -> None:
        self.options = options
        # Durable consumers' cursors (state= or fleet mode). None: nothing is remembered.
        self.state = state
        self.clock: Clock = options.clock
        self.rng = rng or random.Random()
        # Fleet mode (Redis): who polls which job, shared statuses and events. None: all local.
        self.fleet = fleet
        self.limiter = limiter
        self.pipeline = Pipeline(
            clock=self.clock, retry=options.retry, first_answer_timeout=options.first_answer_timeout
        )
        self.describer = Describer(transport, self.pipeline, limiter, self, fleet)
        self.workers: Workers[_Job] = Workers(
            DueQueue(),
            self.clock,
            count=options.max_concurrency,
            poll=self.describer.poll,
            skip=None if fleet is None else self._polled_elsewhere,
        )
        self.sweeps: SweepDriver | None = None
        if options.strategy != "describe":
            interval = options.policy.interval * SWEEP_INTERVAL_FACTOR
            # In a fleet, the List budget is the fleet's and one process sweeps for all.
            sweeper = Sweeper(
                transport,
                options.sweep,
                self.pipeline,
                interval=interval,
                limiter=None if fleet is None else fleet.list_budget,
            )
            self.sweeps = SweepDriver(sweeper, options.strategy, lease=fleet)
        self.jobs: dict[str, _Job] = {}
        self.subscriptions: set[Subscription] = set()
        self.closed = False
        # Bound once: the logging route and its level gate are resolved now, not per call.
        self.log = log.bind()
        self.events = 0
        #: Status changes delivered, by status (``events`` less the JobErrorEvent events).
        self.delivered: dict[str, int] = {}
        #: Called once per change a describe observed after the job's first observation
        #: (the metrics' detection lag; None: nobody listens).
        self.on_change: Callable[[JobStatus, Description, datetime], None] | None = None
        self.jobs_watched = 0
        self.jobs_finished = 0
        self.hints = 0

    # -- subscribers --------------------------------------------------------------------

    def subscribe(self, names: Iterable[str]) -> Subscription:
        """Open a subscription for ``names`` (validated, de-duplicated); ``attach`` it next."""
        if self.closed:
            raise PollerClosedError("the Poller is closed: open a new one with `async with`")
        sub = Subscription(names, self.clock.now())
        if sub.names:
            self.subscriptions.add(sub)
        return sub

    async def attach(self, sub: Subscription, *, chunk: int = 1000) -> None:
        """Add ``sub`` to its jobs' entries, yielding to the loop every ``chunk`` jobs.

        Adding 100,000 jobs in one go would block the event loop for a noticeable
        time; chunks keep every step short. Jobs start being polled as they are added.
        """
        jobs = self.jobs
        fleet = self.fleet
        for start in range(0, len(sub.names), chunk):
            if start:
                await anyio.lowlevel.checkpoint()
                if sub.closed or self.closed:
                    return
            now = self.clock.now()
            added: list[str] = []
            for name in sub.names[start : start + chunk]:
                job = jobs.get(name)
                if job is None:
                    job = jobs[name] = _Job(name, now)
                    self.jobs_watched += 1
                if job.pending is None:
                    job.pending = [sub]
                else:
                    job.pending.append(sub)
                if fleet is not None:
                    added.append(name)
                # A late subscriber's first event comes from a fresh describe, soon.
                elif not job.in_flight:
                    self._schedule(job, now)
            if fleet is not None and added:
                # The fleet claims leases, serves the last known status, schedules its own.
                await fleet.attach(self, added)

    def unsubscribe(self, sub: Subscription) -> None:
        """Drop ``sub``; jobs nobody else watches leave the table. Synchronous and idempotent."""
        sub.close()
        self._detach(sub)

    def _detach(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)
        for name in sub.remaining:
            job = self.jobs.get(name)
            if job is None:
                continue
            if sub in job.subs:
                job.subs.remove(sub)
            if job.pending and sub in job.pending:
                job.pending.remove(sub)
            if not job.subs and not job.pending:
                self._remove(job)

    def close(self, error: BaseException) -> None:
        """Fail every open subscription with ``error`` and forget all jobs."""
        self.closed = True
        for sub in list(self.subscriptions):
            if not sub.is_finished():
                sub.fail(error)
        self.subscriptions.clear()
        for job in list(self.jobs.values()):
            self._remove(job)

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until cancelled: the workers, and the sweep driver and fleet if any."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.workers.run)
            if self.sweeps is not None:
                tg.start_soon(self.sweeps.run, self)
            if self.fleet is not None:
                tg.start_soon(self.fleet.run, self)

    async def poll_once(self, names: Iterable[str]) -> None:
        """Describe each named job once now (one attempt, no retry): a caller's last look."""
        jobs = [self.jobs[name] for name in names if name in self.jobs]
        await self.describer.last_look(jobs, self.options.max_concurrency)

    # -- results ------------------------------------------------------------------------

    def observe(self, job: _Job, description: Description, sent_at: float) -> None:
        """Apply a describe answer: fan out a change, then reschedule or finish the job."""
        if job.removed:
            return
        status = JobStatus(description["OptimizationJobStatus"])
        stale = sent_at < job.applied_at or (
            # Fleet mode: older than what the fleet already reported.
            self.fleet is not None and job.status is not None and status.rank < job.status.rank
        )
        if stale:
            # A newer answer was already applied. Keep the job scheduled.
            if not job.in_flight and job.token == NOT_QUEUED:
                self._schedule(job, self.clock.now() + self._delay(job))
            return
        job.applied_at = sent_at
        job.failing_since = None
        job.hinted = -math.inf
        self.log.debug("job_polled", job_name=job.name, status=status.value)
        previous = job.status
        observed_at = self._apply(job, status, description)
        if previous is not None and status is not previous and self.on_change is not None:
            self.on_change(status, description, observed_at)
        if status.is_terminal:
            self.jobs_finished += 1
            self._remove(job)
        elif not job.in_flight:
            self._schedule(job, self.clock.now() + self._delay(job))

    def _apply(self, job: _Job, status: JobStatus, description: Description) -> datetime:
        """Fan out a new status to the job's subscribers; give pending ones their first event.

        Returns:
            When the status was observed (the events' ``observed_at``).
        """
        observed_at = datetime.now(timezone.utc)
        previous = job.status
        if status is not previous:
            job.status = status
            job.unchanged = 0
            if job.subs:
                event = StatusChange(job.name, previous, status, description, observed_at)
                for sub in job.subs:
                    sub.deliver(event, terminal=status.is_terminal)
                self._delivered(status, len(job.subs))
                self.log.info(
                    "job_status_changed",
                    job_name=job.name,
                    previous_status=previous.value if previous else None,
                    status=status.value,
                )
        else:
            job.unchanged += 1
        pending = job.pending
        if pending:
            job.pending = None
            first = StatusChange(job.name, None, status, description, observed_at)
            for sub in pending:
                since = sub.since.get(job.name) if sub.since else None
                if since is None:
                    sub.deliver(first, terminal=status.is_terminal)
                    self._delivered(status, 1)
                elif status.rank > since.rank:
                    # A durable consumer goes on from the status it committed.
                    event = StatusChange(job.name, since, status, description, observed_at)
                    sub.deliver(event, terminal=status.is_terminal)
                    self._delivered(status, 1)
                elif status.rank < since.rank:
                    # Older than what the consumer committed: wait for the next answer.
                    job.pending = [*(job.pending or []), sub]
                    continue
                job.subs.append(sub)
        return observed_at

    def _delivered(self, status: JobStatus, count: int) -> None:
        self.events += count
        self.delivered[status.value] = self.delivered.get(status.value, 0) + count

    def give_up_at(self, job: _Job, now: float) -> float:
        """When retries of ``job`` stop: ``max_elapsed`` after it started failing."""
        since = job.failing_since if job.failing_since is not None else now
        return since + self.options.retry.max_elapsed

    def failed(self, job: _Job, error: TransportError, started: float) -> None:
        """Decide what a failed poll of ``job`` (started at ``started``) means."""
        now = self.clock.now()
        if isinstance(error, (ThrottledError, TransientError)):
            if job.failing_since is None:
                job.failing_since = started
            if now >= self.give_up_at(job, now):
                self._finish_error(job, error)
            else:
                self._schedule(job, now + self._delay(job))
        elif isinstance(error, JobNotFoundError):
            # The grace covers eventual consistency after Create: only for a job never
            # seen. A job that was seen and is now unknown was deleted.
            if job.status is None and now - job.first_seen < self.options.not_found_grace:
                self.log.debug("job_not_found_yet", job_name=job.name)
                self._schedule(job, now + (self.options.policy.not_found_interval or 0.0))
            else:
                self._finish_error(job, error)
        elif isinstance(error, CredentialsError):
            self._fail_subscribers(job, error)
        else:
            self._finish_error(job, error)

    def _finish_error(self, job: _Job, error: TransportError, *, remote: bool = False) -> None:
        if not remote and self.fleet is not None:
            self.fleet.share_error(job.name, error)
        self.log.warning("job_error", job_name=job.name, error=error.code, message=str(error))
        event = JobErrorEvent(job.name, error)
        subs = job.subs + (job.pending or [])
        for sub in subs:
            sub.deliver(event, terminal=True)
        self.events += len(subs)
        self.jobs_finished += 1
        self._remove(job)

    def _fail_subscribers(self, job: _Job, error: CredentialsError) -> None:
        self.log.error("credentials_error", job_name=job.name, error=error.code, message=str(error))
        for sub in job.subs + (job.pending or []):
            sub.fail(error)
            self._detach(sub)
        self._remove(job)

    # -- the fleet's view (FleetHost) ---------------------------------------------------

    def watched(self) -> Collection[str]:
        """The names of the jobs watched now."""
        return self.jobs.keys()

    def wants(self, name: str, status: str) -> bool:
        """Whether ``status`` of ``name`` (seen by another process) is news here."""
        job = self.jobs.get(name)
        if job is None or job.removed:
            return False
        new = JobStatus(status)
        if job.status is None or new.rank > job.status.rank:
            return True
        return bool(job.pending) and new is job.status

    def apply_remote(self, name: str, description: Description) -> None:
        """Apply a status another process observed (from the fleet's stream or snapshot)."""
        job = self.jobs.get(name)
        if job is None or not self.wants(name, description["OptimizationJobStatus"]):
            return
        status = JobStatus(description["OptimizationJobStatus"])
        self._apply(job, status, description)
        if status.is_terminal:
            self.jobs_finished += 1
            self._remove(job)

    def apply_remote_error(self, name: str, error: TransportError) -> None:
        """Another process gave ``name`` up with ``error``: the same JobErrorEvent here."""
        job = self.jobs.get(name)
        if job is not None and not job.removed:
            self._finish_error(job, error, remote=True)

    def poll_soon(self, name: str) -> None:
        """Describe ``name`` now unless it is already on the wire (Redis went away)."""
        job = self.jobs.get(name)
        if job is not None and not job.in_flight:
            self._schedule(job, self.clock.now())

    def lease_gained(self, name: str, age: float | None) -> None:
        """``name``'s lease became ours: describe it when it is due, counted from the
        fleet's last describe ``age`` seconds ago (now if never, or never seen here)."""
        job = self.jobs.get(name)
        if job is None or job.in_flight:
            return
        now = self.clock.now()
        if age is None or job.status is None:
            self._schedule(job, now)
        elif job.hinted > job.status.rank:
            # A sweep listed news that nobody here described: the last holder may have
            # handed the lease over before it did. Ahead of routine polls, as a hint.
            self._schedule(job, URGENT)
        else:
            self._schedule(job, now - age + self._delay(job))

    def in_flight(self, name: str) -> bool:
        """Whether a describe of ``name`` is under way."""
        job = self.jobs.get(name)
        return job is not None and job.in_flight

    def _polled_elsewhere(self, job: _Job) -> bool:
        # Another process holds the lease; the fleet re-queues the job if that changes.
        return self.fleet is not None and not self.fleet.owns(job.name)

    # -- the sweep driver's view (SweepHost) --------------------------------------------

    def job_count(self) -> int:
        """How many jobs are watched now."""
        return len(self.jobs)

    def hint(self, name: str, status: str) -> None:
        """A sweep listed ``name`` in ``status``: describe it soon if that is news."""
        job = self.jobs.get(name)
        if job is None or job.status is None or job.in_flight:
            return
        listed = _STATUSES.get(status)
        if listed is not None and listed.rank <= job.status.rank:
            # The known status, or an older one a lagging (eventually consistent) List
            # still shows: no news. An unknown status is news: describe to find out.
            return
        self.hints += 1
        # Remembered in a fleet: a job polled elsewhere now may be ours by the time it
        # is described (a lease handed over must not lose the hint with it).
        job.hinted = max(job.hinted, math.inf if listed is None else listed.rank)
        # Ahead of routine polls: a burst of due safety-net describes must not delay it.
        self._schedule(job, URGENT)

    def strategy_changed(self, sweeping: bool) -> None:
        """Back to describe-only: pull in jobs parked at the slow safety cadence."""
        if sweeping:
            return
        now = self.clock.now()
        for job in self.jobs.values():
            if job.token != NOT_QUEUED:
                self._schedule(job, now + self._delay(job))

    # -- scheduling ---------------------------------------------------------------------

    def _delay(self, job: _Job) -> float:
        sweeps = self.sweeps
        if sweeps is not None and sweeps.sweeping and job.status is not None:
            # Sweeps report changes; describes are only the safety net.
            return sweeps.sweeper.policy.safety_delay(self.rng)
        return self.options.policy.next_delay(job.status, job.unchanged, self.rng)

    def _schedule(self, job: _Job, due: float) -> None:
        if not job.removed:
            self.workers.schedule(job, due)

    def _remove(self, job: _Job) -> None:
        if job.removed:
            return
        job.removed = True
        self.workers.queue.discard(job)
        if self.jobs.get(job.name) is job:
            del self.jobs[job.name]
        if self.fleet is not None:
            self.fleet.forget(job.name)
