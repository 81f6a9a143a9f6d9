"""The adaptive rate's phases: unlimited, the ramp, the climb, CUBIC.

Each phase is a small object that says the rate it allows and, on a throttle that opens
a new congestion event, which phase comes next::

    Unlimited ──throttle──▶ Cubic ◀──throttle── Cubic
    Ramp ──throttle──▶ Climb ──throttle──▶ Cubic
                         └──too soon──▶ Climb (from half the rate)

* :class:`Unlimited`: nothing limits before the first throttle (botocore's adaptive
  mode; with ``max_rate`` the ceiling alone limits).
* :class:`Ramp`: a cold limiter's slow start, from ``initial_rate``, doubling every
  ``SLOW_START_ROUNDS`` round trips of accepted answers while it is what holds requests
  back (TCP's slow start, RFC 5681, in rate form; RFC 7661: a rate nobody uses proves
  nothing). Its first throttle says the service's bucket ran dry, not where the limit
  is: the service's burst hid the limit, so the ramp is by then far above it.
  ``SLOW_START_EXIT`` of the ramp's rate is a guess under the limit.
* :class:`Climb`: from the guess, doubling every ``CLIMB_DOUBLING`` seconds to the next
  throttle, which measures the limit (see :class:`~._meter.SinceCut`).
* :class:`Cubic`: the CUBIC curve (:func:`~._cubic.cubic_rate`) from the limit found. A
  measured limit dips less after a throttle than a guessed one (``MEASURED_DIP``), and
  is probed above ever more gently each time it is found in the same place, since every
  probe above a fixed account limit costs a throttle.

The limiter keeps the bucket, the meters and the clock; a phase only sees the
:class:`Throttle` the limiter hands it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from ._bucket import BURST, MIN_BURST
from ._cubic import BETA, SCALE, cubic_k, cubic_rate
from ._meter import MIN_BETWEEN

__all__ = [
    "CONFIRMED_PROBE",
    "DEFAULT_INITIAL_RATE",
    "INITIAL_WINDOW",
    "MIN_RATE",
    "PROBE",
    "SLOW_START_DOUBLING",
    "SLOW_START_EXIT",
    "SLOW_START_ROUNDS",
    "Climb",
    "Cubic",
    "Phase",
    "Ramp",
    "Shape",
    "SlowStart",
    "Throttle",
    "Unlimited",
    "climb_deficit",
]

#: The rate never drops below this by default (requests/s).
MIN_RATE = 0.5
#: The default first rate of a cold limiter without ``max_rate`` (requests/s).
DEFAULT_INITIAL_RATE = 5.0
#: Seconds of accepted requests over which the ramp's rate doubles before a round trip
#: is known (and the fleet's shared ramp's, which has no round trip to go by).
SLOW_START_DOUBLING = 0.3
#: Round trips of accepted requests over which the ramp's rate doubles.
SLOW_START_ROUNDS = 12.0
#: Requests per round trip the ramp allows at least, once a round trip is known.
INITIAL_WINDOW = 1.0
#: The bucket's capacity during a slow start, in seconds of its rate.
SLOW_START_BURST = 0.01
#: The ramp's first throttle guesses the limit at this fraction of the ramp's rate ...
SLOW_START_EXIT = 0.15
#: ... and from there the rate climbs, doubling every this many seconds of limited
#: answers, to the next throttle, which measures the limit.
CLIMB_DOUBLING = 1.5
#: A climb that left less than this many seconds of the limit unused below it (over at
#: least ``TRUSTED_COUNT`` answers) cannot have overflowed any but a tiny service bucket:
#: its measure is trusted.
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


@dataclass(frozen=True, slots=True)
class Shape:
    """The limiter's settings every phase follows."""

    min_rate: float = MIN_RATE
    beta: float = BETA
    scale: float = SCALE


@dataclass(frozen=True, slots=True)
class Throttle:
    """A throttle that opens a new congestion event, as the limiter saw it.

    Attributes:
        now: when it was reported (the limiter's clock): the time of the cut.
        since_cut: seconds from the last cut to the throttled request's send.
        accepted: the service's rate since the last cut, if it could be measured.
        successes: accepted requests sent since the last cut.
        rate: the rate allowed when it came (``max_rate`` included; ``None``: none).
        guess: the best estimate of the limit without a measure.
    """

    now: float
    since_cut: float
    accepted: float | None
    successes: int
    rate: float | None
    guess: float


def climb_deficit(start: float, limit: float) -> float:
    """Seconds of ``limit`` a climb from ``start`` left unused below it: what the
    service's bucket had to hold for none to be lost."""
    if limit <= start:
        return 0.0
    ratio = start / limit
    return CLIMB_DOUBLING * (math.log2(1 / ratio) - (1 - ratio) / math.log(2))


