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
from a rate the burst inflated). Here, without ``max_rate``, a cold limiter learns the
limit in two steps, each paid for by one congestion event:

1. **The ramp.** The rate starts at ``initial_rate`` and doubles every
   ``SLOW_START_DOUBLING`` seconds of accepted requests while it is what holds requests
   back (TCP's slow start, RFC 5681, in rate form: growth is paid for by answers, so an
   endpoint that does not answer is never flooded). Its first throttle says the service's
   bucket ran dry, but not where the limit is: the service's burst hid it, so the ramp is
   by then far above it. A fraction of the ramp's rate (``SLOW_START_EXIT``) is a guess
   under the limit.
2. **The climb.** From the guess the rate doubles every ``CLIMB_DOUBLING`` seconds to the
   next throttle. The service's bucket was empty at both throttles, so the requests it
   accepted in between, over the time between, *are* its rate (less one request, to err
   low), free of the burst. That measure is the CUBIC maximum.

After that, CUBIC: a measured limit dips less after a throttle than a guessed one
(``MEASURED_DIP``), and is probed above ever more gently each time it is found in the
same place, since every probe above a fixed account limit costs a throttle. Throttles
after the slow start are measured the same way. An explicit ``max_rate`` is trusted from
the first request (no slow start); ``initial_rate=None`` keeps botocore's behaviour
(nothing limits before a throttle). ``benchmarks`` S2 measures the cold start against
botocore's adaptive mode at three account limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import anyio

from ._clock import Clock, MonotonicClock
from ._validate import check_fraction, check_positive

__all__ = ["DEFAULT_INITIAL_RATE", "AdaptiveRateLimiter", "RateBudget", "RateLimiterStatistics"]

#: The default bucket's smallest capacity (requests): with one, a waiter whose timer
#: fires a millisecond late loses that millisecond of the rate, every time.
MIN_BURST = 2.0
# Longest sleep between two looks at the bucket while waiting for a token (seconds).
_RECHECK = 0.1
#: The default first rate of a cold limiter without ``max_rate`` (requests/s).
DEFAULT_INITIAL_RATE = 5.0
#: Seconds of accepted requests over which the slow-start rate doubles (the ramp).
SLOW_START_DOUBLING = 0.3
#: The bucket's capacity during a slow start, in seconds of its rate.
SLOW_START_BURST = 0.01
#: The ramp's first throttle guesses the limit at this fraction of the ramp's rate ...
SLOW_START_EXIT = 0.15
#: ... and from there the rate climbs, doubling every this many seconds of limited
#: answers, to the next throttle, which measures the limit.
CLIMB_DOUBLING = 1.5
#: A climb that left less than this many seconds of the limit unused below it cannot
#: have overflowed any but a tiny service bucket: its measure is trusted.
TRUSTED_DEFICIT = 0.1
TRUSTED_COUNT = 25
#: Probing above a measured limit, as a fraction of C: ``PROBE`` while the measure may
#: be low, ``CONFIRMED_PROBE`` once trusted or found again in the same place (within
#: ``SAME_LIMIT``), halving each time it is found again down to ``MIN_PROBE``: a limit
#: found again and again is fixed, and every probe above it costs a throttle.
PROBE = 1 / 16
CONFIRMED_PROBE = 1 / 1024
MIN_PROBE = 1 / 16384
SAME_LIMIT = 0.2
#: After a measured limit the rate dips by this share of an ordinary cut (1 - beta).
MEASURED_DIP = 0.5
#: A measure counts only if at least this share of what the rate allowed was sent.
USED_SHARE = 0.8
#: Throttles closer than this (seconds) after a cut are too close to measure a rate.
MIN_BETWEEN = 0.25


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


