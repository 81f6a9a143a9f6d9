"""The one source of time: monotonic for scheduling, injectable for tests."""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "MonotonicClock"]


class Clock(Protocol):
    """Monotonic time and sleeping; tests pass a fake to run in virtual time."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        ...


class MonotonicClock:
    """``time.monotonic`` with ``anyio.sleep``: the default everywhere.

    It is the clock asyncio's event loop runs on, read directly: the scheduler asks
    for the time on every poll, and ``anyio.current_time()`` costs a backend lookup
    each call.
    """

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "MonotonicClock()"
