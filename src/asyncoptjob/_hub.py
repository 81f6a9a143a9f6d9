"""The hub: one table of jobs, one scheduler, one pool of workers, many subscribers.

Data flows one way. Subscribers name the jobs they want; the hub keeps one entry per
job however many subscribers share it. A dispatcher hands the earliest-due job to one
of ``max_concurrency`` workers (no task per job). A worker only fetches: it takes a
token from the shared rate budget, describes the job through the transport (retrying
throttles and transient errors with tenacity), and hands the answer back to the hub,
which decides whether the status changed and fans the event out to every subscriber
of that job. Terminal jobs leave the table.

The hub runs in one of two ways:

* in the background, for the life of a ``Poller`` (``run()`` until cancelled);
* inline, driven by a single reader (module-level ``watch``): ``run(stop)`` polls until
  the reader has something to read, then stops dispatching, lets requests already on
  the wire finish (their quota is spent; their answers are kept), cancels only waits
  (rate-budget waits, backoff sleeps) and returns. No task outlives the call.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.lowlevel
import structlog
from tenacity import RetryCallState

from ._clock import Clock, MonotonicClock
from ._errors import (
    CredentialsError,
    JobNotFoundError,
    PollerClosedError,
    ThrottledError,
    TransientError,
    TransportError,
)
from ._events import JobError, JobStatus, StatusChange
from ._policy import PollPolicy
from ._ratelimit import AdaptiveRateLimiter, RateLimiterStatistics
from ._retry import RetryPolicy
from ._scheduler import NOT_QUEUED, URGENT, DueQueue
from ._stats import PollerStats
from ._subscription import Subscription
from ._sweep import SWEEP_INTERVAL_FACTOR, Strategy, Sweeper, SweepPolicy

if TYPE_CHECKING:
    from ._events import Description
    from ._fleet import Fleet
    from ._transport import Transport

__all__ = ["Hub"]

log = structlog.get_logger("asyncoptjob")

_OUTCOMES = ("ok", "throttled", "transient", "not_found", "other")

# Statuses only move forward; fleet mode ignores answers that would move a job back.
_RANK = {
    JobStatus.STARTING: 0,
    JobStatus.INPROGRESS: 1,
    JobStatus.STOPPING: 2,
    JobStatus.COMPLETED: 3,
    JobStatus.FAILED: 3,
    JobStatus.STOPPED: 3,
}
_STATUSES = {status.value: status for status in JobStatus}


class RateBudget(Protocol):
    """What the hub needs from a rate limiter (in-process, or the fleet's in Redis)."""

    @property
    def rate(self) -> float | None: ...

    def statistics(self) -> RateLimiterStatistics: ...

    async def acquire(self) -> None: ...

    def on_success(self) -> None: ...

    def on_throttle(self, sent_at: float | None = None) -> None: ...


class _SoftStop(Exception):
    """Raised inside a worker when an inline run stops while the worker was only waiting."""


class _Job:
    """The hub's bookkeeping for one job (kept small: 100,000 of these fit in ~50 MB)."""

    __slots__ = (
        "applied_at",
        "failing_since",
        "first_seen",
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


class Hub:
    """Job table, scheduler, workers and fan-out. Internal: use ``Poller`` or ``watch``."""

    def __init__(
        self,
        transport: Transport,
        *,
        limiter: RateBudget,
        policy: PollPolicy,
        retry: RetryPolicy,
        not_found_grace: float,
        max_concurrency: int,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        strategy: Strategy = "describe",
        sweep: SweepPolicy | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        self.transport = transport
        # Fleet mode (Redis): who polls which job, shared statuses and events. None: all local.
        self.fleet = fleet
        self.limiter = limiter
        self.policy = policy
        self.retry = retry
        self.not_found_grace = not_found_grace
        self.max_concurrency = max_concurrency
        self.clock: Clock = clock or MonotonicClock()
        self.rng = rng or random.Random()
        self.jobs: dict[str, _Job] = {}
        self.queue: DueQueue[_Job] = DueQueue()
        self.subscriptions: set[Subscription] = set()
        self.closed = False
        # Bound once: an unbound structlog proxy re-resolves its configuration on every
        # call, which the poll loop would pay for each describe.
        self.log = log.bind()
        self._wake = anyio.Event()
        # Idle workers' wake-up deadlines; scheduling anything earlier wakes them.
        self._idle_until: dict[int, float] = {}
        self._sleep_until = -math.inf
        self._soft_scopes: set[anyio.CancelScope] = set()
        self._stopping = False
        self._requests = dict.fromkeys(_OUTCOMES, 0)
        self._retries = 0
        self._events = 0
        self._jobs_watched = 0
        self._jobs_finished = 0
        self._in_flight = 0
        self.strategy = strategy
        self.sweeper: Sweeper | None = None
        if strategy != "describe":
            self.sweeper = Sweeper(
                transport,
                sweep or SweepPolicy(),
                retry,
                self.clock,
                interval=policy.interval * SWEEP_INTERVAL_FACTOR,
            )
        self._sweeping = False
        self._next_sweep_at = -math.inf
        self._hints = 0

    # -- subscribers --------------------------------------------------------------------

    def subscribe(self, names: Iterable[str], *, inline: bool = False) -> Subscription:
        """Open a subscription for ``names`` (validated, de-duplicated); ``attach`` it next."""
        if self.closed:
            raise PollerClosedError("the Poller is closed: open a new one with `async with`")
        sub = Subscription(names, on_ready=self._soft_stop if inline else None)
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
            added: list[_Job] = []
            for name in sub.names[start : start + chunk]:
                job = jobs.get(name)
                if job is None:
                    job = jobs[name] = _Job(name, now)
                    self._jobs_watched += 1
                if job.pending is None:
                    job.pending = [sub]
                else:
                    job.pending.append(sub)
                if fleet is not None:
                    added.append(job)
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

    async def run(self, *, inline: bool = False) -> None:
        """Poll until cancelled or, ``inline``, until an inline subscriber has news (then drain)."""
        self._stopping = False
        async with anyio.create_task_group() as tg:
            for worker_id in range(self.max_concurrency):
                tg.start_soon(self._worker, worker_id, inline)
            if self.sweeper is not None:
                tg.start_soon(self._sweep_loop, self.sweeper, inline)
            if self.fleet is not None:
                tg.start_soon(self._fleet_loop, self.fleet, inline)

    async def _fleet_loop(self, fleet: Fleet, inline: bool) -> None:
        # Inline, the fleet's lease renewals and event reads run while the reader waits.
        if not inline:
            await fleet.run(self)
            return
        try:
            await self._soft_wait(fleet.run, self)
        except _SoftStop:
            return

    def _soft_stop(self) -> None:
        # Called when the inline reader gets something: stop waiting, finish the wire.
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        for scope in self._soft_scopes:
            scope.cancel()

    async def _worker(self, worker_id: int, inline: bool) -> None:
        # Each free worker takes the earliest-due job itself: no dispatcher, no hand-off.
        clock = self.clock
        queue = self.queue
        while not self._stopping:
            job = queue.pop_due(clock.now())
            if job is None:
                await self._idle(worker_id)
                continue
            if self.fleet is not None and not self.fleet.owns(job.name):
                # Another process holds the lease; the fleet re-queues it if that changes.
                continue
            job.in_flight = True
            await self._poll(job, inline)

    async def _idle(self, worker_id: int) -> None:
        """Sleep until the next job is due, or until an earlier one is scheduled."""
        due = self.queue.next_due()
        deadline = math.inf if due is None else due
        if self._wake.is_set():
            self._wake = anyio.Event()
        wake = self._wake
        self._idle_until[worker_id] = deadline
        self._sleep_until = max(self._idle_until.values())
        try:
            with anyio.move_on_after(deadline - self.clock.now()):
                await wake.wait()
        finally:
            del self._idle_until[worker_id]
            self._sleep_until = max(self._idle_until.values(), default=-math.inf)

    # -- one poll -----------------------------------------------------------------------

    async def _poll(self, job: _Job, soft: bool) -> None:
        clock = self.clock
        now = clock.now()
        give_up_at = (job.failing_since if job.failing_since is not None else now) + (
            self.retry.max_elapsed
        )
        description: Description
        sent_at: float
        try:
            description, sent_at = await self._describe(job, soft, give_up_at)
        except BaseException as exc:
            job.in_flight = False
            self._failed(job, exc, give_up_at)
            return
        if self.fleet is not None:
            try:
                await self.fleet.publish(job.name, job.status, description)
            finally:
                job.in_flight = False
        else:
            job.in_flight = False
        self.observe(job, description, sent_at)

    def _failed(self, job: _Job, exc: BaseException, give_up_at: float) -> None:
        """Decide what a failed poll means for ``job``; re-raise what is not ours."""
        now = self.clock.now()
        if isinstance(exc, _SoftStop):
            self._reschedule_now(job)
        elif isinstance(exc, (ThrottledError, TransientError)):
            if now >= give_up_at:
                self._finish_error(job, exc)
            else:
                self._schedule(job, now + self._delay(job))
        elif isinstance(exc, JobNotFoundError):
            # The grace covers eventual consistency after Create: only for a job never
            # seen. A job that was seen and is now unknown was deleted.
            if job.status is None and now - job.first_seen < self.not_found_grace:
                self.log.debug("job_not_found_yet", job_name=job.name)
                self._schedule(job, now + (self.policy.not_found_interval or 0.0))
            else:
                self._finish_error(job, exc)
        elif isinstance(exc, CredentialsError):
            self._fail_subscribers(job, exc)
        elif isinstance(exc, TransportError):
            self._finish_error(job, exc)
        else:
            raise exc

    async def _describe(
        self, job: _Job, soft: bool, give_up_at: float
    ) -> tuple[Description, float]:
        """Describe ``job``, retrying throttles and transient errors with tenacity."""
        try:
            # The common case: one attempt, none of the retry machinery on the hot path.
            return await self._attempt(job, soft)
        except (ThrottledError, TransientError) as exc:
            first: BaseException | None = exc
        retrying = self.retry.retrying(
            deadline=give_up_at,
            clock=self.clock,
            sleep=self._soft_sleep if soft else self.clock.sleep,
            before_sleep=self._before_sleep,
        )
        async for attempt in retrying:
            with attempt:
                if first is not None:
                    # Hand tenacity the first failure so it counts as attempt 1.
                    failed, first = first, None
                    raise failed
                return await self._attempt(job, soft)
        raise AssertionError("unreachable: tenacity re-raises the last failure")  # pragma: no cover

    async def _attempt(self, job: _Job, soft: bool) -> tuple[Description, float]:
        await self._acquire(self.limiter, soft)
        sent_at = self.clock.now()
        self._in_flight += 1
        try:
            description = await self.transport.describe(job.name)
        except TransportError as exc:
            outcome = _outcome(exc)
            self._requests[outcome] += 1
            if outcome == "throttled":
                self.limiter.on_throttle(sent_at)
            if outcome in ("throttled", "transient") and job.failing_since is None:
                job.failing_since = sent_at
            raise
        finally:
            self._in_flight -= 1
        self._requests["ok"] += 1
        self.limiter.on_success()
        return description, sent_at

    def _before_sleep(self, state: RetryCallState) -> None:
        self._retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        job_name = getattr(exc, "job_name", None)
        delay = state.upcoming_sleep
        if isinstance(exc, ThrottledError):
            self.log.info(
                "throttled",
                job_name=job_name,
                attempt=state.attempt_number,
                delay=round(delay, 3),
                rate_limit=self.limiter.rate,
            )
        else:
            self.log.info(
                "retrying",
                job_name=job_name,
                attempt=state.attempt_number,
                delay=round(delay, 3),
                error=getattr(exc, "code", type(exc).__name__),
            )

    async def _acquire(self, limiter: RateBudget, soft: bool) -> None:
        if soft:
            await self._soft_wait(limiter.acquire)
        else:
            await limiter.acquire()

    async def _soft_sleep(self, seconds: float) -> None:
        await self._soft_wait(self.clock.sleep, seconds)

    async def _soft_wait(self, fn: Any, *args: Any) -> None:
        if self._stopping:
            raise _SoftStop
        with anyio.CancelScope() as scope:
            self._soft_scopes.add(scope)
            try:
                await fn(*args)
            finally:
                self._soft_scopes.discard(scope)
        if scope.cancelled_caught:
            raise _SoftStop

    # -- results ------------------------------------------------------------------------

    def observe(self, job: _Job, description: Description, sent_at: float) -> None:
        """Apply a describe answer: fan out a change, then reschedule or finish the job."""
        if job.removed:
            return
        if sent_at < job.applied_at:
            # A stale answer: a newer one was already applied. Keep the job scheduled.
            if not job.in_flight and job.token == NOT_QUEUED:
                self._schedule(job, self.clock.now() + self._delay(job))
            return
        status = JobStatus(description["OptimizationJobStatus"])
        if self.fleet is not None and job.status is not None and _RANK[status] < _RANK[job.status]:
            # Older than what the fleet already reported: stale, keep the job scheduled.
            if not job.in_flight and job.token == NOT_QUEUED:
                self._schedule(job, self.clock.now() + self._delay(job))
            return
        job.applied_at = sent_at
        job.failing_since = None
        self.log.debug("job_polled", job_name=job.name, status=status.value)
        self._apply(job, status, description)
        if status.is_terminal:
            self._jobs_finished += 1
            self._remove(job)
        elif not job.in_flight:
            self._schedule(job, self.clock.now() + self._delay(job))

    def _apply(self, job: _Job, status: JobStatus, description: Description) -> None:
        """Fan out a new status to the job's subscribers; give pending ones their first event."""
        observed_at = datetime.now(timezone.utc)
        previous = job.status
        if status is not previous:
            job.status = status
            job.unchanged = 0
            if job.subs:
                event = StatusChange(job.name, previous, status, description, observed_at)
                for sub in job.subs:
                    sub.deliver(event, terminal=status.is_terminal)
                self._events += len(job.subs)
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
                sub.deliver(first, terminal=status.is_terminal)
            self._events += len(pending)
            job.subs.extend(pending)

    # -- fleet mode ---------------------------------------------------------------------

    def wants(self, name: str, status: str) -> bool:
        """Whether ``status`` of ``name`` (seen by another process) is news here."""
        job = self.jobs.get(name)
        if job is None or job.removed:
            return False
        new = JobStatus(status)
        if job.status is None or _RANK[new] > _RANK[job.status]:
            return True
        return bool(job.pending) and new is job.status

    def apply_remote(self, name: str, description: Description) -> None:
        """Apply a status another process observed (from the fleet's stream or snapshot)."""
        job = self.jobs.get(name)
        if job is None or job.removed or not self.wants(name, description["OptimizationJobStatus"]):
            return
        status = JobStatus(description["OptimizationJobStatus"])
        self._apply(job, status, description)
        if status.is_terminal:
            self._jobs_finished += 1
            self._remove(job)

    def poll_soon(self, job: _Job) -> None:
        """Describe ``job`` now unless it is already on the wire (fleet: it became ours)."""
        if not job.in_flight and not job.removed:
            self._schedule(job, self.clock.now())

    def _finish_error(self, job: _Job, error: TransportError) -> None:
        self.log.warning("job_error", job_name=job.name, error=error.code, message=str(error))
        event = JobError(job.name, error)
        subs = job.subs + (job.pending or [])
        for sub in subs:
            sub.deliver(event, terminal=True)
        self._events += len(subs)
        self._jobs_finished += 1
        self._remove(job)

    def _fail_subscribers(self, job: _Job, error: CredentialsError) -> None:
        self.log.error("credentials_error", job_name=job.name, error=error.code, message=str(error))
        for sub in job.subs + (job.pending or []):
            sub.fail(error)
            self._detach(sub)
        self._remove(job)

    # -- scheduling ---------------------------------------------------------------------

    def _delay(self, job: _Job) -> float:
        if self._sweeping and job.status is not None and self.sweeper is not None:
            # Sweeps report changes; describes are only the safety net.
            return self.sweeper.policy.safety_delay(self.rng)
        return self.policy.next_delay(job.status, job.unchanged, self.rng)

    def _schedule(self, job: _Job, due: float) -> None:
        if job.removed:
            return
        self.queue.push(job, due)
        if due < self._sleep_until:
            self._wake.set()

    def _reschedule_now(self, job: _Job) -> None:
        self._schedule(job, self.clock.now())

    def _remove(self, job: _Job) -> None:
        if job.removed:
            return
        job.removed = True
        self.queue.discard(job)
        if self.jobs.get(job.name) is job:
            del self.jobs[job.name]
        if self.fleet is not None:
            self.fleet.forget(job.name)

    # -- list sweeps --------------------------------------------------------------------

    async def _sweep_loop(self, sweeper: Sweeper, inline: bool) -> None:
        sleep = self._soft_sleep if inline else self.clock.sleep

        async def acquire(limiter: AdaptiveRateLimiter) -> None:
            await self._acquire(limiter, inline)

        if self._next_sweep_at == -math.inf:
            # Every job's first describe covers the start; the first sweep comes later.
            self._next_sweep_at = self.clock.now() + sweeper.interval
        try:
            while not self._stopping:
                self._update_mode(sweeper)
                now = self.clock.now()
                if now < self._next_sweep_at:
                    await sleep(self._next_sweep_at - now)
                    continue
                self._next_sweep_at = now + sweeper.interval
                if self._sweep_wanted(sweeper):
                    try:
                        await sweeper.sweep(self.hint, sleep, acquire)
                    except _SoftStop:
                        # Interrupted mid-sweep: the next run resumes it at once.
                        self._next_sweep_at = self.clock.now()
                        raise
                    if sweeper.behind:
                        # A burst of changes: read on now (the List budget paces it).
                        self._next_sweep_at = self.clock.now()
        except _SoftStop:
            return

    def _sweep_wanted(self, sweeper: Sweeper) -> bool:
        if self.strategy == "sweep":
            return True
        return (
            self.strategy == "auto"
            and sweeper.affordable
            and len(self.jobs) >= sweeper.policy.threshold
        )

    def _update_mode(self, sweeper: Sweeper) -> None:
        active = self._sweep_wanted(sweeper) and sweeper.failures_in_a_row == 0
        if active == self._sweeping:
            return
        self._sweeping = active
        self.log.info(
            "strategy_changed",
            strategy="sweep" if active else "describe",
            jobs=len(self.jobs),
            sweep_failures=sweeper.failures_in_a_row,
        )
        if not active:
            # Back to describe-only: pull in jobs parked at the slow safety cadence.
            now = self.clock.now()
            for job in self.jobs.values():
                if job.token != NOT_QUEUED:
                    self._schedule(job, now + self._delay(job))

    def hint(self, name: str, status: str) -> None:
        """A sweep listed ``name`` in ``status``: describe it soon if that is news."""
        job = self.jobs.get(name)
        if job is None or job.status is None or job.in_flight:
            return
        listed = _STATUSES.get(status)
        if listed is not None and _RANK[listed] <= _RANK[job.status]:
            # The known status, or an older one a lagging (eventually consistent) List
            # still shows: no news. An unknown status is news: describe to find out.
            return
        self._hints += 1
        # Ahead of routine polls: a burst of due safety-net describes must not delay it.
        self._schedule(job, URGENT)

    # -- one-off polls ------------------------------------------------------------------

    async def poll_once(self, names: Iterable[str]) -> None:
        """Describe each named job once now (one attempt, no retry) and apply the answers.

        Used at a caller's deadline: the last look before giving up.
        """
        queue = deque(self.jobs[name] for name in names if name in self.jobs)

        async def worker() -> None:
            # A few workers drain the list: no task per job, whatever its length.
            while queue:
                job = queue.popleft()
                await self.limiter.acquire()
                sent_at = self.clock.now()
                try:
                    description = await self.transport.describe(job.name)
                except TransportError as exc:
                    outcome = _outcome(exc)
                    self._requests[outcome] += 1
                    if outcome == "throttled":
                        self.limiter.on_throttle(sent_at)
                    self.log.info("final_poll_failed", job_name=job.name, error=exc.code)
                    continue
                self._requests["ok"] += 1
                self.limiter.on_success()
                if self.fleet is not None:
                    await self.fleet.publish(job.name, job.status, description)
                self.observe(job, description, sent_at)

        async with anyio.create_task_group() as tg:
            for _ in range(min(self.max_concurrency, len(queue))):
                tg.start_soon(worker)

    # -- statistics ---------------------------------------------------------------------

    def statistics(self) -> PollerStats:
        """A snapshot of the hub's counters."""
        limiter = self.limiter.statistics()
        return PollerStats(
            requests=dict(self._requests),
            retries=self._retries,
            events_emitted=self._events,
            jobs_watched=self._jobs_watched,
            jobs_active=len(self.jobs),
            jobs_finished=self._jobs_finished,
            subscribers=len(self.subscriptions),
            in_flight=self._in_flight,
            rate_limit=limiter.rate,
            measured_rate=limiter.measured_rate,
            strategy="sweep" if self._sweeping else "describe",
            sweeps=self.sweeper.sweeps if self.sweeper else 0,
            list_requests=dict(self.sweeper.list_calls) if self.sweeper else {},
            sweep_hints=self._hints,
            fleet=self.fleet.statistics() if self.fleet is not None else None,
        )


def _outcome(exc: TransportError) -> str:
    if isinstance(exc, ThrottledError):
        return "throttled"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, JobNotFoundError):
        return "not_found"
    return "other"
