"""``AdaptiveRateLimiter``: the token bucket, the meters and the phases, assembled.

The limiter owns the clock and the waiting: it reads the time once per call, hands it to
its parts, and turns what they say into an ``await``. What the rate is comes from the
phase (``_phases``), how requests are spaced from the bucket (``_bucket``), and what the
service accepted from the meters (``_meter``).
"""

from __future__ import annotations

import anyio

from .._clock import Clock, MonotonicClock, wait_with_timeout
from .._validate import check_fraction, check_positive
from ._bucket import TokenBucket
from ._cubic import BETA, SCALE
from ._meter import RateMeter, RoundTrip, SinceCut
from ._phases import MIN_RATE, Cubic, Phase, Ramp, Shape, Throttle, Unlimited
from ._protocol import RateLimiterStatistics

__all__ = ["AdaptiveRateLimiter"]

# Longest sleep between two looks at the bucket while waiting for a token (seconds).
_RECHECK = 0.1


class AdaptiveRateLimiter:
    """A token bucket with an optional hard ``max_rate`` and a CUBIC adaptive rate.

    Example::

        limiter = AdaptiveRateLimiter(max_rate=10)
        await limiter.acquire()          # waits for a token
        ...                              # send the request
        limiter.on_success()             # or limiter.on_throttle(sent_at)

    Args:
        max_rate: hard ceiling in requests/s (``None``: adaptive only).
        burst: bucket capacity in requests; default: 50 ms worth of the rate, at least
            ``MIN_BURST`` (2: a waiter whose timer fires late keeps the token it waited
            for, so pacing at ``max_rate`` reaches ``max_rate``).
        min_rate: the rate never drops below this (requests/s).
        initial_rate: without ``max_rate``, the rate of the first requests (requests/s);
            it doubles every ``SLOW_START_ROUNDS`` round trips of accepted requests (at
            most every ``SLOW_START_DOUBLING`` seconds) until the first throttle, then
            climbs from a guess under that to a second throttle, which measures the
            limit (see ``_ratelimit``'s docstring). ``None`` (the default here; a
            ``Poller`` passes its ``initial_rate`` option, 5/s): no limit until the first
            throttle (botocore).
        beta: multiplicative cut on a throttle (0 < beta < 1).
        scale: CUBIC's C constant: how fast the rate grows back.
        clock: time source (tests pass a fake).
    """

    def __init__(
        self,
        *,
        max_rate: float | None = None,
        burst: float | None = None,
        min_rate: float = MIN_RATE,
        initial_rate: float | None = None,
        beta: float = BETA,
        scale: float = SCALE,
        clock: Clock | None = None,
    ) -> None:
        check_positive("max_rate", max_rate, allow_none=True)
        check_positive("initial_rate", initial_rate, allow_none=True)
        check_positive("burst", burst, allow_none=True)
        check_positive("min_rate", min_rate)
        check_fraction("beta", beta, low=0.05, high=0.99)
        check_positive("scale", scale)
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        if max_rate is not None and min_rate > max_rate:
            min_rate = max_rate
        self._clock: Clock = clock or MonotonicClock()
        self._max_rate = float(max_rate) if max_rate is not None else None
        self._burst = burst
        self._shape = Shape(min_rate=float(min_rate), beta=float(beta), scale=float(scale))
        self._lock = anyio.Lock()
        # Callers asleep in the lock until a token comes: newcomers queue behind them.
        self._sleeping = 0
        # Set when an answer grows the rate while a caller sleeps: it looks again at once
        # instead of sleeping out a wait computed at the old rate. Made on first use.
        self._grown: anyio.Event | None = None
        now = self._clock.now()
        # An explicit max_rate is trusted from the first request: no slow start.
        self._phase: Phase = (
            Ramp(self._shape, float(initial_rate), now)
            if max_rate is None and initial_rate is not None
            else Unlimited(self._shape)
        )
        # Starts full so the first requests go out at once.
        self._bucket = TokenBucket(self._capacity(self._rate(now)), now)
        self._meter = RateMeter(now)
        self._since_cut = SinceCut()
        self._round_trip = RoundTrip()
        self._throttles = 0
        self._cuts = 0
        self._acquired = 0

    # -- public -------------------------------------------------------------------------

    @property
    def rate(self) -> float | None:
        """Requests/s allowed right now (``None`` while nothing limits)."""
        return self._rate(self._clock.now())

    @property
    def max_rate(self) -> float | None:
        """The hard ceiling, if one was given."""
        return self._max_rate

    def statistics(self) -> RateLimiterStatistics:
        """A snapshot of the limiter's state."""
        now = self._clock.now()
        return RateLimiterStatistics(
            rate=self._rate(now),
            max_rate=self._max_rate,
            measured_rate=self._meter.rate(now),
            throttles=self._throttles,
            cuts=self._cuts,
            acquired=self._acquired,
        )

    async def acquire(self) -> None:
        """Wait until one request may be sent. Waiters are served first come, first served."""
        now = self._clock.now()
        if self._rate(now) is None:
            self._let_through()
            return
        if not self._sleeping:
            # Nobody waits for a token: take one without the lock and its checkpoint (the
            # poll loop's common case under a limit that is not reached). Callers queued
            # on the lock while tokens are there do not count: going through the lock
            # would keep it held, and every later caller behind it, one per loop turn.
            if self._try_take(now) <= 0:
                self._let_through()
                return
            self._phase.held_back(now)
        async with self._lock:
            while True:
                now = self._clock.now()
                wait = self._try_take(now)
                if wait <= 0:
                    self._let_through()
                    return
                self._phase.held_back(now)
                # Sleep in short slices and re-check: the rate may have been cut, or (right
                # after a cut, at the bottom of the cubic curve) grown, meanwhile. A wait
                # computed at the lowest rate would otherwise hold every waiter behind it
                # for up to 1 / min_rate seconds while the allowed rate climbs.
                # An answer that grows the rate (the slow start's first ones, which know
                # the round trip) ends the sleep early: a wait computed at the starting
                # 5/s would otherwise keep a fast endpoint idle for _RECHECK seconds.
                if self._grown is None:
                    self._grown = anyio.Event()
                self._sleeping += 1
                try:
                    await wait_with_timeout(self._clock, self._grown.wait, min(wait, _RECHECK))
                finally:
                    self._sleeping -= 1

    def on_success(self, sent_at: float | None = None) -> None:
        """Report a request the service accepted.

        Args:
            sent_at: when the request was sent (the limiter's clock). An answer to a
                request sent before the latest cut was accepted before that congestion
                event and does not count towards the rate measured since.
        """
        now = self._clock.now()
        self._meter.accepted(now)
        self._since_cut.accepted(sent_at)
        round_trip = self._round_trip.sample(sent_at, now)
        if self._phase.grows(now, round_trip):
            # Tokens accrued so far were earned at the rate before this answer.
            self._refill(now)
            window = self._phase.grow(round_trip)
            if window > self._bucket.tokens:
                self._bucket.tokens = min(window, self._capacity(self._rate(now)))
            grown = self._grown
            if grown is not None and self._sleeping:
                self._grown = None
                grown.set()

    def on_throttle(self, sent_at: float | None = None) -> None:
        """Report a throttled request.

        Args:
            sent_at: when the request was sent (the limiter's clock). Throttles of
                requests sent before the latest cut belong to a congestion event
                already answered and do not cut again.
        """
        now = self._clock.now()
        self._throttles += 1
        if self._since_cut.stale(sent_at):
            return
        self._meter.tick(now)
        self._refill(now)
        sent = now if sent_at is None else sent_at
        since_cut = self._since_cut
        rate = self._rate(now)
        self._phase = self._phase.throttled(
            Throttle(
                now=now,
                since_cut=sent - since_cut.last_cut,
                accepted=since_cut.rate(sent),
                successes=since_cut.successes,
                rate=rate,
                guess=self._meter.guess(now, rate),
            )
        )
        since_cut.cut(now)
        self._cuts += 1
        # The service just said its bucket is empty: so is ours. A token saved up before
        # the cut would send one more request straight into the throttle.
        self._bucket.tokens = 0.0

    # -- remembered across restarts (state=) ----------------------------------------------

    def snapshot(self) -> float | None:
        """The learned rate (requests/s the service accepted at the last throttle), if any."""
        return self._phase.learned

    def restore(self, rate: float) -> None:
        """Start from a rate learned by an earlier run instead of probing for it again.

        The limiter resumes at the plateau of the CUBIC curve at ``rate`` (flat, probing
        above it only slowly), as if it had adapted to ``rate`` just now.
        """
        check_positive("rate", rate)
        now = self._clock.now()
        phase = Cubic.restored(self._shape, float(rate), now)
        self._phase = phase
        self._since_cut.cut(phase.cut_at)
        self._bucket.fill(now, self._capacity(self._rate(now)))

    # -- internals ----------------------------------------------------------------------

    def _rate(self, now: float) -> float | None:
        rate = self._phase.rate(now)
        if self._max_rate is not None:
            rate = self._max_rate if rate is None else min(rate, self._max_rate)
        return rate

    def _capacity(self, rate: float | None) -> float:
        if self._burst is not None:
            return self._burst
        return self._phase.capacity(rate)

    def _refill(self, now: float) -> None:
        rate = self._rate(now) or 0.0
        self._since_cut.offered += self._bucket.refill(now, rate, self._capacity(rate))

    def _try_take(self, now: float) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        self._refill(now)
        if self._bucket.take():
            return 0.0
        return self._bucket.wait(self._rate(now) or self._shape.min_rate)

    def _let_through(self) -> None:
        self._acquired += 1
        self._meter.sent()

    def __repr__(self) -> str:
        rate = self.rate
        shown = "unlimited" if rate is None else f"{rate:.3g}/s"
        return f"<AdaptiveRateLimiter rate={shown} max_rate={self._max_rate}>"
