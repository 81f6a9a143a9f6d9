"""The shared rate budget: a token bucket whose rate adapts to throttling.

One limiter serves every request a Poller sends. It is built from parts, the way
aiobotocore's ``retries/adaptive.py`` and ``retries/bucket.py`` are, so each is small
and tested alone:

===================  ============================================================
module               holds
===================  ============================================================
``_protocol``        ``RateBudget`` (what the pipeline needs) and its statistics
``_bucket``          the token bucket: at most ``rate * t + burst`` requests start
                     in any window of ``t`` seconds
``_cubic``           the CUBIC curve, a pure function of the time since the last
                     cut (the fleet's Lua computes the same, and a test says so)
``_meter``           the service's success rate, and the rate it accepted between
                     two throttles
``_phases``          unlimited, the slow start's ramp and climb, CUBIC: each phase
                     an object that gives the rate and the phase after a throttle
``_limiter``         ``AdaptiveRateLimiter``: the clock, the waiting, the parts
===================  ============================================================

The adaptive rate follows CUBIC congestion control (RFC 8312, the algorithm botocore's
``adaptive`` retry mode uses, C = 0.4, beta = 0.7): on a throttle the rate is cut to
``beta`` times the rate the service was actually accepting, then grows back along a
cubic curve that is flat near the old maximum (so it lingers just under the account's
limit) and probes beyond it only slowly.

Two refinements over botocore's implementation: it is async-native (waiting is an
``await``, never a blocking sleep or lock), and a throttle only cuts the rate once per
congestion event: answers to requests sent *before* the last cut are ignored, the way
TCP reacts once per window, so a burst of in-flight throttles does not collapse the rate.

**Slow start.** botocore's adaptive mode does not limit at all until the first throttle,
so a cold client sends ``max_concurrency`` requests per round trip into an account whose
limit it does not know, and pays for it in a burst of throttles (and a first cut computed
from a rate the burst inflated). Here, without ``max_rate``, a cold limiter learns the
limit in two steps, each paid for by one congestion event (the phases ``Ramp`` and
``Climb``):

1. **The ramp.** The rate starts at ``initial_rate``; once a round trip is known it is
   at least ``INITIAL_WINDOW`` request per round trip, and it doubles every
   ``SLOW_START_ROUNDS`` round trips of accepted requests (at most every
   ``SLOW_START_DOUBLING`` seconds) while it is what holds requests back (TCP's slow
   start, RFC 5681, in rate form: growth is paid for by answers, so an endpoint that
   does not answer is never flooded, and a fast one is reached in a few dozen
   milliseconds). The round trip is the least seen (``_meter.RoundTrip``). Its first
   throttle says the service's bucket ran dry, but not where the limit is: the
   service's burst hid it, so the ramp is by then far above it. A fraction of the
   ramp's rate (``SLOW_START_EXIT``) is a guess under the limit.
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

from ._bucket import MIN_BURST
from ._cubic import BETA, SCALE, cubic_k, cubic_rate
from ._limiter import AdaptiveRateLimiter
from ._phases import (
    CONFIRMED_PROBE,
    DEFAULT_INITIAL_RATE,
    INITIAL_WINDOW,
    MIN_RATE,
    PROBE,
    SLOW_START_DOUBLING,
    SLOW_START_EXIT,
    SLOW_START_ROUNDS,
    climb_deficit,
)
from ._protocol import RateBudget, RateLimiterStatistics

__all__ = [
    "BETA",
    "CONFIRMED_PROBE",
    "DEFAULT_INITIAL_RATE",
    "INITIAL_WINDOW",
    "MIN_BURST",
    "MIN_RATE",
    "PROBE",
    "SCALE",
    "SLOW_START_DOUBLING",
    "SLOW_START_EXIT",
    "SLOW_START_ROUNDS",
    "AdaptiveRateLimiter",
    "RateBudget",
    "RateLimiterStatistics",
    "climb_deficit",
    "cubic_k",
    "cubic_rate",
]