class Phase(ABC):
    """A phase of the adaptive rate: the rate it allows, and what follows a throttle."""

    __slots__ = ("shape",)

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    @property
    def learned(self) -> float | None:
        """The limit this phase follows, learned from throttles (``None``: none yet)."""
        return None

    @abstractmethod
    def rate(self, now: float) -> float | None:
        """Requests/s this phase allows at ``now`` (``None``: it does not limit)."""

    def capacity(self, rate: float | None) -> float:
        """The bucket's default capacity at ``rate``: 50 ms worth, at least ``MIN_BURST``."""
        return max(MIN_BURST, (rate or 0.0) * BURST)

    def held_back(self, now: float) -> None:  # noqa: B027 (most phases do not care)
        """The rate made a request wait at ``now``."""

    def grows(self, now: float, round_trip: float) -> bool:
        """Whether an answer accepted at ``now`` grows the rate (``round_trip``: the
        smoothed seconds from a request to its answer)."""
        return False

    def grow(self, round_trip: float) -> float:
        """Grow the rate by one accepted answer's worth (only where :meth:`grows` said so).

        Returns:
            The tokens the answer frees at once: the requests that may go now whatever
            the rate's pacing says (0: none beyond the rate).
        """
        return 0.0

    @abstractmethod
    def throttled(self, throttle: Throttle) -> Phase:
        """The phase that answers ``throttle``."""


class Unlimited(Phase):
    """Before the first throttle, without a slow start: nothing adaptive limits."""

    __slots__ = ()

    def rate(self, now: float) -> float | None:
        return None

    def throttled(self, throttle: Throttle) -> Phase:
        return Cubic.congestion(self.shape, throttle, previous=None)

    def __repr__(self) -> str:
        return "<Unlimited>"


class Cubic(Phase):
    """The CUBIC curve from ``w_max``, cut at ``cut_at``.

    Args:
        w_max: the curve's plateau (requests/s).
        beta: the depth of this cut (a measured limit dips less than ``shape.beta``).
        probe: past the plateau the curve grows at this fraction of C.
        cut_at: when the curve started at ``beta * w_max``.
    """

    __slots__ = ("beta", "cut_at", "probe", "w_max")

    def __init__(
        self, shape: Shape, *, w_max: float, beta: float, probe: float, cut_at: float
    ) -> None:
        super().__init__(shape)
        self.w_max = w_max
        self.beta = beta
        self.probe = probe
        self.cut_at = cut_at

    @classmethod
    def after_cut(
        cls, shape: Shape, limit: float, *, measured: bool, probe: float, now: float
    ) -> Cubic:
        """CUBIC from ``limit``, cut ``now``: a measured limit is known to a request,
        and a dip wastes the limit, so it dips by ``MEASURED_DIP`` of a cut only."""
        beta = 1 - (1 - shape.beta) * MEASURED_DIP if measured else shape.beta
        w_max = max(limit, shape.min_rate)
        return cls(shape, w_max=w_max, beta=beta, probe=probe, cut_at=now)

    @classmethod
    def congestion(cls, shape: Shape, throttle: Throttle, *, previous: Cubic | None) -> Cubic:
        """A throttle after the slow start (or without one): CUBIC from the measure."""
        accepted = throttle.accepted
        if accepted is None:
            return cls.guessed(shape, throttle)
        limit = accepted if throttle.rate is None else min(throttle.rate, accepted)
        if previous is not None and abs(limit - previous.w_max) <= SAME_LIMIT * previous.w_max:
            # The limit found where it was last time: it is fixed, probe less.
            probe = max(MIN_PROBE, min(previous.probe / 2, CONFIRMED_PROBE))
        else:
            probe = PROBE
        return cls.after_cut(shape, limit, measured=True, probe=probe, now=throttle.now)

    @classmethod
    def guessed(cls, shape: Shape, throttle: Throttle) -> Cubic:
        """No measure: CUBIC from the best guess, probing above it at CUBIC's own pace."""
        return cls.after_cut(shape, throttle.guess, measured=False, probe=1.0, now=throttle.now)

    @classmethod
    def restored(cls, shape: Shape, w_max: float, now: float) -> Cubic:
        """At the plateau at ``w_max`` (a limit learned by an earlier run) as of ``now``."""
        w_max = max(w_max, shape.min_rate)
        k = cubic_k(w_max, shape.beta, shape.scale)
        return cls(shape, w_max=w_max, beta=shape.beta, probe=CONFIRMED_PROBE, cut_at=now - k)

    @property
    def learned(self) -> float | None:
        return self.w_max

    def rate(self, now: float) -> float | None:
        shape = self.shape
        curve = cubic_rate(
            now - self.cut_at, self.w_max, beta=self.beta, scale=shape.scale, probe=self.probe
        )
        return max(shape.min_rate, curve)

    def throttled(self, throttle: Throttle) -> Phase:
        return Cubic.congestion(self.shape, throttle, previous=self)

    def __repr__(self) -> str:
        return f"<Cubic w_max={self.w_max:.3g} probe={self.probe:.3g} cut_at={self.cut_at:.3f}>"


