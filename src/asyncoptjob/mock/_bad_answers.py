"""Bad answers: HTTP 200 responses a client must not take at their word.

Each kind names what the wire carries, and is the outcome the ledger records
for the request. Describe answers can be cut short (not JSON), lack
``OptimizationJobStatus``, carry it as a number, or carry a well-formed status
SageMaker does not document; List answers can loop on one ``NextToken`` or
repeat an entry across pages (those two are made in `_listing`, where the
pages are). Which request gets which is the `Injector`'s decision.
"""

from __future__ import annotations

import json
from typing import Final

from ._lifecycle import STATUSES
from ._wire import dumps

__all__ = [
    "DESCRIBE_KINDS",
    "OK",
    "DUPLICATE_LIST",
    "MALFORMED",
    "MISSING_STATUS",
    "MISTYPED_STATUS",
    "STUCK_LIST",
    "UNKNOWN_STATUS",
    "corrupt",
]

#: The outcome of a good answer.
OK: Final = "ok"
#: Cut mid-document: a 200 whose body is not JSON (any operation).
MALFORMED: Final = "malformed"
#: A Describe answer without ``OptimizationJobStatus``.
MISSING_STATUS: Final = "missing_status"
#: A Describe answer whose ``OptimizationJobStatus`` is a number.
MISTYPED_STATUS: Final = "mistyped_status"
#: A Describe answer whose ``OptimizationJobStatus`` is well formed but unknown.
UNKNOWN_STATUS: Final = "unknown_status"
#: A List answer with no summaries and a NextToken that answers itself forever.
STUCK_LIST: Final = "stuck_list"
#: A List page that repeats the previous page's last entry.
DUPLICATE_LIST: Final = "duplicate_list"

#: The bad Describe answers, in the order a request meets them when several apply.
DESCRIBE_KINDS: Final = (MALFORMED, MISSING_STATUS, MISTYPED_STATUS, UNKNOWN_STATUS)

_STATUS: Final = "OptimizationJobStatus"


def corrupt(body: bytes, kind: str, *, unknown_status: str = "PAUSED") -> bytes:
    """Return the bad answer of *kind* made from the good serialized *body*.

    Args:
        body: A successful response body (a Describe answer for every kind but
            `MALFORMED`).
        kind: One of `DESCRIBE_KINDS`.
        unknown_status: The status an `UNKNOWN_STATUS` answer carries.

    Example:
        >>> good = b'{"OptimizationJobName":"a","OptimizationJobStatus":"COMPLETED"}'
        >>> corrupt(good, MISSING_STATUS)
        b'{"OptimizationJobName":"a"}'
        >>> corrupt(good, MISTYPED_STATUS)
        b'{"OptimizationJobName":"a","OptimizationJobStatus":1}'
        >>> corrupt(good, UNKNOWN_STATUS, unknown_status="PAUSED")
        b'{"OptimizationJobName":"a","OptimizationJobStatus":"PAUSED"}'
    """
    if kind == MALFORMED:
        # Cut mid-document, so the body is not valid JSON (and never empty).
        return body[: max(1, len(body) // 2)] + b"\x00"
    document = json.loads(body)
    if kind == MISSING_STATUS:
        del document[_STATUS]
    elif kind == MISTYPED_STATUS:
        # The status's position in the service model's list, as a leaked enum ordinal would be.
        document[_STATUS] = STATUSES.index(document[_STATUS])
    elif kind == UNKNOWN_STATUS:
        document[_STATUS] = unknown_status
    else:
        raise ValueError(f"unknown bad answer {kind!r}: use one of {DESCRIBE_KINDS}")
    return dumps(document).encode()
