"""A clock that only moves when the test says so, or when every task waits on it."""

from __future__ import annotations

import heapq
import itertools
import math

import anyio
import anyio.lowlevel

__all__ = ["ManualClock"]


class ManualClock:
    """Virtual monotonic time for unit tests: sleeping waits until the clock moves past.

    Pass it as ``clock=`` to a :class:`~asyncoptjob.Poller` (or ``watch`` /
    ``wait_until_done``) together with a :class:`FakeTransport`: poll intervals, rate
    budget waits, retry backoffs and timeouts all run on it, so a test of a day-long
    watch takes milliseconds and never depends on the machine's speed (trio's
    ``MockClock``)::

        clock = ManualClock()
        async with Poller(transport=transport, clock=clock, poll_interval=60) as poller:
            async with poller.watch(["job-a"]) as events:
                first = await anext(events)  # described at once
                await clock.advance(60)  # the next poll comes due
                second = await anext(events)

    Time moves in three ways:

    * :meth:`advance` (awaited): forward by some seconds, waking the sleepers due on
      the way one deadline at a time and letting what they wake run before time moves
      on, as it would have in real time;
    * :meth:`jump` (not awaited): forward at once, for synchronous code and for
      setting the scene; the sleepers it wakes run when the caller next awaits;
    * ``autojump=True``: whenever every task is waiting (nothing is ready to run) and
      something sleeps on this clock, time jumps to the earliest wake-up (trio's
      autojump). A test then needs no ``advance`` at all: a retry's backoff, a rate
      wait or a whole job lifecycle on :class:`ScriptedJobs` simply passes.

    With ``autojump``, a task waiting for real I/O (a socket, a thread) counts as
    waiting too, so time may jump past a timeout while it waits: use it with a
    :class:`FakeTransport`, not with a real endpoint.

    Args:
        start: the time the clock starts at (seconds; any value, it is monotonic).
        autojump: jump to the next wake-up whenever every task is waiting.
    """

    __slots__ = ("_now", "_seq", "_sleepers", "_stirred", "autojump")

    def __init__(self, start: float = 0.0, *, autojump: bool = False) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()
        # Set whenever a sleeper leaves (woken or cancelled): with autojump, the next
        # earliest sleeper takes over moving time. Made on first use, inside a loop.
        self._stirred: anyio.Event | None = None
        #: Jump to the earliest wake-up whenever every task is waiting.
        self.autojump = autojump

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has moved ``seconds`` on (at least a checkpoint)."""
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        entry = (self._now + seconds, next(self._seq), anyio.Event())
        heapq.heappush(self._sleepers, entry)
        woken = entry[2]
        try:
            if self.autojump:
                await self._sleep_jumping(entry)
            else:
                await woken.wait()
        finally:
            # Cancelled early (a worker woken by new work): mark the entry as done.
            woken.set()
            self._stir()

    async def _sleep_jumping(self, entry: tuple[float, int, anyio.Event]) -> None:
        """Sleep; whenever this sleeper is the earliest and nothing else runs, jump to it."""
        deadline, _, woken = entry
        while not woken.is_set():
            if self._stirred is None:
                self._stirred = anyio.Event()
            stirred = self._stirred
            await _settle()
            if woken.is_set():
                return
            if stirred.is_set():
                # A sleeper woke or left meanwhile: what it does next runs first.
                continue
            self._drop_cancelled()
            if self._sleepers[0] is entry:
                # Every task that could run has run: nothing can happen before this
                # deadline but what the clock itself wakes.
                self._wake_until(deadline)
            else:
                # An earlier sleeper moves time; look again when one leaves.
                await stirred.wait()

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
        _check_forward(seconds)
        target = self._now + seconds
        while True:
            await _settle()
            self._drop_cancelled()
            if not self._sleepers or self._sleepers[0][0] > target:
                break
            self._wake_until(self._sleepers[0][0])
        self._now = max(self._now, target)
        await _settle()

    def jump(self, seconds: float) -> None:
        """Move time forward by ``seconds`` at once, without waiting.

        Every sleeper due by then is woken together; they run when the caller next
        awaits. For synchronous code that reads :meth:`now` (a rate limiter driven by
        hand, a wall clock for the mock endpoint: pass ``clock.now``), and for setting
        the scene before anything sleeps; :meth:`advance` when the order of wake-ups
        matters.
        """
        _check_forward(seconds)
        self._wake_until(self._now + seconds)

    def _wake_until(self, when: float) -> None:
        """Move time to ``when`` (never back) and wake every sleeper due by then."""
        self._now = max(self._now, when)
        woke = False
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].set()
            woke = True
        if woke:
            # A jumping sleeper may wait for an earlier one instead of its own wake-up.
            self._stir()

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].is_set():
            heapq.heappop(self._sleepers)

    def _stir(self) -> None:
        stirred, self._stirred = self._stirred, None
        if stirred is not None:
            stirred.set()

    def __repr__(self) -> str:
        jumping = ", autojump=True" if self.autojump else ""
        return f"ManualClock(now={self._now!r}, sleepers={len(self._sleepers)}{jumping})"


def _check_forward(seconds: float) -> None:
    if seconds < 0 or math.isnan(seconds):
        raise ValueError(f"a clock only moves forward: seconds must be >= 0, got {seconds!r}")


async def _settle(rounds: int = 20) -> None:
    """Let the tasks that are ready run (a few event-loop turns)."""
    for _ in range(rounds):
        await anyio.lowlevel.checkpoint()