class SlowStart(Phase):
    """A rate that doubles every ``doubling`` seconds of answers while it holds requests back.

    Args:
        rate: the starting rate (at least ``shape.min_rate``).
        now: when the phase begins: it counts as held back then.
    """

    __slots__ = ("_limited_at", "_rate")
    #: Seconds of limited answers per doubling.
    doubling: ClassVar[float]

    def __init__(self, shape: Shape, rate: float, now: float) -> None:
        super().__init__(shape)
        self._rate = max(shape.min_rate, rate)
        self._limited_at = now

    def rate(self, now: float) -> float | None:
        return self._rate

    def capacity(self, rate: float | None) -> float:
        # Requests paced nearly one at a time (no burst into an unknown limit); 10 ms
        # worth still lets a batch of workers through in one go once the rate is high,
        # instead of one per event-loop turn.
        return max(1.0, (rate or 0.0) * SLOW_START_BURST)

    def held_back(self, now: float) -> None:
        self._limited_at = now

    def doubling_time(self, round_trip: float) -> float:
        """Seconds of answers per doubling of the rate."""
        return self.doubling

    def grows(self, now: float, round_trip: float) -> bool:
        return now - self._limited_at < self.doubling_time(round_trip)

    def grow(self, round_trip: float) -> float:
        # Each answer adds 1 / (rate * doubling) of a doubling: the rate doubles per
        # doubling time of answers, whatever the rate (at most once per answer).
        rate = self._rate
        self._rate = rate * 2.0 ** (1.0 / max(1.0, rate * self.doubling_time(round_trip)))
        return 0.0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} rate={self._rate:.3g}>"


class Ramp(SlowStart):
    """A cold limiter's first phase: from ``initial_rate`` to the first throttle.

    Paced by answers, not by wall time (TCP's slow start grows its window per
    acknowledgement, so per round trip): the rate doubles every ``SLOW_START_ROUNDS``
    round trips of answers (at most every ``SLOW_START_DOUBLING`` seconds) while it is
    what holds requests back, and never runs under ``INITIAL_WINDOW`` requests per
    round trip once a round trip is known. The round trip is the least seen (the
    path's own delay: the first connection's set-up and queueing only inflate it).
    Against a fast endpoint it reaches full speed in a few dozen milliseconds; it grows
    no faster than its answers come. Its overshoot when the service's bucket runs dry
    is the requests in flight, about ``ln 2 / SLOW_START_ROUNDS`` of the bucket:
    spreading a doubling over several round trips is what keeps that first congestion
    event small.
    """

    __slots__ = ()
    doubling: ClassVar[float] = SLOW_START_DOUBLING

    def doubling_time(self, round_trip: float) -> float:
        # Never slower than a doubling per SLOW_START_DOUBLING seconds (the pace before a
        # round trip is known, and the whole ramp's on a far endpoint).
        if round_trip <= 0:
            return self.doubling
        return min(SLOW_START_ROUNDS * round_trip, self.doubling)

    def grow(self, round_trip: float) -> float:
        window = 0.0
        if round_trip > 0 and INITIAL_WINDOW / round_trip >= self._rate:
            # The window's floor is what allows requests: as in TCP's, an answer frees
            # its place in the window, so INITIAL_WINDOW requests may go at once (the
            # first answer would otherwise find a bucket filled at the starting 5/s and
            # wait a round trip's worth of the new rate more).
            self._rate = INITIAL_WINDOW / round_trip
            window = INITIAL_WINDOW
        super().grow(round_trip)
        return window

    def throttled(self, throttle: Throttle) -> Phase:
        # The service's bucket ran dry. The rate is far above the limit by now (the
        # service's burst hid it for a while), and the answers so far count that burst
        # too: climb gently from a guess under the limit to the next throttle.
        return Climb(self.shape, self._rate * SLOW_START_EXIT, throttle.now)


class Climb(SlowStart):
    """From a guess under the limit to the throttle that measures it."""

    __slots__ = ("start",)
    doubling: ClassVar[float] = CLIMB_DOUBLING

    def __init__(self, shape: Shape, rate: float, now: float) -> None:
        super().__init__(shape, rate, now)
        self.start = self._rate

    def throttled(self, throttle: Throttle) -> Phase:
        if throttle.since_cut < MIN_BETWEEN:
            # Throttled too soon after the guess to measure anything: it was too high.
            return Climb(self.shape, self._rate / 2, throttle.now)
        if throttle.accepted is None:
            return Cubic.guessed(self.shape, throttle)
        limit = min(self._rate, throttle.accepted)
        # The measure is exact unless the service's bucket overflowed while the climb
        # was below the limit. The climb's own deficit says how large a bucket that took:
        # under TRUSTED_DEFICIT seconds of the limit (and over enough requests) the
        # measure is trusted and probed above only gently; otherwise it may be low, and
        # is probed sooner.
        trusted = (
            climb_deficit(self.start, limit) <= TRUSTED_DEFICIT
            and throttle.successes >= TRUSTED_COUNT
        )
        probe = CONFIRMED_PROBE if trusted else PROBE
        return Cubic.after_cut(self.shape, limit, measured=True, probe=probe, now=throttle.now)
