"""The adaptive limiter's cold start against an account limit, on a fake clock.

A cold limiter (``initial_rate``, no ``max_rate``) ramps up until the first throttle,
guesses the limit under it, climbs to the next throttle, and takes the rate the service
accepted between the two as the limit. These tests drive it against the mock's own
token bucket with answers a round trip late, as a busy poller would.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import pytest

from asyncoptjob import AdaptiveRateLimiter
from asyncoptjob._ratelimit import CONFIRMED_PROBE, PROBE, SLOW_START_EXIT, climb_deficit
from asyncoptjob.mock._limits import TokenBucket
from asyncoptjob.testing import ManualClock

#: Seconds from a request to its answer.
RTT = 0.02


class Account:
    """An account limit (the mock's token bucket) answering a limiter's requests.

    Callers are never what holds requests back: one is sent as soon as the limiter lets
    it, and its answer reaches the limiter a round trip later.
    """

    def __init__(
        self, limiter: AdaptiveRateLimiter, clock: ManualClock, *, rate: float, burst: float
    ):
        self.limiter = limiter
        self.clock = clock
        self.bucket = TokenBucket(rate=rate, burst=burst, clock=clock.now)
        self.calls: list[tuple[float, bool]] = []
        self._answers: list[tuple[float, int, float, bool]] = []  # (due, seq, sent_at, ok)

    @property
    def throttled(self) -> int:
        return sum(1 for _, ok in self.calls if not ok)

    async def run(self, seconds: float, *, until: Callable[[], bool] = lambda: False) -> None:
        """Send for ``seconds`` of the fake clock, or until ``until()``."""
        end = self.clock.now() + seconds
        while self.clock.now() < end and not until():
            while self._answers and self._answers[0][0] <= self.clock.now():
                _, _, sent_at, ok = heapq.heappop(self._answers)
                if ok:
                    self.limiter.on_success(sent_at)
                else:
                    self.limiter.on_throttle(sent_at)
            await self.limiter.acquire()
            now = self.clock.now()
            ok = self.bucket.try_acquire(now)
            self.calls.append((now, ok))
            heapq.heappush(self._answers, (now + RTT, len(self.calls), now, ok))
            self.clock.jump(0.0005)


def cold(rate: float, burst: float | None = None) -> tuple[AdaptiveRateLimiter, Account]:
    clock = ManualClock(0.0, autojump=True)
    limiter = AdaptiveRateLimiter(initial_rate=5, clock=clock)
    return limiter, Account(limiter, clock, rate=rate, burst=rate if burst is None else burst)


@pytest.mark.parametrize("limit", [20.0, 50.0, 200.0])
async def test_a_cold_start_learns_the_limit_with_few_throttles(limit: float) -> None:
    limiter, account = cold(limit)
    await account.run(20)
    learned = limiter.snapshot()
    assert learned is not None
    # The limit measured between two throttles, a request under it at most.
    assert limit * 0.9 <= learned <= limit * 1.01, learned
    # A ramp's end (the requests in flight when the account's bucket ran dry: up to four
    # here, where answers are read only between sends), a measuring throttle, maybe one
    # probe: not a burst of throttles. At 20/s for 20 s that floor is above 1 % of the
    # calls; S2 reports the share against the mock.
    assert account.throttled <= max(6, 0.01 * len(account.calls)), account.throttled
    # And the limit used.
    assert len(account.calls) - account.throttled >= 0.95 * limit * 20


async def test_the_ramp_s_end_guesses_under_it_and_the_climb_measures() -> None:
    limiter, account = cold(20)
    rates: list[float] = []

    def cut() -> bool:
        rates.append(limiter.rate or 0.0)
        return limiter.statistics().cuts > 0

    await account.run(10, until=cut)
    # The ramp's first throttle: a guess at a fraction of the ramp's rate, still a slow
    # start (no limit learned yet).
    assert limiter.rate == pytest.approx(rates[-2] * SLOW_START_EXIT, rel=0.2)
    assert limiter.snapshot() is None
    await account.run(10, until=lambda: limiter.statistics().cuts > 1)
    learned = limiter.snapshot()
    assert learned is not None
    assert 18 <= learned <= 20.2


async def test_successes_sent_before_a_cut_do_not_count_towards_the_next_measure() -> None:
    async def measured(late_answers: int) -> float:
        clock = ManualClock(0.0, autojump=True)
        limiter = AdaptiveRateLimiter(clock=clock)
        for _ in range(100):
            limiter.on_success(clock.now())
            clock.jump(0.01)
        before_cut = clock.now() - 0.005
        limiter.on_throttle(clock.now())  # the first throttle: a guess (no slow start)
        for _ in range(late_answers):  # in flight at the cut, answered after it
            limiter.on_success(before_cut)
        for _ in range(60):  # sent as fast as the cut rate allows, all accepted
            await limiter.acquire()
            limiter.on_success(clock.now())
        limiter.on_throttle(clock.now())
        learned = limiter.snapshot()
        assert learned is not None
        return learned

    alone = await measured(0)
    # What the cut rate let through (CUBIC from 0.7 x 100/s, back towards 100/s).
    assert 70 <= alone <= 90, alone
    assert await measured(30) == alone


def test_a_climb_s_deficit_says_when_its_measure_can_be_trusted() -> None:
    assert climb_deficit(20, 20) == 0
    assert climb_deficit(25, 20) == 0  # started above: nothing was left unused
    near, far = climb_deficit(15, 20), climb_deficit(5, 20)
    assert 0 < near < far


async def test_an_untrusted_measure_is_probed_sooner_than_a_trusted_one() -> None:
    async def probe_after_climb(burst: float) -> float:
        """How far above the measured limit the rate has grown once the curve probes."""
        limiter, account = cold(50, burst)
        await account.run(10, until=lambda: limiter.statistics().cuts > 1)
        learned = limiter.snapshot()
        assert learned is not None
        account.clock.jump(20)  # nothing sent meanwhile: far past the plateau
        assert limiter.rate is not None
        return limiter.rate - learned

    # A bucket as deep as a second of the limit: the climb lost nothing, its measure is
    # trusted. A bucket of a fifth of a second overflowed while the climb was under the
    # limit: the measure may be low, and is probed sooner. Past the plateau the curve
    # grows at the probe's fraction of C, so the growth says which probe each one took
    # (the two plateaus differ a little, so their K do: hence the tolerance).
    trusted, untrusted = await probe_after_climb(50), await probe_after_climb(10)
    assert trusted > 0
    assert untrusted / trusted == pytest.approx(PROBE / CONFIRMED_PROBE, rel=0.1)


async def test_a_slow_start_at_a_high_rate_lets_a_batch_of_workers_through_at_once() -> None:
    clock = ManualClock(0.0, autojump=True)
    limiter = AdaptiveRateLimiter(initial_rate=2000, clock=clock)
    for _ in range(16):
        await limiter.acquire()
    # 10 ms worth of 2000/s: 20 tokens, no worker waited on the clock (time never moved).
    assert clock.now() == 0.0
    slow = AdaptiveRateLimiter(initial_rate=5, clock=ManualClock(0.0, autojump=True))
    await slow.acquire()
    await slow.acquire()  # at 5/s the slow start paces one request at a time
    assert slow.statistics().acquired == 2


async def test_a_restored_rate_ends_the_slow_start() -> None:
    clock = ManualClock(0.0, autojump=True)
    limiter = AdaptiveRateLimiter(initial_rate=5, clock=clock)
    limiter.restore(40)
    clock.jump(10)
    assert limiter.rate == pytest.approx(40, rel=0.05)
    for _ in range(40):
        clock.jump(0.025)
        limiter.on_success(clock.now())
    limiter.on_throttle(clock.now())
    # A congestion event on the learned rate (CUBIC), not the end of a ramp.
    learned = limiter.snapshot()
    assert learned is not None
    assert learned == pytest.approx(40, rel=0.1)
