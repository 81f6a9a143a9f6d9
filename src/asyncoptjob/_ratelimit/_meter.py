"""Measuring the service: its success rate, and the rate it accepted between two throttles.

Two meters, both fed by the limiter with ``now`` from its clock:

* :class:`RateMeter` counts accepted requests in fixed windows of at least a second
  (botocore's ``RateClocker`` in spirit): a rough rate, the evidence when nothing better
  is at hand.
* :class:`SinceCut` counts what the service accepted since the last cut. The service's
  bucket was empty at both ends of that interval (each end was a throttle), so what it
  accepted in between, over the time between, *is* its rate, free of the burst a fixed
  window counts too.
"""

from __future__ import annotations

import math

__all__ = ["MIN_BETWEEN", "USED_SHARE", "RateMeter", "RoundTrip", "SinceCut"]

#: A measuring window closes after this many seconds.
WINDOW = 1.0
#: Before the first window closes, the rate is counted over at least this long: a throttle
#: in the first milliseconds must not read as a huge rate.
MIN_ELAPSED = 0.1
#: A measure counts only if at least this share of what the rate allowed was sent.
USED_SHARE = 0.8
#: Throttles closer than this (seconds) after a cut are too close to measure a rate.
MIN_BETWEEN = 0.25


class RateMeter:
    """Accepted (and sent) requests per second, in fixed windows of at least ``WINDOW``."""

    __slots__ = ("_accepted", "_measured", "_sent", "_start")

    def __init__(self, now: float) -> None:
        self._start = now
        self._accepted = 0
        self._sent = 0
        self._measured = 0.0

    def sent(self) -> None:
        """Count a request let through."""
        self._sent += 1

    def accepted(self, now: float) -> None:
        """Count a request the service accepted."""
        self.tick(now)
        self._accepted += 1

    def tick(self, now: float) -> None:
        """Close the window if it is ``WINDOW`` old: its rate becomes the measure."""
        elapsed = now - self._start
        if elapsed >= WINDOW:
            self._measured = self._accepted / elapsed
            self._start = now
            self._accepted = 0
            self._sent = 0

    def rate(self, now: float) -> float:
        """Accepted requests/s: the last closed window's, or the open one's so far."""
        if self._measured:
            return self._measured
        # Early bursts overstate the rate; later cuts, each on a longer window, correct
        # it within a second.
        return self._accepted / max(now - self._start, MIN_ELAPSED)

    def guess(self, now: float, rate: float | None) -> float:
        """The best estimate of the limit without a measure, the rate allowed being ``rate``.

        The service's acceptance rate is the best estimate of the account's limit; the
        rate allowed may have been far above it. With neither (nothing succeeded yet and
        nothing limited), the rate requests went out at is the only evidence (botocore's
        adaptive mode uses it throughout).
        """
        candidates = [r for r in (rate, self.rate(now)) if r]
        if not candidates:
            return self._sent / max(now - self._start, WINDOW)
        return min(candidates)


class SinceCut:
    """The congestion event under way: when it began, and what was accepted since.

    A throttle or an answer to a request sent before :attr:`last_cut` belongs to an
    earlier event: it neither cuts again nor counts towards the next measure (TCP reacts
    once per window the same way).
    """

    __slots__ = ("last_cut", "offered", "successes")

    def __init__(self) -> None:
        self.last_cut = -math.inf
        #: Accepted requests sent since the last cut.
        self.successes = 0
        #: Requests the rate allowed since the last cut (whether sent or not).
        self.offered = 0.0

    def stale(self, sent_at: float | None) -> bool:
        """True if a request sent at ``sent_at`` went out before the last cut."""
        return sent_at is not None and sent_at < self.last_cut

    def accepted(self, sent_at: float | None) -> None:
        """Count an accepted request sent at ``sent_at`` (``None``: unknown, counts)."""
        if not self.stale(sent_at):
            self.successes += 1

    def rate(self, sent: float) -> float | None:
        """The service's rate since the last cut, measured by a throttle sent at ``sent``.

        One request less than was accepted: the service's bucket may have held up to
        one token at either end, and a rate a little under the limit is kept, one over
        it is not.

        ``None`` when there is nothing to measure: the first throttle, one too soon
        after the last cut, or an interval in which the rate allowed went largely
        unused (the caller had less to send), since the service's bucket then filled up
        and what it accepted says nothing of its limit.
        """
        between = sent - self.last_cut
        if not MIN_BETWEEN <= between < math.inf or self.successes < 2:
            return None
        if self.successes < USED_SHARE * self.offered:
            return None
        return (self.successes - 1) / between

    def cut(self, at: float) -> None:
        """A new congestion event begins ``at``: count from zero."""
        self.last_cut = at
        self.successes = 0
        self.offered = 0.0

    def __repr__(self) -> str:
        return f"<SinceCut last_cut={self.last_cut:.3f} successes={self.successes}>"


class RoundTrip:
    """Seconds from a request to its answer: the least seen, as TCP's HyStart and BBR
    keep it (the path's own delay, free of the first connection's set-up and of
    queueing, both of which only inflate a sample)."""

    __slots__ = ("least",)

    def __init__(self) -> None:
        #: 0 until the first answer.
        self.least = 0.0

    def sample(self, sent_at: float | None, now: float) -> float:
        """Count an answer to a request sent at ``sent_at``; return the least round trip."""
        if sent_at is not None and now >= sent_at:
            took = now - sent_at
            if not self.least or took < self.least:
                self.least = took
        return self.least
