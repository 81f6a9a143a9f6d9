"""`Faults`: what the mock endpoint does wrong, as plain configuration.

It is mutable while the server runs, so a test can open and close a
throttling storm, and every assignment is validated (a `ValueError` that
names the field). The `Injector` reads it afresh on every AWS request and
turns it into one decision; the account-wide rate limit itself is in
`_limits`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from ._lifecycle import STATUSES
from ._wire import NAME_PATTERN

__all__ = ["NOT_FOUND_CODES", "Faults"]

#: The ways a mock Describe can answer for a missing job.
NOT_FOUND_CODES = ("ResourceNotFound", "ValidationException")

_CODE_PATTERN: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.#]{0,127}")
# Well formed as SageMaker's enums are: capitals, digits and underscores.
_STATUS_PATTERN: Final = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rate(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not 0 < value < math.inf:
        raise ValueError(
            f"{name} must be None (unlimited) or requests per second > 0, got {value!r}"
        )
    return float(value)


def _burst(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not 1 <= value < math.inf:
        raise ValueError(f"{name} must be None (one second of rate) or >= 1, got {value!r}")
    return float(value)


def _fraction(name: str, value: Any) -> float:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a fraction between 0 and 1, got {value!r}")
    return float(value)


def _milliseconds(name: str, value: Any) -> float:
    if not _is_number(value) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be milliseconds >= 0, got {value!r}")
    return float(value)


def _lag(name: str, value: Any) -> float:
    if not _is_number(value) or not 0 <= value <= math.inf:
        raise ValueError(f"{name} must be seconds >= 0 (inf: never), got {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if not _is_integer(value) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _error_code(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _CODE_PATTERN.fullmatch(value):
        raise ValueError(
            f"{name} must be None or an AWS error code such as "
            f"'AccessDeniedException', got {value!r}"
        )
    return value


def _error_status(name: str, value: Any) -> int:
    if not _is_integer(value) or not 400 <= value <= 599:
        raise ValueError(f"{name} must be an HTTP status 400-599, got {value!r}")
    return int(value)


def _not_found_code(name: str, value: Any) -> str:
    if value not in NOT_FOUND_CODES:
        raise ValueError(f"{name} must be one of {', '.join(NOT_FOUND_CODES)}, got {value!r}")
    return str(value)


def _job_names(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)) and all(
        isinstance(job, str) and NAME_PATTERN.fullmatch(job) for job in value
    ):
        return tuple(value)
    raise ValueError(f"{name} must be a list of job names such as ['job-00001'], got {value!r}")


def _unknown_status(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _STATUS_PATTERN.fullmatch(value) or value in STATUSES:
        raise ValueError(
            f"{name} must be a status SageMaker does not have, in capitals (such as "
            f"'PAUSED'), not one of {', '.join(STATUSES)}; got {value!r}"
        )
    return value


_VALIDATORS: Final[Mapping[str, Callable[[str, Any], Any]]] = {
    "describe_rate": _rate,
    "describe_burst": _burst,
    "list_rate": _rate,
    "list_burst": _burst,
    "throttle_rate": _fraction,
    "latency_ms": _milliseconds,
    "latency_jitter_ms": _milliseconds,
    "error_rate": _fraction,
    "drop_rate": _fraction,
    "malformed_rate": _fraction,
    "error_code": _error_code,
    "error_code_rate": _fraction,
    "error_code_status": _error_status,
    "empty_list_pages": _count,
    "list_lag": _lag,
    "list_hidden_jobs": _job_names,
    "not_found_code": _not_found_code,
    "malformed_jobs": _job_names,
    "missing_status_rate": _fraction,
    "missing_status_jobs": _job_names,
    "mistyped_status_rate": _fraction,
    "mistyped_status_jobs": _job_names,
    "unknown_status": _unknown_status,
    "unknown_status_rate": _fraction,
    "unknown_status_jobs": _job_names,
    "stuck_list_rate": _fraction,
    "duplicate_list_rate": _fraction,
}


def _validate(name: str, value: Any) -> Any:
    """Return *value* checked (and normalized) for the `Faults` field *name*."""
    validator = _VALIDATORS.get(name)
    if validator is None:
        raise ValueError(f"unknown fault field {name!r}: use one of {sorted(_VALIDATORS)}")
    return validator(name, value)


@dataclass(slots=True)
class Faults:
    """What the mock endpoint does wrong; change any field while it runs.

    Every assignment is validated (`ValueError` naming the field). Faults
    apply to AWS operations only, never to the ``/_mock/`` control path.
    Every default keeps the endpoint well behaved.

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
        list_hidden_jobs: Jobs ListOptimizationJobs never shows (a List entry
            missing for good); Describe still answers for them.
        not_found_code: How Describe says a job is missing: ``"ResourceNotFound"``
            (DescribeOptimizationJob's documented error) or ``"ValidationException"``
            with a "Could not find ..." message, as other SageMaker Describe calls do.
        malformed_jobs: Jobs whose every successful Describe is answered 200
            with a truncated JSON body (malformed_rate picks requests at random).
        missing_status_rate: Fraction of successful Describe answers sent
            without ``OptimizationJobStatus``.
        missing_status_jobs: Jobs whose every successful Describe answer is
            sent without it.
        mistyped_status_rate: Fraction of successful Describe answers whose
            ``OptimizationJobStatus`` is a number (the status's position in the
            service model's list) instead of a string.
        mistyped_status_jobs: Jobs whose every successful Describe answer
            carries it as a number.
        unknown_status: The well-formed status the unknown-status faults send;
            never one of SageMaker's six.
        unknown_status_rate: Fraction of successful Describe answers whose
            ``OptimizationJobStatus`` is unknown_status (the rest of the body is
            the job's true description).
        unknown_status_jobs: Jobs whose every successful Describe answer
            carries unknown_status.
        stuck_list_rate: Fraction of ListOptimizationJobs answers that start an
            endless listing: no summaries and a NextToken which, sent back,
            answers the same (no summaries, the same token) forever. A listing
            started afresh runs normally unless it is picked again.
        duplicate_list_rate: Fraction of List pages after the first that repeat
            the previous page's last entry before their own (MaxResults new
            entries besides, so the listing still ends).

    A Describe answer meets at most one of the bad-answer faults (malformed,
    missing, mistyped or unknown status): the named jobs first, then the
    fractions, each in that order. The request log and counters record such an
    answer under the fault's name (``"malformed"``, ``"missing_status"``,
    ``"mistyped_status"``, ``"unknown_status"``, ``"stuck_list"``,
    ``"duplicate_list"``) instead of ``"ok"``.

    Example:
        >>> faults = Faults(describe_rate=10, latency_ms=5)
        >>> faults.throttle_rate = 0.5  # open a throttling storm
        >>> faults.update(throttle_rate=0.0, error_rate=0.01)
        >>> faults.error_rate
        0.01
        >>> faults.update(unknown_status="PAUSED", unknown_status_jobs=["job-00003"])
        >>> faults.unknown_status_jobs
        ('job-00003',)
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
    list_hidden_jobs: tuple[str, ...] = ()
    not_found_code: str = "ResourceNotFound"
    malformed_jobs: tuple[str, ...] = ()
    missing_status_rate: float = 0.0
    missing_status_jobs: tuple[str, ...] = ()
    mistyped_status_rate: float = 0.0
    mistyped_status_jobs: tuple[str, ...] = ()
    unknown_status: str = "PAUSED"
    unknown_status_rate: float = 0.0
    unknown_status_jobs: tuple[str, ...] = ()
    stuck_list_rate: float = 0.0
    duplicate_list_rate: float = 0.0

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