def _climb_deficit(start: float, limit: float) -> float:
    """Seconds of ``limit`` a climb from ``start`` (doubling every ``CLIMB_DOUBLING`` s)
    left unused below it: what the service's bucket had to hold for none to be lost."""
    if limit <= start:
        return 0.0
    ratio = start / limit
    return CLIMB_DOUBLING * (math.log2(1 / ratio) - (1 - ratio) / math.log(2))


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

    def on_success(self, sent_at: float | None = None) -> None:
        """Report a request the service accepted, sent at ``sent_at`` (the budget's clock)."""
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
        burst: bucket capacity in requests; default: 50 ms worth of the rate, at least
            ``MIN_BURST`` (2: a waiter whose timer fires late keeps the token it waited
            for, so pacing at ``max_rate`` reaches ``max_rate``).
        min_rate: the rate never drops below this (requests/s).
        initial_rate: without ``max_rate``, the rate of the first requests (requests/s);
            it doubles every ``SLOW_START_DOUBLING`` seconds of accepted requests until
            the first throttle, then climbs from a guess under that to a second throttle,
            which measures the limit (see the module's docstring). ``None`` (the default
            here; a ``Poller`` passes its ``initial_rate`` option, 5/s): no limit until
            the first throttle (botocore).
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
        # Callers asleep in the lock until a token comes: newcomers queue behind them.
        self._sleeping = 0

        now = self._clock.now()
        self._started = now
        # Slow start (no max_rate): the rate until the first throttle; None: unlimited.
        self._slow: float | None = None
        # Seconds of limited answers per doubling of the slow-start rate: the ramp's
        # SLOW_START_DOUBLING, then CLIMB_DOUBLING once the first throttle guessed the limit.
        self._doubling = SLOW_START_DOUBLING
        self._climb_from = 0.0
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
        # Successes since the last cut: the service's bucket was empty at both ends of
        # the interval, so their rate over it is what the service accepts.
        self._since_cut = 0
        # Requests the rate allowed since the last cut (whether sent or not).
        self._offered = 0.0

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
        if not self._sleeping:
            # Nobody waits for a token: take one without the lock and its checkpoint (the
            # poll loop's common case under a limit that is not reached). Callers queued
            # on the lock while tokens are there do not count: going through the lock
            # would keep it held, and every later caller behind it, one per loop turn.
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
                self._sleeping += 1
                try:
                    await self._clock.sleep(min(wait, _RECHECK))
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
        self._tick_measure(now)
        self._window_count += 1
        if sent_at is None or sent_at >= self._last_cut:
            self._since_cut += 1
        slow = self._slow
        if slow is not None and now - self._limited_at < self._doubling:
            # Each answer adds 1 / (rate * doubling) of a doubling: the rate doubles per
            # ``_doubling`` seconds of answers (the ramp's or the climb's), whatever the
            # rate. Only while the rate is what holds requests back (RFC 7661): a rate
            # nobody uses proves nothing, and would be a burst waiting to happen.
            self._refill(now)
            self._slow = slow * 2.0 ** (1.0 / max(1.0, slow * self._doubling))

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
        self._refill(now)
        sent = now if sent_at is None else sent_at
        if self._slow is not None:
            self._slow_start_throttled(now, sent)
        else:
            self._congestion(now, sent)
        self._cut(now)

    def _slow_start_throttled(self, now: float, sent: float) -> None:
        """A throttle during the slow start: guess the limit, or measure it."""
        slow = self._slow
        assert slow is not None
        if self._doubling == SLOW_START_DOUBLING:
            # The ramp's end: the service's bucket ran dry. The rate then is far above the
            # limit (the service's burst hid the limit for a while), and the answers so far
            # count that burst too. A fraction of the ramp's rate is a guess under the
            # limit, from which the rate climbs gently to the next throttle.
            self._climb(slow * SLOW_START_EXIT)
            return
        if sent - self._last_cut < MIN_BETWEEN:
            # Throttled too soon after the guess to measure anything: it was too high.
            self._climb(slow / 2)
            return
        accepted = self._accepted(sent)
        if accepted is None:
            self._guess(now)
            return
        limit = min(slow, accepted)
        # The measure is exact unless the service's bucket overflowed while the climb was
        # below the limit. The climb's own deficit says how large a bucket that took:
        # under TRUSTED_DEFICIT seconds of the limit (and over enough requests), the
        # measure is trusted and probed above only gently; otherwise it may be low, and
        # is probed sooner.
        trusted = (
            _climb_deficit(self._climb_from, limit) <= TRUSTED_DEFICIT
            and self._since_cut >= TRUSTED_COUNT
        )
        self._enter_cubic(limit, measured=True, probe=CONFIRMED_PROBE if trusted else PROBE)

    def _climb(self, rate: float) -> None:
        self._slow = self._climb_from = max(self._min_rate, rate)
        self._doubling = CLIMB_DOUBLING
        self._limited_at = self._clock.now()

    def _congestion(self, now: float, sent: float) -> None:
        """A throttle after the slow start (or without one): cut the rate, CUBIC."""
        accepted = self._accepted(sent)
        if accepted is None:
            self._guess(now)
            return
        current = self._fill_rate(now)
        limit = accepted if current is None else min(current, accepted)
        previous = self._w_max
        if previous is not None and abs(limit - previous) <= SAME_LIMIT * previous:
            # The limit found where it was last time: it is fixed, probe less.
            probe = max(MIN_PROBE, min(self._probe / 2, CONFIRMED_PROBE))
        else:
            probe = PROBE
        self._enter_cubic(limit, measured=True, probe=probe)

    def _guess(self, now: float) -> None:
        """No measure: CUBIC from the best guess, probing above it at CUBIC's own pace."""
        # The service's acceptance rate is the best estimate of the account's limit; the
        # rate we were allowing may have been far above it.
        candidates = [r for r in (self._fill_rate(now), self._measured_rate(now)) if r]
        if not candidates:
            # Nothing succeeded yet and nothing limited us: the rate we were sending at
            # is the only evidence (botocore's adaptive mode uses it throughout).
            candidates = [self._window_sent / max(now - self._window_start, 1.0)]
        self._enter_cubic(min(candidates), measured=False, probe=1.0)

    def _accepted(self, sent: float) -> float | None:
        """The service's rate since the last cut, measured by a throttle sent at ``sent``.

        The service's bucket was empty at both ends (each was a throttle), so what it
        accepted in between is its rate, free of the burst a fixed window counts too. One
        request less: the bucket may have held up to one token at either end, and a rate
        a little under the limit is kept, one over it is not.

        ``None`` when there is nothing to measure: the first throttle, one too soon after
        the last cut, or an interval in which the rate allowed went largely unused (the
        poller had less to send), since the service's bucket then filled up and what it
        accepted says nothing of its limit.
        """
        between = sent - self._last_cut
        if not MIN_BETWEEN <= between < math.inf or self._since_cut < 2:
            return None
        if self._since_cut < USED_SHARE * self._offered:
            return None
        return (self._since_cut - 1) / between

    def _enter_cubic(self, limit: float, *, measured: bool, probe: float) -> None:
        self._w_max = max(limit, self._min_rate)
        self._slow = None
        self._probe = probe
        # K: time for the cubic to climb back to w_max from beta * w_max. A measured limit
        # dips less: it is known to a request, and a dip wastes the limit.
        beta = 1 - (1 - self._beta) * MEASURED_DIP if measured else self._beta
        self._k = (self._w_max * (1 - beta) / self._scale) ** (1 / 3)

    def _cut(self, now: float) -> None:
        self._last_cut = now
        self._since_cut = 0
        self._offered = 0.0
        self._cuts += 1
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
        self._slow = None
        self._probe = CONFIRMED_PROBE
        self._w_max = max(float(rate), self._min_rate)
        self._k = (self._w_max * (1 - self._beta) / self._scale) ** (1 / 3)
        self._last_cut = now - self._k
        self._since_cut = 0
        self._offered = 0.0
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
        # A slow start paces requests nearly one at a time (no burst into an unknown
        # limit); 10 ms worth still lets a batch of workers through in one go once the
        # rate is high, instead of one per event-loop turn.
        if self._slow is not None:
            return max(1.0, (rate or 0.0) * SLOW_START_BURST)
        return max(MIN_BURST, (rate or 0.0) * 0.05)

    def _refill(self, now: float) -> None:
        rate = self._fill_rate(now) or 0.0
        elapsed = max(0.0, now - self._last_refill)
        self._offered += elapsed * rate
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
