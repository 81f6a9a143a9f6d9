"""Short turns on the caller's loop: the library's work on it comes in bursts of a few ms.

Each describe costs the loop about a millisecond of botocore's work (build and sign the
request, parse the answer, apply it). With 16 answers arriving together, the workers
would run one after another in the same turn of the loop, and every other task of the
host (a web request, a timer) would wait for all 16. A :class:`Breather` lets the
library's steps run back to back for :data:`BURST` seconds at most; the next step then
waits for the loop to take a breath: a timer due at once, which the loop runs after the
timers already overdue (the host's), and after the I/O callbacks of its next turn.
Nothing is slower when the loop is idle: the wait is one turn of the loop. Every step
of the library on a loop takes its turn from that loop's one :func:`loop_breather` (the
describes, the List pages, the watches' events): separate bursts of each would add up
in the same turn of the loop.

A large batch of the library's own work (attaching 100,000 jobs, checking their names,
walking the job table) goes through :func:`in_slices`: a slice at a time, the loop
running between two slices.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import anyio.lowlevel

__all__ = ["BURST", "Breather", "dropped", "in_slices", "loop_breather", "take_turn"]

T = TypeVar("T")

#: Seconds of back-to-back work on the loop after which the library's next step waits for
#: the loop to run what else is due (the default of a Poller's ``loop_burst``).
BURST = 0.003


class Breather:
    """Where the library's steps on one event loop take turns with the host's work.

    A breath lets one step go, and those after it until the burst is spent: the steps
    that waited for it re-check when each resumes, so a breath with 16 steps waiting
    does not let all 16 run in the loop's next turn.
    """

    __slots__ = ("_breath", "_burst", "_holds", "_since")

    def __init__(self) -> None:
        #: When the current burst started; None after a breath, until a step starts the
        #: next one.
        self._since: float | None = 0.0
        self._breath: asyncio.Future[None] | None = None
        #: The open Pollers' ``loop_burst`` (math.inf: no breaths), and the least of them
        #: (None while no Poller is open: :data:`BURST`).
        self._holds: list[float] = []
        self._burst: float | None = None

    def hold(self, burst: float | None) -> Callable[[], None]:
        """Count an open Poller's ``loop_burst`` (None: no breaths) until the function
        returned is called: the loop's bursts last the least of the open Pollers'."""
        held = math.inf if burst is None else burst
        self._holds.append(held)
        self._burst = min(self._holds)

        def release() -> None:
            self._holds.remove(held)
            self._burst = min(self._holds, default=None)

        return release

    async def turn(self) -> None:
        """Go on now if the current burst is younger than the loop's burst (the least
        ``loop_burst`` of its open Pollers, else :data:`BURST`), or the loop has just
        taken a breath (this step starts the next burst); else wait for a breath, and
        check again."""
        while not self._goes():
            breath = self._breath
            if breath is None:
                loop = asyncio.get_running_loop()
                breath = self._breath = loop.create_future()
                loop.call_at(loop.time(), self._breathe)
            # Shielded: one waiter cancelled must not cancel the breath the others wait for.
            # (A future per waiter, woken straight from the breath, costs less than a
            # shield per wait: a cold run of 3,000 describes was 5-10 % faster. But the
            # waiters then resumed a turn of the loop sooner, ahead of the answers and
            # events just in: a watch's events piled up, and a first round of 100,000
            # describes set off 15 full collections instead of none. Measured; not kept.
            # Nor a line of such futures a breath wakes only as many of as went in the last
            # burst, one turn later as here: 4 % faster from cold, 5 or 6 full collections
            # in that first round.)
            await asyncio.shield(breath)

    def _goes(self) -> bool:
        now = time.perf_counter()
        if self._since is None:
            self._since = now  # the first step after a breath starts the next burst
            return True
        return now - self._since <= (BURST if self._burst is None else self._burst)

    def _breathe(self) -> None:
        breath, self._breath = self._breath, None
        self._since = None
        if breath is not None and not breath.done():
            breath.set_result(None)


_BREATHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Breather] = (
    weakref.WeakKeyDictionary()
)


def loop_breather() -> Breather:
    """The running loop's :class:`Breather`, which every step of the library on it uses."""
    loop = asyncio.get_running_loop()
    breather = _BREATHERS.get(loop)
    if breather is None:
        breather = _BREATHERS[loop] = Breather()
    return breather


async def take_turn(**_: Any) -> None:
    """Wait for the running loop's turn (:meth:`Breather.turn`); also a botocore event
    handler (aiobotocore awaits it)."""
    await loop_breather().turn()


async def in_slices(items: Sequence[T], size: int, *, start: int = 0) -> AsyncIterator[Sequence[T]]:
    """``items`` from ``start`` on, ``size`` at a time, with a checkpoint (the loop runs)
    between two slices."""
    for offset in range(start, len(items), size):
        if offset > start:
            await anyio.lowlevel.checkpoint()
        yield items[offset : offset + size]


async def dropped(items: list[Any], size: int) -> None:
    """Empty ``items``, ``size`` at a time from the end, with a checkpoint between two
    slices: freeing 100,000 objects at once holds the loop for several ms."""
    while items:
        del items[-size:]
        if items:
            await anyio.lowlevel.checkpoint()
