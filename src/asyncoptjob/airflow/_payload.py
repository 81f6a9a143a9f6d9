"""The TriggerEvent payloads of an optimization job, in the Amazon provider's convention.

``status`` is ``"success"`` when the job COMPLETED and ``"error"`` otherwise (FAILED,
STOPPED, or a job that could not be watched), as the provider's AWS triggers report;
``job_status`` and ``failure_reason`` say which.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from .._events import JobStatus

__all__ = ["SUCCESS", "ERROR", "error_payload", "jsonable", "payload_of"]

SUCCESS = "success"
ERROR = "error"


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO 8601 strings: what a TriggerEvent and XCom can hold."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def payload_of(job_name: str, description: Any) -> dict[str, Any]:
    """The payload for a terminal description."""
    job_status = str(description.get("OptimizationJobStatus", ""))
    failure_reason = description.get("FailureReason")
    ok = job_status == JobStatus.COMPLETED
    if ok:
        message = f"optimization job {job_name} completed"
    else:
        message = f"optimization job {job_name} ended {job_status}" + (
            f": {failure_reason}" if failure_reason else ""
        )
    return {
        "status": SUCCESS if ok else ERROR,
        "job_name": job_name,
        "job_status": job_status,
        "failure_reason": failure_reason,
        "message": message,
        "description": jsonable(description),
    }


def error_payload(job_name: str, error: BaseException) -> dict[str, Any]:
    """The payload for a job that could not be watched (not found, access denied, ...)."""
    reason = f"{type(error).__name__}: {error}"
    return {
        "status": ERROR,
        "job_name": job_name,
        "job_status": None,
        "failure_reason": reason,
        "message": f"optimization job {job_name} could not be watched: {reason}",
        "description": None,
    }
