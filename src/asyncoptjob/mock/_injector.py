"""The fault decision: which fault, if any, one AWS request meets.

`Injector` reads the live `Faults` on every request and draws from its own
seeded RNG, so changing faults never shifts the jobs' schedules, and a fault
left at its default draws nothing: a seed replays the same decisions as long
as the same faults are on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Final

from ._bad_answers import MALFORMED, MISSING_STATUS, MISTYPED_STATUS, UNKNOWN_STATUS
from ._faults import Faults
from ._limits import AccountLimits
from ._wire import AwsError

__all__ = ["DESCRIBE", "DROP", "Drop", "Injector"]

#: The one operation whose answers the status faults corrupt.
DESCRIBE: Final = "DescribeOptimizationJob"

_FORCED_MESSAGES: Final[Mapping[str, str]] = {
    "AccessDeniedException": (
        "User: arn:aws:iam::123456789012:user/mock is not authorized to perform this "
        "action because no identity-based policy allows it"
    ),
    "ExpiredTokenException": "The security token included in the request is expired",
    "UnrecognizedClientException": "The security token included in the request is invalid.",
    "InvalidSignatureException": (
        "The request signature we calculated does not match the signature you provided."
    ),
    "ThrottlingException": "Rate exceeded",
}

_THROTTLED: Final = AwsError("ThrottlingException", "Rate exceeded", 400)
_INTERNAL: Final = AwsError("InternalFailure", "We encountered an internal error.", 500)
_UNAVAILABLE: Final = AwsError("ServiceUnavailable", "Service Unavailable", 503)


class Drop:
    """The decision to close the connection without answering."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = Drop()


class Injector:
    """Decide, per AWS request, which fault (if any) it meets.

    A request meets its faults in the order it would on the way through AWS:
    the connection (dropped), the account's rate limit and throttling, forced
    and internal errors, latency; then, once answered, a bad answer.

    Args:
        faults: The live configuration, read afresh on every request.
        rng: The seeded random source for fault draws.
        clock: Monotonic seconds, for the token buckets.
    """

    def __init__(
        self,
        faults: Faults,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.faults = faults
        self.rng = rng
        self.limits = AccountLimits(clock)

    def chance(self, fraction: float) -> bool:
        """Return True for a *fraction* of calls; a fraction of 0 draws nothing."""
        return bool(fraction) and self.rng.random() < fraction

    def decide(self, family: str, now: float) -> AwsError | Drop | None:
        """Return the fault for a request of *family* arriving at *now*, or None."""
        faults = self.faults
        if self.chance(faults.drop_rate):
            return DROP
        if family == "describe":
            limit = (faults.describe_rate, faults.describe_burst)
        elif family == "list":
            limit = (faults.list_rate, faults.list_burst)
        else:
            limit = (None, None)
        if not self.limits.admit(family, *limit, now=now):
            return _THROTTLED
        if self.chance(faults.throttle_rate):
            return _THROTTLED
        code = faults.error_code
        if code is not None and self.rng.random() < faults.error_code_rate:
            message = _FORCED_MESSAGES.get(
                code, f"Forced by the mock endpoint's error_code fault: {code}"
            )
            return AwsError(code, message, faults.error_code_status)
        if self.chance(faults.error_rate):
            return _INTERNAL if self.rng.random() < 0.5 else _UNAVAILABLE
        return None

    def latency(self) -> float:
        """Return the added latency for one request, in seconds."""
        faults = self.faults
        delay = faults.latency_ms
        if faults.latency_jitter_ms:
            delay += faults.latency_jitter_ms * self.rng.random()
        return delay / 1000.0

    def bad_answer(self, operation: str, job: object) -> str | None:
        """Return the bad answer a successful *operation* about *job* gets, or None.

        Args:
            operation: The operation answered, e.g. "DescribeOptimizationJob".
            job: The ``OptimizationJobName`` of the request, if any.

        Returns:
            One of the kinds in `_bad_answers` (malformed for any operation,
            the status faults for Describe only), or None for a good answer.
        """
        faults = self.faults
        describe = operation == DESCRIBE
        if describe:
            for kind, jobs in (
                (MALFORMED, faults.malformed_jobs),
                (MISSING_STATUS, faults.missing_status_jobs),
                (MISTYPED_STATUS, faults.mistyped_status_jobs),
                (UNKNOWN_STATUS, faults.unknown_status_jobs),
            ):
                if job in jobs:
                    return kind
        if self.chance(faults.malformed_rate):
            return MALFORMED
        if describe:
            for kind, fraction in (
                (MISSING_STATUS, faults.missing_status_rate),
                (MISTYPED_STATUS, faults.mistyped_status_rate),
                (UNKNOWN_STATUS, faults.unknown_status_rate),
            ):
                if self.chance(fraction):
                    return kind
        return None

    def reset(self) -> None:
        """Refill every rate-limit bucket."""
        self.limits.reset()
