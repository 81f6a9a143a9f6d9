"""Fault injection: what the mock does wrong, and the account-wide rate limit.

`Faults` is plain configuration, mutable while the server runs so a test can
open and close a throttling storm. `Injector` turns it into one decision per
AWS request, drawing from its own seeded RNG so changing faults never shifts
the jobs' schedules. The rate limit is a token bucket per operation family,
shared by every client, as AWS's per-account limits are.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from ._wire import AwsError

__all__ = ["DROP", "Drop", "Faults", "Injector", "TokenBucket", "family_of"]

_RATE_FIELDS: Final = ("describe_rate", "list_rate")
_BURST_FIELDS: Final = ("describe_burst", "list_burst")
_FRACTION_FIELDS: Final = (
    "throttle_rate",
    "error_rate",
    "drop_rate",
    "malformed_rate",
    "error_code_rate",
)
_MS_FIELDS: Final = ("latency_ms", "latency_jitter_ms")
_CODE_PATTERN: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.#]{0,127}")

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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: The ways a mock Describe can answer for a missing job.
NOT_FOUND_CODES = ("ResourceNotFound", "ValidationException")


def _validate(name: str, value: Any) -> Any:
    """Return *value* checked (and normalized) for the `Faults` field *name*."""
    if name in _RATE_FIELDS:
        if value is None:
            return None
        if not _is_number(value) or not 0 < value < math.inf:
            raise ValueError(
                f"{name} must be None (unlimited) or requests per second > 0, got {value!r}"
            )
        return float(value)
    if name in _BURST_FIELDS:
        if value is None:
            return None
        if not _is_number(value) or not 1 <= value < math.inf:
            raise ValueError(f"{name} must be None (one second of rate) or >= 1, got {value!r}")
        return float(value)
    if name in _FRACTION_FIELDS:
        if not _is_number(value) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a fraction between 0 and 1, got {value!r}")
        return float(value)
    if name in _MS_FIELDS:
        if not _is_number(value) or not 0 <= value < math.inf:
            raise ValueError(f"{name} must be milliseconds >= 0, got {value!r}")
        return float(value)
    if name == "error_code":
        if value is None:
            return None
        if not isinstance(value, str) or not _CODE_PATTERN.fullmatch(value):
            raise ValueError(
                f"error_code must be None or an AWS error code such as "
                f"'AccessDeniedException', got {value!r}"
            )
        return value
    if name == "error_code_status":
        if not isinstance(value, int) or isinstance(value, bool) or not 400 <= value <= 599:
            raise ValueError(f"error_code_status must be an HTTP status 400-599, got {value!r}")
        return value
    if name == "not_found_code":
        if value not in NOT_FOUND_CODES:
            raise ValueError(
                f"not_found_code must be one of {', '.join(NOT_FOUND_CODES)}, got {value!r}"
            )
        return value
    if name == "list_lag":
        if not _is_number(value) or not 0 <= value <= math.inf:
            raise ValueError(f"list_lag must be seconds >= 0 (inf: never), got {value!r}")
        return float(value)
    if name == "empty_list_pages":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"empty_list_pages must be an integer >= 0, got {value!r}")
        return value
    raise ValueError(f"unknown fault field {name!r}: use one of {sorted(_FIELD_NAMES)}")


@dataclass(slots=True)
class Faults:
    """What the mock endpoint does wrong; change any field while it runs.

    Every assignment is validated (`ValueError` naming the field). Faults
    apply to AWS operations only, never to the ``/_mock/`` control path.

    Attributes:
        describe_rate: Account-wide DescribeOptimizationJob requests per
            second before ThrottlingException; None is unlimited.
        describe_burst: Bucket size for describe_rate; None means one
            second's worth (at least 1).
        list_rate: The same for ListOptimizationJobs.
        list_burst: Bucket size for list_rate.
        throttle_rate: Fraction of requests throttled regardless of rate.
        latency_ms: Added latency per request.
        latency_jitter_ms: Extra latency drawn uniformly from 0 to this.
        error_rate: Fraction answered 500 InternalFailure or 503
            ServiceUnavailable (half each).
        drop_rate: Fraction whose connection is closed with no response.
        malformed_rate: Fraction answered 200 with a truncated JSON body.
        error_code: An AWS error code to force, e.g. "ExpiredTokenException".
        error_code_rate: Fraction of requests answered with error_code
            (default 1: every request, once error_code is set).
        error_code_status: HTTP status sent with error_code.
        empty_list_pages: Empty pages (with a NextToken) that a List with
            LastModifiedTimeAfter returns before its results.
        list_lag: Seconds a change takes to show in ListOptimizationJobs
            (eventual consistency): List reports every job as it was this
            long ago and omits jobs younger than that; Describe is always
            current. ``math.inf``: List never reports anything.
        not_found_code: How Describe says a job is missing: ``"ResourceNotFound"``
            (DescribeOptimizationJob's documented error) or ``"ValidationException"``
            with a "Could not find ..." message, as other SageMaker Describe calls do.

    Example:
        >>> faults = Faults(describe_rate=10, latency_ms=5)
        >>> faults.throttle_rate = 0.5  # open a throttling storm
        >>> faults.update(throttle_rate=0.0, error_rate=0.01)
        >>> faults.error_rate
        0.01
    """

    describe_rate: float | None = None
    describe_burst: float | None = None
    list_rate: float | None = None
    list_burst: float | None = None
    throttle_rate: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    error_code: str | None = None
    error_code_rate: float = 1.0
    error_code_status: int = 400
    empty_list_pages: int = 0
    list_lag: float = 0.0
    not_found_code: str = "ResourceNotFound"

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, _validate(name, value))

    def update(self, **changes: Any) -> None:
        """Apply several changes at once, or none if any is invalid.

        Raises:
            ValueError: Naming the first invalid or unknown field.
        """
        checked = {name: _validate(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Faults:
        """Build faults from JSON-like *data*.

        Raises:
            ValueError: On an unknown field or an invalid value.
        """
        faults = cls()
        faults.update(**data)
        return faults


_FIELD_NAMES: Final = frozenset(f.name for f in fields(Faults))


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


class Drop:
    """The decision to close the connection without answering."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = Drop()


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


_THROTTLED: Final = AwsError("ThrottlingException", "Rate exceeded", 400)
_INTERNAL: Final = AwsError("InternalFailure", "We encountered an internal error.", 500)
_UNAVAILABLE: Final = AwsError("ServiceUnavailable", "Service Unavailable", 503)


class Injector:
    """Decide, per AWS request, which fault (if any) it meets.

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
        self.clock = clock
        self._buckets: dict[str, TokenBucket | None] = {}
        self._bucket_config: dict[str, tuple[float | None, float | None]] = {}

    def _bucket(self, family: str) -> TokenBucket | None:
        faults = self.faults
        if family == "describe":
            config = (faults.describe_rate, faults.describe_burst)
        elif family == "list":
            config = (faults.list_rate, faults.list_burst)
        else:
            return None
        if self._bucket_config.get(family) != config:
            # The limit changed (or is new): start a fresh, full bucket for it.
            rate, burst = config
            self._buckets[family] = (
                None
                if rate is None
                else TokenBucket(rate=rate, burst=burst or max(1.0, rate), clock=self.clock)
            )
            self._bucket_config[family] = config
        return self._buckets.get(family)

    def decide(self, family: str, now: float) -> AwsError | Drop | None:
        """Return the fault for a request of *family* arriving at *now*, or None."""
        faults = self.faults
        rng = self.rng
        if faults.drop_rate and rng.random() < faults.drop_rate:
            return DROP
        bucket = self._bucket(family)
        if bucket is not None and not bucket.try_acquire(now):
            return _THROTTLED
        if faults.throttle_rate and rng.random() < faults.throttle_rate:
            return _THROTTLED
        code = faults.error_code
        if code is not None and rng.random() < faults.error_code_rate:
            message = _FORCED_MESSAGES.get(
                code, f"Forced by the mock endpoint's error_code fault: {code}"
            )
            return AwsError(code, message, faults.error_code_status)
        if faults.error_rate and rng.random() < faults.error_rate:
            return _INTERNAL if rng.random() < 0.5 else _UNAVAILABLE
        return None

    def latency(self) -> float:
        """Return the added latency for one request, in seconds."""
        faults = self.faults
        delay = faults.latency_ms
        if faults.latency_jitter_ms:
            delay += faults.latency_jitter_ms * self.rng.random()
        return delay / 1000.0

    def malformed(self) -> bool:
        """Return whether this successful response should be corrupted."""
        rate = self.faults.malformed_rate
        return bool(rate) and self.rng.random() < rate

    def reset(self) -> None:
        """Refill every bucket."""
        self._buckets.clear()
        self._bucket_config.clear()
