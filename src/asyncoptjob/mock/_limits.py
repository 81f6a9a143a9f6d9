"""The account-wide rate limits: a token bucket per operation family, as AWS's per-account limits.

Every client of one mock shares these buckets, the way every client of one
AWS account and Region shares SageMaker's limits. A request the bucket of its
family cannot serve is answered ThrottlingException (see `Injector.decide`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["AccountLimits", "TokenBucket", "family_of"]


def family_of(operation: str) -> str:
    """Return the rate-limit family of *operation*: its leading verb, lowercased.

    Example:
        >>> family_of("DescribeOptimizationJob")
        'describe'
    """
    for i, char in enumerate(operation[1:], 1):
        if char.isupper():
            return operation[:i].lower()
    return operation.lower()


class TokenBucket:
    """A token bucket: *burst* requests at once, refilled at *rate* per second.

    Over any window of *w* seconds it grants at most ``burst + rate * w``
    requests, which is what the mock's ground truth lets tests check.

    Args:
        rate: Tokens added per second.
        burst: Bucket capacity; the bucket starts full.
        clock: Monotonic seconds.

    Example:
        >>> bucket = TokenBucket(rate=1.0, burst=2.0, clock=lambda: 0.0)
        >>> [bucket.try_acquire() for _ in range(3)]
        [True, True, False]
    """

    __slots__ = ("_clock", "_tokens", "_updated", "burst", "rate")

    def __init__(
        self, *, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0 < rate < math.inf:
            raise ValueError(f"rate must be > 0 tokens per second, got {rate!r}")
        if not 1 <= burst < math.inf:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()

    def try_acquire(self, now: float | None = None) -> bool:
        """Take one token if there is one; return whether it was taken."""
        if now is None:
            now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class AccountLimits:
    """One token bucket per operation family, rebuilt full whenever its limit changes.

    Args:
        clock: Monotonic seconds, for the buckets.

    Example:
        >>> limits = AccountLimits(clock=lambda: 0.0)
        >>> [limits.admit("describe", 1.0, 2.0, now=0.0) for _ in range(3)]
        [True, True, False]
        >>> limits.admit("describe", None, None, now=0.0)  # the limit lifted
        True
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, TokenBucket | None] = {}
        self._limits: dict[str, tuple[float | None, float | None]] = {}

    def admit(self, family: str, rate: float | None, burst: float | None, now: float) -> bool:
        """Return whether a request of *family* arriving at *now* is within its limit.

        Args:
            family: The operation family ("describe", "list").
            rate: Its requests per second; None is unlimited.
            burst: Its bucket size; None is one second's worth (at least 1).
            now: The arrival time, monotonic seconds.
        """
        if self._limits.get(family) != (rate, burst):
            # The limit changed (or is new): start a fresh, full bucket for it.
            self._buckets[family] = (
                None
                if rate is None
                else TokenBucket(rate=rate, burst=burst or max(1.0, rate), clock=self.clock)
            )
            self._limits[family] = (rate, burst)
        bucket = self._buckets[family]
        return bucket is None or bucket.try_acquire(now)

    def reset(self) -> None:
        """Refill every bucket."""
        self._buckets.clear()
        self._limits.clear()
