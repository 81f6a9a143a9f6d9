"""Model-based test of the adaptive rate limiter on a fake clock.

Any interleaving of waiting, acquiring, successes and throttles must keep the
limiter's promises:

* the rate stays within ``[min_rate, max_rate]`` (``None`` only while nothing limits);
* over any window of ``t`` seconds at most ``max_rate * t + burst`` requests start;
* between two cuts the adaptive rate only grows, and the requests started in that
  stretch never exceed what the rate allowed plus one bucket;
* a throttle cuts the rate exactly when it reports a request sent at or after the
  last cut: at most once per congestion event, however many in-flight answers follow.
"""

from __future__ import annotations

import asyncio

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from asyncoptjob import AdaptiveRateLimiter
from asyncoptjob._ratelimit import MIN_BURST
from asyncoptjob.mock._limits import TokenBucket
from asyncoptjob.testing import ManualClock

EPS = 1e-6


class LimiterMachine(RuleBasedStateMachine):
    @initialize(
        max_rate=st.one_of(st.none(), st.floats(1, 200)),
        burst=st.one_of(st.none(), st.floats(1, 10)),
        min_rate=st.floats(0.1, 5),
    )
    def start(self, max_rate: float | None, burst: float | None, min_rate: float) -> None:
        self.runner = asyncio.Runner()
        self.clock = ManualClock(1000.0, autojump=True)
        self.max_rate = max_rate
        self.burst = burst
        self.min_rate = min(min_rate, max_rate) if max_rate is not None else min_rate
        self.limiter = AdaptiveRateLimiter(
            max_rate=max_rate, burst=burst, min_rate=min_rate, clock=self.clock
        )
        # (time granted, cut epoch, rate then) of every request let through.
        self.grants: list[tuple[float, int, float | None]] = []
        self.last_cut = float("-inf")
        self.cuts = 0
        self.throttles = 0

    def teardown(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()

    def capacity(self, rate: float | None) -> float:
        if self.burst is not None:
            return self.burst
        return max(MIN_BURST, (rate or 0.0) * 0.05)

    @rule(seconds=st.floats(0, 3))
    def wait(self, seconds: float) -> None:
        self.clock.jump(seconds)

    @rule(n=st.integers(1, 8))
    def acquire(self, n: int) -> None:
        for _ in range(n):
            self.runner.run(self.limiter.acquire())
            self.grants.append((self.clock.now(), self.cuts, self.limiter.rate))
            self.check_windows_ending_at(len(self.grants) - 1)

    def check_windows_ending_at(self, j: int) -> None:
        """Every window of grants that ends with grant ``j`` respects both limits."""
        tj, epoch_j, rate_j = self.grants[j]
        for i in range(j + 1):
            ti, epoch_i, rate_i = self.grants[i]
            count = j - i + 1
            if self.max_rate is not None:
                bound = self.max_rate * (tj - ti) + self.capacity(self.max_rate)
                assert count <= bound + EPS, ("max_rate", count, ti, tj)
            # Within one cut epoch the rate never falls (CUBIC grows back, max_rate caps
            # it), so the rate at the window's end bounds every refill inside it.
            if rate_j is not None and rate_i is not None and epoch_i == epoch_j:
                assert rate_i <= rate_j + EPS, ("rate fell between cuts", rate_i, rate_j)
                bound = rate_j * (tj - ti) + self.capacity(rate_j)
                assert count <= bound + EPS, ("adaptive", count, ti, tj, rate_j)

    @rule()
    def success(self) -> None:
        self.limiter.on_success()

    @rule(age=st.one_of(st.none(), st.floats(0, 3)))
    def throttle(self, age: float | None) -> None:
        now = self.clock.now()
        sent_at = None if age is None else now - age
        before = self.limiter.statistics().cuts
        self.limiter.on_throttle(sent_at)
        self.throttles += 1
        expect_cut = sent_at is None or sent_at >= self.last_cut
        after = self.limiter.statistics().cuts
        assert after == before + int(expect_cut), (sent_at, self.last_cut, before, after)
        if expect_cut:
            self.last_cut = now
            self.cuts += 1

    @rule(k=st.integers(2, 20))
    def congestion_event(self, k: int) -> None:
        """One throttle, then ``k`` late answers to requests sent before it: one cut."""
        now = self.clock.now()
        before = self.limiter.statistics().cuts
        self.limiter.on_throttle(now)
        self.clock.jump(0.001)
        for i in range(k):
            self.limiter.on_throttle(now - 0.0001 * (i + 1))
        assert self.limiter.statistics().cuts == before + 1
        self.throttles += k + 1
        self.last_cut = now
        self.cuts += 1

    @invariant()
    def rate_within_bounds(self) -> None:
        rate = self.limiter.rate
        if self.max_rate is None and self.cuts == 0:
            assert rate is None  # nothing limits before the first throttle
            return
        assert rate is not None
        assert rate >= self.min_rate - EPS
        if self.max_rate is not None:
            assert rate <= self.max_rate + EPS

    @invariant()
    def counters_agree(self) -> None:
        stats = self.limiter.statistics()
        assert stats.cuts == self.cuts
        assert stats.throttles == self.throttles
        assert stats.acquired == len(self.grants)


TestLimiterModel = LimiterMachine.TestCase
TestLimiterModel.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)


async def test_the_rate_settles_near_an_account_limit_first_hit_at_start_up() -> None:
    """Against an account limit the limiter converges to it, not to a fraction of it."""
    clock = ManualClock(0.0, autojump=True)
    limiter = AdaptiveRateLimiter(max_rate=150, clock=clock)
    account = TokenBucket(rate=120, burst=12, clock=clock.now)
    accepted: list[float] = []
    while clock.now() < 10:
        await limiter.acquire()
        if account.try_acquire(clock.now()):
            limiter.on_success()
            accepted.append(clock.now())
        else:
            limiter.on_throttle(clock.now())
        clock.jump(1 / 300)  # callers offer 300 requests/s
    settled = [t for t in accepted if t >= 5]
    assert len(settled) >= 0.8 * 120 * 5, len(settled)
