"""Events as JSON lines: the ``--output jsonl`` format of ``asyncoptjob watch``."""

from __future__ import annotations

import json
from typing import Any

from .. import Event, JobErrorEvent, TransportError
from ._board import failure_reason

__all__ = ["event_record", "event_to_json"]


def event_record(event: Event) -> dict[str, Any]:
    """The JSON-ready dict of one event.

    A status change has ``job_name``, ``previous_status``, ``status``, ``observed_at``
    (ISO 8601, UTC) and ``failure_reason`` when AWS gave one. A job error has
    ``job_name``, ``error`` (the exception's class), ``message`` and, for AWS
    failures, ``code``.

    Example:
        >>> from datetime import datetime, timezone
        >>> from asyncoptjob import JobStatus, StatusChange
        >>> at = datetime(2024, 1, 1, tzinfo=timezone.utc)
        >>> event_record(StatusChange("job-a", None, JobStatus.STARTING, {}, at))
        {'job_name': 'job-a', 'previous_status': None, 'status': 'STARTING', 'observed_at': '2024-01-01T00:00:00+00:00'}
    """  # noqa: E501  (a doctest's output line cannot be wrapped)
    if isinstance(event, JobErrorEvent):
        record: dict[str, Any] = {
            "job_name": event.job_name,
            "error": type(event.error).__name__,
            "message": str(event.error),
        }
        if isinstance(event.error, TransportError) and event.error.code:
            record["code"] = event.error.code
        return record
    record = {
        "job_name": event.job_name,
        "previous_status": event.previous_status.value if event.previous_status else None,
        "status": event.status.value,
        "observed_at": event.observed_at.isoformat(),
    }
    reason = failure_reason(event)
    if reason is not None:
        record["failure_reason"] = reason
    return record


def event_to_json(event: Event) -> str:
    """One event as one line of JSON (no trailing newline)."""
    return json.dumps(event_record(event), ensure_ascii=False, separators=(",", ":"))
