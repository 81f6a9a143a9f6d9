"""The fleet's rate budget: one token bucket and one CUBIC state in Redis for every process.

The rate itself is computed inside Redis (``TAKE`` and ``CUT`` in ``_scripts.py``) by the
Lua twin of ``_ratelimit.cubic_rate``, so every process reads one rate at one server
time; this module only carries the constants there and computes no rate of its own.
While Redis is away, a local ``AdaptiveRateLimiter`` (the Python function) takes over.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import anyio

from .._clock import Clock
from .._ratelimit import (
    BETA,
    MIN_RATE,
    SCALE,
    SLOW_START_DOUBLING,
    AdaptiveRateLimiter,
    RateLimiterStatistics,
)
from .._validate import check_positive

if TYPE_CHECKING:
    from ._link import FleetLink

__all__ = ["FleetRateLimiter"]

#: A reserved token not used within this long after it became usable is dropped, so no
#: process sits on budget (the batch is sized to the workers waiting, so this is rare).
TOKEN_LIFE = 0.05
#: While nothing limits (no max_rate, no slow start, no throttle yet) a process asks
#: again this often, so a throttle seen anywhere reaches every process within this time.
UNLIMITED_RECHECK = 0.2
#: A batch reserves tokens usable at most this far ahead.
RESERVE_HORIZON = 0.25
BUDGET_TTL_MS = 3_600_000
#: The fleet's slow start ends at its first throttle with CUBIC's maximum at this
#: fraction of the ramp's rate. (A single process's limiter guesses lower and then
#: measures the limit with a second throttle; the shared Lua budget does not measure.)
FLEET_SLOW_START_EXIT = 0.25
#: The share of ``max_rate`` a process takes when Redis is away and it never saw the
#: fleet (so it cannot know how many others share the budget).
UNKNOWN_FLEET_SHARE = 0.25


class FleetRateLimiter:
    """The ``AdaptiveRateLimiter`` interface over the fleet's shared bucket in Redis.

    ``max_rate`` is the budget of the whole fleet. Tokens are taken in small batches
    (one per worker waiting, at most ``batch``) to keep round trips per describe low.
    A throttle seen by any process cuts the shared CUBIC rate (``CUT``), so everyone
    slows down. Without ``max_rate``, a cold fleet starts at ``initial_rate`` and grows
    with the successes every process reports, the slow start of
    :class:`AdaptiveRateLimiter` with one state for the fleet (``initial_rate=None``:
    nothing limits until the first throttle). While Redis is unreachable, a local
    limiter with this process's share of the budget (``max_rate / live processes``)
    takes over.
    """

    def __init__(
        self,
        link: FleetLink,
        *,
        max_rate: float | None,
        clock: Clock,
        initial_rate: float | None = None,
        burst: float | None = None,
        min_rate: float = MIN_RATE,
        beta: float = BETA,
        scale: float = SCALE,
        batch: int = 8,
        key: str | None = None,
    ) -> None:
        check_positive("initial_rate", initial_rate, allow_none=True)
        self._link = link
        self._key = key or link.keys.budget
        self._clock = clock
        self._max_rate = max_rate
        # A slow start only where AdaptiveRateLimiter has one: no max_rate (it is trusted).
        self._initial_rate = initial_rate if max_rate is None else None
        self._burst = burst
        self._min_rate = min_rate if max_rate is None else min(min_rate, max_rate)
        self._beta = beta
        self._scale = scale
        self._batch = batch
        self._local = AdaptiveRateLimiter(max_rate=max_rate, clock=clock)
        self._lock = anyio.Lock()
        self._waiting = 0
        # Usable-from times (local clock) of the tokens this process has reserved.
        self._slots: deque[float] = deque()
        self._unlimited_until = -math.inf
        self._rate: float | None = max_rate
        self._offset = 0.0
        self._successes = 0
        self._cut_pending: float | None = None
        self._throttles = 0
        self._cuts = 0
        self._acquired = 0
        self.round_trips = 0
        link.listen(self.go_local)

    # -- the limiter interface ----------------------------------------------------------

    @property
    def rate(self) -> float | None:
        """Requests/s the fleet allows now (``None`` while nothing limits)."""
        return self._rate if self._link.connected else self._local.rate

    @property
    def max_rate(self) -> float | None:
        """The fleet's hard ceiling, if one was given."""
        return self._max_rate

    def statistics(self) -> RateLimiterStatistics:
        """A snapshot: the fleet's rate, this process's counters."""
        local = self._local.statistics()
        return RateLimiterStatistics(
            rate=self.rate,
            max_rate=self._max_rate,
            measured_rate=local.measured_rate,
            throttles=self._throttles,
            cuts=self._cuts + local.cuts,
            acquired=self._acquired,
        )

    async def acquire(self) -> None:
        """Wait until the fleet's budget lets one more request go."""
        self._acquired += 1
        clock = self._clock
        if self._link.connected and clock.now() < self._unlimited_until:
            return
        self._waiting += 1
        try:
            # One refiller at a time, first come first served; it sleeps holding the lock.
            async with self._lock:
                while self._link.connected:
                    now = clock.now()
                    if now < self._unlimited_until:
                        return
                    slots = self._slots
                    while slots and slots[0] + TOKEN_LIFE < now:
                        slots.popleft()
                    if slots:
                        usable = slots.popleft()
                        if usable > now:
                            await clock.sleep(usable - now)
                        return
                    try:
                        await self._take(min(self._batch, self._waiting))
                    except self._link.errors as exc:
                        self._link.lost(exc)
                        break
        finally:
            self._waiting -= 1
        await self._local.acquire()

    def on_success(self, sent_at: float | None = None) -> None:
        """Report an accepted request (counted into the fleet's rate on the next refill)."""
        self._successes += 1
        self._local.on_success(sent_at)

    def on_throttle(self, sent_at: float | None = None) -> None:
        """Report a throttle: the fleet's rate is cut before the next tokens are taken."""
        self._throttles += 1
        if not self._link.connected:
            self._local.on_throttle(sent_at)
            return
        sent = self._clock.now() if sent_at is None else sent_at
        self._cut_pending = sent if self._cut_pending is None else max(self._cut_pending, sent)
        # Drop what is reserved so the next request goes through the (cut) shared bucket.
        self._slots.clear()
        self._unlimited_until = -math.inf

    # -- modes --------------------------------------------------------------------------

    def go_local(self, members: int | None) -> None:
        """Redis is gone: keep to this process's share of the budget.

        Args:
            members: the live processes at the last heartbeat; None if this process
                never reached the fleet (it takes ``UNKNOWN_FLEET_SHARE`` then).
        """
        if self._max_rate is None:
            share = None
        elif members is None:
            share = self._max_rate * UNKNOWN_FLEET_SHARE
        else:
            share = self._max_rate / max(1, members)
        self._local = AdaptiveRateLimiter(max_rate=share, clock=self._clock)
        self._slots.clear()
        self._unlimited_until = -math.inf
        self._cut_pending = None

    # -- internals ----------------------------------------------------------------------

    async def _take(self, want: int) -> None:
        link = self._link
        args = (
            -1 if self._max_rate is None else self._max_rate,
            -1 if self._burst is None else self._burst,
        )
        initial = -1 if self._initial_rate is None else self._initial_rate
        if self._cut_pending is not None:
            sent, self._cut_pending = self._cut_pending, None
            cut = await link.store.cut(
                keys=[self._key],
                args=[
                    repr(sent + self._offset),
                    *args,
                    self._min_rate,
                    self._beta,
                    self._scale,
                    BUDGET_TTL_MS,
                    initial,
                    FLEET_SLOW_START_EXIT,
                ],
            )
            self.round_trips += 1
            if int(cut):
                self._cuts += 1
                link.log.info("fleet_rate_cut", sent_at=round(sent, 3))
        ok, self._successes = self._successes, 0
        reply = await link.store.take(
            keys=[self._key],
            args=[
                *args,
                want,
                self._min_rate,
                self._scale,
                ok,
                BUDGET_TTL_MS,
                RESERVE_HORIZON,
                initial,
                SLOW_START_DOUBLING,
                self._beta,
            ],
        )
        self.round_trips += 1
        now = self._clock.now()
        granted, before, rate, server_now = (
            int(reply[0]),
            float(reply[1]),
            float(reply[2]),
            float(reply[3]),
        )
        self._offset = server_now - now
        if rate < 0:
            self._rate = None
            self._unlimited_until = now + UNLIMITED_RECHECK
            return
        self._rate = rate
        self._slots.extend(now + max(0.0, (i - before) / rate) for i in range(1, granted + 1))

    def __repr__(self) -> str:
        rate = self.rate
        shown = "unlimited" if rate is None else f"{rate:.3g}/s"
        return f"<FleetRateLimiter rate={shown} max_rate={self._max_rate}>"
