"""The workers: ``max_concurrency`` loops that each take the earliest-due job and poll it.

No task per job and no dispatcher: a free worker pops the due-queue itself. A worker
with nothing due sleeps on the clock until the next due time; scheduling something
earlier wakes exactly one sleeping worker (the one that would sleep longest), so a
burst of new jobs wakes as many workers as it needs and no more.

What a worker does with a due job is the :class:`Describer`'s business: one describe
through the request pipeline, the answer (or the failure) handed to the hub.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import anyio

from ._clock import Clock
from ._errors import TransportError
from ._pipeline import DESCRIBE, Pipeline
from ._ratelimit import RateBudget
from ._scheduler import DueQueue, Schedulable

if TYPE_CHECKING:
    from ._events import Description, JobStatus
    from ._fleet import Fleet
    from ._transport import Transport

__all__ = ["Answers", "Describer", "PolledJob", "Workers"]

T = TypeVar("T", bound=Schedulable)


class Workers(Generic[T]):
    """A pool of worker loops over one :class:`DueQueue`.

    Args:
        count: how many items may be polled at once (the hub's ``max_concurrency``).
        poll: what a worker does with a due item.
        skip: items a worker drops instead of polling (fleet mode: jobs another
            process polls; the fleet re-queues them if that changes).
    """

    __slots__ = ("_idle", "_sleep_until", "clock", "count", "poll", "queue", "skip")

    def __init__(
        self,
        queue: DueQueue[T],
        clock: Clock,
        *,
        count: int,
        poll: Callable[[T], Awaitable[None]],
        skip: Callable[[T], bool] | None = None,
    ) -> None:
        self.queue = queue
        self.clock = clock
        self.count = count
        self.poll = poll
        self.skip = skip
        # Sleeping workers: their wake-up time and the scope that interrupts the sleep.
        self._idle: dict[int, tuple[float, anyio.CancelScope]] = {}
        self._sleep_until = -math.inf

    def schedule(self, item: T, due: float) -> None:
        """Queue ``item`` at ``due``; wake a sleeping worker if it is due sooner."""
        self.queue.push(item, due)
        if due < self._sleep_until:
            self._wake_one()

    async def run(self) -> None:
        """Run every worker until cancelled."""
        async with anyio.create_task_group() as tg:
            for worker_id in range(self.count):
                tg.start_soon(self._work, worker_id)

    async def _work(self, worker_id: int) -> None:
        clock = self.clock
        queue = self.queue
        skip = self.skip
        poll = self.poll
        while True:
            item = queue.pop_due(clock.now())
            if item is None:
                await self._sleep(worker_id)
            elif skip is None or not skip(item):
                await poll(item)

    async def _sleep(self, worker_id: int) -> None:
        """Sleep until the next item is due, or until something earlier is scheduled."""
        due = self.queue.next_due()
        until = math.inf if due is None else due
        with anyio.CancelScope() as scope:
            self._idle[worker_id] = (until, scope)
            if until > self._sleep_until:
                self._sleep_until = until
            try:
                if due is None:
                    await anyio.sleep_forever()
                else:
                    await self.clock.sleep(max(0.0, until - self.clock.now()))
            finally:
                if self._idle.pop(worker_id, None) is not None:
                    self._recompute()

    def _wake_one(self) -> None:
        worker_id = max(self._idle, key=lambda key: self._idle[key][0])
        _, scope = self._idle.pop(worker_id)
        scope.cancel()
        self._recompute()

    def _recompute(self) -> None:
        self._sleep_until = max((until for until, _ in self._idle.values()), default=-math.inf)


class PolledJob(Protocol):
    """What a describe needs to know of a job."""

    name: str
    status: JobStatus | None
    in_flight: bool


J = TypeVar("J", bound=PolledJob)
J_contra = TypeVar("J_contra", bound=PolledJob, contravariant=True)


class Answers(Protocol[J_contra]):
    """Where describe answers go: the hub's job table."""

    def give_up_at(self, job: J_contra, now: float) -> float:
        """When retries of ``job`` must stop (it has been failing since some time)."""
        ...

    def observe(self, job: J_contra, description: Description, sent_at: float) -> None:
        """Apply an answer sent at ``sent_at``."""
        ...

    def failed(self, job: J_contra, error: TransportError, started: float) -> None:
        """Decide what a failed poll (started at ``started``) means for ``job``."""
        ...


class Describer(Generic[J]):
    """Describes jobs through the request pipeline and hands the answers to the hub.

    A due job gets a retried describe (:meth:`poll`, what the workers run); a caller's
    deadline gets one last attempt per unfinished job (:meth:`last_look`).
    """

    __slots__ = ("answers", "budget", "fleet", "pipeline", "transport")

    def __init__(
        self,
        transport: Transport,
        pipeline: Pipeline,
        budget: RateBudget,
        answers: Answers[J],
        fleet: Fleet | None = None,
    ) -> None:
        self.transport = transport
        self.pipeline = pipeline
        self.budget = budget
        self.answers = answers
        self.fleet = fleet

    async def poll(self, job: J) -> None:
        """Describe ``job`` (retrying throttles and transient errors) and apply the answer."""
        job.in_flight = True
        started = self.pipeline.clock.now()
        try:
            description, sent_at = await self.pipeline.call_retrying(
                DESCRIBE,
                self.budget,
                partial(self.transport.describe, job.name),
                deadline=self.answers.give_up_at(job, started),
            )
            if self.fleet is not None:
                await self.fleet.publish(job.name, job.status, description)
        except TransportError as exc:
            job.in_flight = False
            self.answers.failed(job, exc, started)
            return
        except BaseException:
            job.in_flight = False
            raise
        job.in_flight = False
        self.answers.observe(job, description, sent_at)

    async def last_look(self, jobs: Iterable[J], concurrency: int) -> None:
        """Describe each job once now (one attempt, no retry) and apply the answers."""
        queue = deque(jobs)

        async def drain() -> None:
            # A few tasks drain the list: no task per job, whatever its length.
            while queue:
                job = queue.popleft()
                try:
                    description, sent_at = await self.pipeline.call(
                        DESCRIBE, self.budget, partial(self.transport.describe, job.name)
                    )
                    if self.fleet is not None:
                        await self.fleet.publish(job.name, job.status, description)
                except TransportError as exc:
                    self.pipeline.log.info("final_poll_failed", job_name=job.name, error=exc.code)
                    continue
                self.answers.observe(job, description, sent_at)

        async with anyio.create_task_group() as tg:
            for _ in range(min(concurrency, len(queue))):
                tg.start_soon(drain)
