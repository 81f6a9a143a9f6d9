"""The one source of time: monotonic for scheduling, injectable for tests."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

__all__ = ["Clock", "MonotonicClock", "wait_with_timeout"]


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


async def wait_with_timeout(
    clock: Clock, wait: Callable[[], Awaitable[None]], timeout: float | None
) -> None:
    """Await ``wait()``, giving up quietly after ``timeout`` seconds of ``clock``'s time."""
    if timeout is None or math.isinf(timeout):
        await wait()
    elif isinstance(clock, MonotonicClock):
        # The event loop's own clock: anyio's deadline is exact and costs no task.
        with anyio.move_on_after(timeout):
            await wait()
    else:
        async with anyio.create_task_group() as tg:

            async def expire() -> None:
                await clock.sleep(timeout)
                tg.cancel_scope.cancel()

            tg.start_soon(expire)
            await wait()
            tg.cancel_scope.cancel()
