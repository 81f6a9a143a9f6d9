"""The shared rate budget: a token bucket whose rate adapts to throttling.

One limiter serves every request a Poller sends. It has two parts:

* a **token bucket** (capacity ``burst``) that never lets more than
  ``rate * t + burst`` requests start in any window of ``t`` seconds;
* an **adaptive rate** that follows CUBIC congestion control (RFC 8312, the algorithm
  botocore's ``adaptive`` retry mode uses, C = 0.4, beta = 0.7): on a throttle the rate
  is cut to ``beta`` times the rate the service was actually accepting, then grows back
  along a cubic curve that is flat near the old maximum (so it lingers just under the
  account's limit) and probes beyond it only slowly.

Two refinements over botocore's implementation: it is async-native (waiting is an
``await``, never a blocking sleep or lock), and a throttle only cuts the rate once per
congestion event: answers to requests sent *before* the last cut are ignored, the way
TCP reacts once per window, so a burst of in-flight throttles does not collapse the rate.

**Slow start.** botocore's adaptive mode does not limit at all until the first throttle,
so a cold client sends ``max_concurrency`` requests per round trip into an account whose
limit it does not know, and pays for it in a burst of throttles (and a first cut computed
from a rate the burst inflated). Here, without ``max_rate``, the rate starts at
``initial_rate`` and grows with every accepted request, doubling every
``SLOW_START_DOUBLING`` seconds of successes (TCP's slow start, RFC 5681, in rate form:
growth is paid for by answers, so an endpoint that does not answer is never flooded).
The first throttle ends the slow start and hands over to CUBIC from the rate the service
was accepting. An explicit ``max_rate`` is trusted from the first request (no slow start);
``initial_rate=None`` keeps botocore's behaviour (nothing limits before a throttle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import anyio

from ._clock import Clock, MonotonicClock
from ._validate import check_fraction, check_positive

__all__ = ["DEFAULT_INITIAL_RATE", "AdaptiveRateLimiter", "RateBudget", "RateLimiterStatistics"]

# Longest sleep between two looks at the bucket while waiting for a token (seconds).
_RECHECK = 0.1
#: The default first rate of a cold limiter without ``max_rate`` (requests/s).
DEFAULT_INITIAL_RATE = 5.0
#: Seconds of accepted requests over which the slow-start rate doubles.
SLOW_START_DOUBLING = 0.25
#: The first throttle sets CUBIC's maximum to this fraction of the slow-start rate.
SLOW_START_EXIT = 0.25
#: Probing above the learned maximum starts at this fraction of C; each cut that finds
#: the limit where the last one did (within ``SAME_LIMIT``) halves it, down to
#: ``MIN_PROBE``: a limit found again and again is fixed, and every probe costs throttles.
PROBE = 0.25
MIN_PROBE = 1 / 64
SAME_LIMIT = 0.2


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    """A snapshot of a limiter.

    Attributes:
        rate: requests/s currently allowed (``None``: not limited yet).
        max_rate: the hard ceiling, if one was given.
        measured_rate: successful requests/s over the last measurement window.
        throttles: throttle answers reported.
        cuts: times the rate was cut (at most one per congestion event).
        acquired: requests let through.
    """

    rate: float | None
    max_rate: float | None
    measured_rate: float
    throttles: int
    cuts: int
    acquired: int


class RateBudget(Protocol):
    """What the request pipeline needs from a rate budget.

    Two implementations: :class:`AdaptiveRateLimiter` (one process) and the fleet's
    ``FleetRateLimiter`` (one budget in Redis for every process of a fleet).
    """

    @property
    def rate(self) -> float | None:
        """Requests/s allowed now (``None`` while nothing limits)."""
        ...

    def statistics(self) -> RateLimiterStatistics:
        """A snapshot of the budget."""
        ...

    async def acquire(self) -> None:
        """Wait until one request may be sent."""
        ...

    def on_success(self) -> None:
        """Report a request the service accepted."""
        ...

    def on_throttle(self, sent_at: float | None = None) -> None:
        """Report a throttled request sent at ``sent_at`` (the budget's clock)."""
        ...


class AdaptiveRateLimiter:
    """A token bucket with an optional hard ``max_rate`` and a CUBIC adaptive rate.

    Example::

        limiter = AdaptiveRateLimiter(max_rate=10)
        await limiter.acquire()          # waits for a token
        ...                              # send the request
        limiter.on_success()             # or limiter.on_throttle(sent_at)

    Args:
        max_rate: hard ceiling in requests/s (``None``: adaptive only).
        burst: bucket capacity in requests; default: 50 ms worth of the rate, at least 1.
        min_rate: the rate never drops below this (requests/s).
        initial_rate: without ``max_rate``, the rate of the first requests (requests/s);
            it doubles every ``SLOW_START_DOUBLING`` seconds of accepted requests until
            the first throttle. ``None`` (the default here; a ``Poller`` passes its
            ``initial_rate`` option, 5/s): no limit until the first throttle (botocore).
        beta: multiplicative cut on a throttle (0 < beta < 1).
        scale: CUBIC's C constant: how fast the rate grows back.
        clock: time source (tests pass a fake).
    """

    def __init__(
        self,
        *,
        max_rate: float | None = None,
        burst: float | None = None,
        min_rate: float = 0.5,
        initial_rate: float | None = None,
        beta: float = 0.7,
        scale: float = 0.4,
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
        self._burst_option = burst
        self._min_rate = float(min_rate)
        self._beta = float(beta)
        self._scale = float(scale)
        self._probe = PROBE
        self._lock = anyio.Lock()

        now = self._clock.now()
        self._started = now
        # Slow start (no max_rate): the rate until the first throttle; None: unlimited.
        self._slow: float | None = None
        self._limited_at = now
        if max_rate is None and initial_rate is not None:
            self._slow = max(float(initial_rate), self._min_rate)
        # Adaptive state (CUBIC): None until the first throttle.
        self._w_max: float | None = None
        self._last_cut = -math.inf
        self._k = 0.0
        # Token bucket: starts full so the first requests go out at once.
        self._tokens = self._capacity(self._fill_rate(now))
        self._last_refill = now
        # Success-rate measurement in fixed windows (as botocore's measured_tx_rate).
        self._window_start = now
        self._window_count = 0
        self._window_sent = 0
        self._measured = 0.0
        self._throttles = 0
        self._cuts = 0
        self._acquired = 0

    # -- public -------------------------------------------------------------------------

    @property
    def rate(self) -> float | None:
        """Requests/s allowed right now (``None`` while nothing limits)."""
        return self._fill_rate(self._clock.now())

    @property
    def max_rate(self) -> float | None:
        """The hard ceiling, if one was given."""
        return self._max_rate

    def statistics(self) -> RateLimiterStatistics:
        """A snapshot of the limiter's state."""
        now = self._clock.now()
        return RateLimiterStatistics(
            rate=self._fill_rate(now),
            max_rate=self._max_rate,
            measured_rate=self._measured_rate(now),
            throttles=self._throttles,
            cuts=self._cuts,
            acquired=self._acquired,
        )

    async def acquire(self) -> None:
        """Wait until one request may be sent. Waiters are served first come, first served."""
        if self._max_rate is None and self._w_max is None and self._slow is None:
            self._acquired += 1
            self._window_sent += 1
            return
        if not self._lock.locked():
            # Nobody waits: take a token without the lock and its checkpoint (the poll
            # loop's common case under a limit that is not reached, the slow start's too).
            now = self._clock.now()
            if self._try_take(now) <= 0:
                self._acquired += 1
                self._window_sent += 1
                return
            self._limited_at = now
        async with self._lock:
            while True:
                now = self._clock.now()
                wait = self._try_take(now)
                if wait > 0:
                    self._limited_at = now
                else:
                    self._acquired += 1
                    self._window_sent += 1
                    return
                # Sleep in short slices and re-check: the rate may have been cut, or (right
                # after a cut, at the bottom of the cubic curve) grown, meanwhile. A wait
                # computed at the lowest rate would otherwise hold every waiter behind it
                # for up to 1 / min_rate seconds while the allowed rate climbs.
                await self._clock.sleep(min(wait, _RECHECK))

    def on_success(self) -> None:
        """Report a request the service accepted."""
        now = self._clock.now()
        self._tick_measure(now)
        self._window_count += 1
        slow = self._slow
        if slow is not None and now - self._limited_at < SLOW_START_DOUBLING:
            # Each answer adds 1 / (rate * doubling) of a doubling: the rate doubles per
            # SLOW_START_DOUBLING seconds of answers, whatever the rate. Only while the
            # rate is what holds requests back (RFC 7661): a rate nobody uses proves
            # nothing, and would be a burst waiting to happen.
            self._refill(now)
            self._slow = slow * 2.0 ** (1.0 / max(1.0, slow * SLOW_START_DOUBLING))

    def on_throttle(self, sent_at: float | None = None) -> None:
        """Report a throttled request.

        Args:
            sent_at: when the request was sent (the limiter's clock). Throttles of
                requests sent before the latest cut belong to a congestion event
                already answered and do not cut again.
        """
        now = self._clock.now()
        self._throttles += 1
        if sent_at is not None and sent_at < self._last_cut:
            return
        self._tick_measure(now)
        current = self._fill_rate(now)
        measured = self._measured_rate(now)
        # The service's acceptance rate is the best estimate of the account's limit; the
        # rate we were allowing may have been far above it.
        candidates = [r for r in (current, measured) if r]
        if self._slow is not None:
            # The end of a slow start: the service's bucket ran dry. The rate then is far
            # above the limit (the service's burst hid the limit for a while); the
            # measured rate lags a doubling ramp by up to a window and would restart
            # CUBIC far below it. A fraction of the slow-start rate (TCP halves it, for
            # ssthresh; the burst calls for more) lands near the limit, and the next
            # throttles, one cut per round trip, close the rest.
            candidates = [self._slow * SLOW_START_EXIT]
        if not candidates:
            # Nothing succeeded yet and nothing limited us: the rate we were sending at
            # is the only evidence (botocore's adaptive mode uses it throughout).
            candidates = [self._window_sent / max(now - self._window_start, 1.0)]
        w_max = min(candidates)
        self._refill(now)
        w_max = max(w_max, self._min_rate)
        previous = self._w_max
        if previous is not None and abs(w_max - previous) <= SAME_LIMIT * previous:
            self._probe = max(MIN_PROBE, self._probe / 2)
        else:
            self._probe = PROBE
        self._w_max = w_max
        self._slow = None
        self._last_cut = now
        self._cuts += 1
        # K: time for the cubic to climb back to w_max from beta * w_max.
        self._k = (self._w_max * (1 - self._beta) / self._scale) ** (1 / 3)
        # The service just said its bucket is empty: so is ours. A token saved up before
        # the cut would send one more request straight into the throttle.
        self._tokens = 0.0

    # -- remembered across restarts (state=) ----------------------------------------------

    def snapshot(self) -> float | None:
        """The learned rate (requests/s the service accepted at the last throttle), if any."""
        return self._w_max

    def restore(self, rate: float) -> None:
        """Start from a rate learned by an earlier run instead of probing for it again.

        The limiter resumes at the plateau of the CUBIC curve at ``rate`` (flat, probing
        above it only slowly), as if it had adapted to ``rate`` just now.
        """
        check_positive("rate", rate)
        now = self._clock.now()
        self._w_max = max(float(rate), self._min_rate)
        self._k = (self._w_max * (1 - self._beta) / self._scale) ** (1 / 3)
        self._last_cut = now - self._k
        self._tokens = self._capacity(self._fill_rate(now))
        self._last_refill = now

    # -- internals ----------------------------------------------------------------------

    def _fill_rate(self, now: float) -> float | None:
        rate: float | None = None
        if self._w_max is not None:
            t = now - self._last_cut - self._k
            # W(t) = C (t - K)^3 + W_max  (RFC 8312 section 4.1). Past W_max (t > K) the
            # curve probes for a higher limit; it does so at a fraction of C (a quarter,
            # less each time the limit is found in the same place), because every probe
            # above a fixed account limit costs throttled requests.
            scale = self._scale if t <= 0 else self._scale * self._probe
            rate = max(self._min_rate, scale * t**3 + self._w_max)
        elif self._slow is not None:
            rate = self._slow
        if self._max_rate is not None:
            rate = self._max_rate if rate is None else min(rate, self._max_rate)
        return rate

    def _capacity(self, rate: float | None) -> float:
        if self._burst_option is not None:
            return self._burst_option
        if self._slow is not None:
            # A slow start paces one request at a time: no burst into an unknown limit.
            return 1.0
        return max(1.0, (rate or 0.0) * 0.05)

    def _refill(self, now: float) -> None:
        rate = self._fill_rate(now) or 0.0
        elapsed = max(0.0, now - self._last_refill)
        self._tokens = min(self._capacity(rate), self._tokens + elapsed * rate)
        self._last_refill = now

    def _try_take(self, now: float) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        self._refill(now)
        # The tolerance keeps float rounding (1 - 1e-16 tokens) from spinning forever.
        if self._tokens >= 1.0 - 1e-9:
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        rate = self._fill_rate(now) or self._min_rate
        return (1.0 - self._tokens) / rate

    def _tick_measure(self, now: float) -> None:
        elapsed = now - self._window_start
        if elapsed >= 1.0:
            self._measured = self._window_count / elapsed
            self._window_start = now
            self._window_count = 0
            self._window_sent = 0

    def _measured_rate(self, now: float) -> float:
        elapsed = now - self._window_start
        if self._measured:
            return self._measured
        # No full window yet: what succeeded so far, over at least 0.1 s (a throttle in
        # the first milliseconds must not read as a huge rate). Early bursts overstate
        # the rate; later cuts, each on a longer window, correct it within a second.
        return self._window_count / max(elapsed, 0.1)

    def __repr__(self) -> str:
        rate = self.rate
        shown = "unlimited" if rate is None else f"{rate:.3g}/s"
        return f"<AdaptiveRateLimiter rate={shown} max_rate={self._max_rate}>"
