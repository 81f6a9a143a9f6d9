"""The workers: ``max_concurrency`` loops that each take the earliest-due job and poll it.

No task per job and no dispatcher: a free worker pops the due-queue itself. A worker
with nothing due sleeps on the clock until the next due time; scheduling something
earlier wakes exactly one sleeping worker (the one that would sleep longest), so a
burst of new jobs wakes as many workers as it needs and no more.

What a worker does with a due job is the hub's business (``Hub.poll``); the
:class:`Fetcher` makes the describe through the request pipeline and hands the answer
(or the failure) back, deciding nothing about it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Generic, TypeVar

import anyio

from ._answers import check_description
from ._clock import Clock
from ._operations import DESCRIBE
from ._scheduler import DueQueue

if TYPE_CHECKING:
    from ._events import Description
    from ._pipeline import Pipeline
    from ._ratelimit import RateBudget
    from ._transport import Transport

__all__ = ["Answer", "Fetcher", "Workers"]

T = TypeVar("T", bound=Hashable)


class Workers(Generic[T]):
    """A pool of worker loops over one :class:`DueQueue`.

    Args:
        count: how many items may be polled at once (the hub's ``max_concurrency``).
    """

    __slots__ = ("_idle", "_sleep_until", "clock", "count", "queue")

    def __init__(self, queue: DueQueue[T], clock: Clock, *, count: int) -> None:
        self.queue = queue
        self.clock = clock
        self.count = count
        # Sleeping workers: their wake-up time and the scope that interrupts the sleep.
        self._idle: dict[int, tuple[float, anyio.CancelScope]] = {}
        self._sleep_until = -math.inf

    def schedule(self, item: T, due: float) -> None:
        """Queue ``item`` at ``due``; wake a sleeping worker if it is due sooner."""
        self.queue.push(item, due)
        if due < self._sleep_until:
            self._wake_one()

    async def run(self, poll: Callable[[T], Awaitable[None]], keep: Callable[[T], bool]) -> None:
        """Run every worker until cancelled.

        Args:
            poll: what a worker does with a due item.
            keep: whether a due item is polled here; one that is not is dropped (in a
                fleet, a job another process polls: it is queued again if that changes).
        """
        async with anyio.create_task_group() as tg:
            for worker_id in range(self.count):
                tg.start_soon(self._work, worker_id, poll, keep)

    async def _work(
        self, worker_id: int, poll: Callable[[T], Awaitable[None]], keep: Callable[[T], bool]
    ) -> None:
        clock = self.clock
        queue = self.queue
        while True:
            item = queue.pop_due(clock.now())
            if item is None:
                await self._sleep(worker_id)
            elif keep(item):
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


#: A describe answered: the description and when the request was sent (the pipeline's clock).
Answer = tuple["Description", float]


class Fetcher:
    """Describes jobs through the request pipeline and hands the answers back.

    A due job gets a retried describe (:meth:`describe`, what ``Hub.poll`` awaits); a
    caller's deadline gets one last attempt per unfinished job (:meth:`last_look`).
    It decides nothing about an answer: the hub does.
    """

    __slots__ = ("budget", "pipeline", "transport")

    def __init__(self, transport: Transport, pipeline: Pipeline, budget: RateBudget) -> None:
        self.transport = transport
        self.pipeline = pipeline
        self.budget = budget

    async def _describe(self, name: str) -> Description:
        # Checked here, inside the retried call: a malformed answer is retried.
        return check_description(name, await self.transport.describe(name))

    async def describe(self, name: str, *, deadline: float) -> Answer | Exception:
        """Describe ``name``, retrying throttles and transient errors until ``deadline``.

        Returns:
            The answer; or the failure that ended the retries (a ``TransportError``), or
            whatever else the transport raised (a bug of its own: the hub ends this job
            alone with it).
        """
        try:
            return await self.pipeline.call_retrying(
                DESCRIBE, self.budget, partial(self._describe, name), deadline=deadline
            )
        except Exception as exc:
            return exc

    async def last_look(
        self, names: Sequence[str], concurrency: int
    ) -> list[tuple[str, Description, float]]:
        """Describe each job once now (one attempt, no retry); the answers that came.

        A failure is logged and left out: it is the caller's last look, not a poll.
        """
        queue = deque(names)
        answers: list[tuple[str, Description, float]] = []

        async def drain() -> None:
            # A few tasks drain the list: no task per job, whatever its length.
            while queue:
                name = queue.popleft()
                try:
                    description, sent_at = await self.pipeline.call(
                        DESCRIBE, self.budget, partial(self._describe, name)
                    )
                except Exception as exc:
                    code = getattr(exc, "code", type(exc).__name__)
                    self.pipeline.log.info("final_poll_failed", job_name=name, error=code)
                    continue
                answers.append((name, description, sent_at))

        async with anyio.create_task_group() as tg:
            for _ in range(min(concurrency, len(queue))):
                tg.start_soon(drain)
        return answers
