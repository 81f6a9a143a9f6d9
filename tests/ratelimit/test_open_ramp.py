"""The slow start's first answers let the next request go at once, on a fake clock.

A cold limiter starts at ``initial_rate`` (5/s): a second request waits for a token a
fifth of a second away. The first answer tells the round trip, and the ramp then allows
a window per round trip: the waiting request goes as soon as that answer is reported,
with no time passing on the clock, instead of sleeping out a wait computed at 5/s.
"""

from __future__ import annotations

import anyio
import pytest

from asyncoptjob import AdaptiveRateLimiter
from asyncoptjob._ratelimit import INITIAL_WINDOW
from asyncoptjob.testing import ManualClock

#: A real-time guard for a waiter that should already have its token, not a measurement.
GUARD = 10.0
#: The first request's round trip (seconds of the fake clock).
RTT = 0.04


async def test_a_request_held_back_at_the_starting_rate_goes_when_the_first_answer_comes() -> None:
    clock = ManualClock(0.0)
    limiter = AdaptiveRateLimiter(initial_rate=5.0, clock=clock)
    await limiter.acquire()  # the first request: the bucket starts with one token
    got = anyio.Event()

    async def second() -> None:
        await limiter.acquire()
        got.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await clock.advance(RTT)  # the second request has waited a round trip ...
        assert not got.is_set()  # ... far less than a fifth of a second
        limiter.on_success(0.0)  # the first answer: a round trip of RTT
        with anyio.fail_after(GUARD):
            await got.wait()
        assert clock.now() == RTT  # no time passed on the clock after the answer
        assert limiter.rate == pytest.approx(INITIAL_WINDOW / RTT, rel=0.2)


async def test_an_answer_above_the_window_s_floor_does_not_let_a_request_jump_the_rate() -> None:
    clock = ManualClock(0.0)
    limiter = AdaptiveRateLimiter(initial_rate=5.0, clock=clock)
    await limiter.acquire()
    # An answer a whole second late: one request per second is less than 5/s, so the
    # floor allows nothing more and the rate's pacing stands.
    await clock.advance(1.0)
    await limiter.acquire()  # the token accrued over that second
    limiter.on_success(0.0)
    got = anyio.Event()

    async def third() -> None:
        await limiter.acquire()
        got.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(third)
        await anyio.wait_all_tasks_blocked()
        assert not got.is_set()
        tg.cancel_scope.cancel()
