"""The token bucket: no more than ``rate * t + capacity`` requests start in ``t`` seconds.

The bucket holds no rate of its own (botocore's ``TokenBucket`` does): the adaptive
rate moves continuously along a curve, so the limiter hands the rate and capacity of
the moment to every refill. Time comes in as ``now`` from the limiter's clock.
"""

from __future__ import annotations

__all__ = ["BURST", "MIN_BURST", "TokenBucket"]

#: The default capacity, in seconds of the rate.
BURST = 0.05
#: The default bucket's smallest capacity (requests): with one, a waiter whose timer
#: fires a millisecond late loses that millisecond of the rate, every time.
MIN_BURST = 2.0
# A token counts as whole within this much, so float rounding (1 - 1e-16 tokens) cannot
# keep a waiter spinning.
_WHOLE = 1e-9


class TokenBucket:
    """Tokens that accrue at a rate up to a capacity; one request takes one.

    Args:
        tokens: what the bucket holds at ``now``.
        now: the time of that reading.
    """

    __slots__ = ("_last", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self._last = now

    def refill(self, now: float, rate: float, capacity: float) -> float:
        """Add what ``rate`` accrued since the last refill, up to ``capacity``.

        Returns:
            The tokens the rate offered meanwhile, including any that overflowed.
        """
        offered = max(0.0, now - self._last) * rate
        self.tokens = min(capacity, self.tokens + offered)
        self._last = now
        return offered

    def take(self) -> bool:
        """Take one token if the bucket holds one (call :meth:`refill` first)."""
        if self.tokens >= 1.0 - _WHOLE:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def wait(self, rate: float) -> float:
        """Seconds until the bucket holds one token at ``rate``."""
        return (1.0 - self.tokens) / rate

    def fill(self, now: float, capacity: float) -> None:
        """Hold ``capacity`` tokens as of ``now``."""
        self.tokens = capacity
        self._last = now

    def __repr__(self) -> str:
        return f"<TokenBucket tokens={self.tokens:.3g}>"
