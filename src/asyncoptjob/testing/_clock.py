"""A clock that only moves when the test says so."""

from __future__ import annotations

import heapq
import itertools
import math

import anyio
import anyio.lowlevel

__all__ = ["ManualClock"]


class ManualClock:
    """Virtual monotonic time for unit tests: sleeping waits until :meth:`advance` moves past.

    Pass it as ``clock=`` to a :class:`~asyncoptjob.Poller` (or ``watch`` /
    ``wait_until_done``) together with a :class:`FakeTransport`: poll intervals, rate
    budget waits, retry backoffs and timeouts all run on it, so a test of a day-long
    watch takes milliseconds and never depends on the machine's speed (trio's
    ``MockClock`` without autojump)::

        clock = ManualClock()
        async with Poller(transport=transport, clock=clock, poll_interval=60) as poller:
            async with poller.watch(["job-a"]) as events:
                first = await anext(events)  # described at once
                await clock.advance(60)  # the next poll comes due
                second = await anext(events)

    Args:
        start: the time the clock starts at (seconds; any value, it is monotonic).
    """

    __slots__ = ("_now", "_seq", "_sleepers")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by ``seconds`` (at least a checkpoint)."""
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        woken = anyio.Event()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), woken))
        try:
            await woken.wait()
        finally:
            # Cancelled early (a worker woken by new work): mark the entry as done.
            woken.set()

    @property
    def next_deadline(self) -> float | None:
        """When the earliest sleeper wakes (None: nobody sleeps on this clock)."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper due by then, in order.

        Sleepers wake one deadline at a time, and the tasks they wake run before time
        moves on: work that a wake-up schedules at an earlier virtual time than the end
        of the advance runs at that time, as it would have in real time.
        """
        if seconds < 0 or math.isnan(seconds):
            raise ValueError(f"a clock only moves forward: seconds must be >= 0, got {seconds!r}")
        target = self._now + seconds
        while True:
            await _settle()
            self._drop_cancelled()
            if not self._sleepers or self._sleepers[0][0] > target:
                break
            due = self._sleepers[0][0]
            self._now = max(self._now, due)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                heapq.heappop(self._sleepers)[2].set()
        self._now = target
        await _settle()

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].is_set():
            heapq.heappop(self._sleepers)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r}, sleepers={len(self._sleepers)})"


async def _settle(rounds: int = 20) -> None:
    """Let the tasks that are ready run (a few event-loop turns)."""
    for _ in range(rounds):
        await anyio.lowlevel.checkpoint()
