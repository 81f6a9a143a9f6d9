"""What watchers receive: job statuses and events."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from types_aiobotocore_sagemaker.type_defs import (
        DescribeOptimizationJobResponseTypeDef,
        OptimizationJobSummaryTypeDef,
    )

    Description = DescribeOptimizationJobResponseTypeDef
    """A DescribeOptimizationJob response as botocore parses it: a ``dict`` whose keys and
    value types are those of ``DescribeOptimizationJobResponseTypeDef`` (what
    ``wait_until_done`` returns and ``StatusChange.description`` holds)."""
    JobSummary = OptimizationJobSummaryTypeDef
    """One entry of a ListOptimizationJobs page as botocore parses it: a ``dict`` whose
    keys and value types are those of ``OptimizationJobSummaryTypeDef`` (name, ARN,
    status, creation, start, end and last-modified times, instance type, optimization
    types; no ``FailureReason`` and no outputs). ``StatusChange.summary`` holds one."""
else:
    Description = dict
    JobSummary = dict

__all__ = [
    "Description",
    "Event",
    "EventSource",
    "JobErrorEvent",
    "JobStatus",
    "JobSummary",
    "StatusChange",
]

EventSource = Literal["describe", "list"]
"""Where a :class:`StatusChange` came from: a describe answer, or a List sweep's entry."""


class JobStatus(str, enum.Enum):
    """A job's status, equal to the API's string (``JobStatus.FAILED == "FAILED"``).

    A status the API gains after this release is reported, not rejected:
    ``JobStatus("PAUSED")`` is a status of its own (``is_known`` False), never terminal,
    ranked with INPROGRESS; the job keeps being polled, and the first sight of each such
    value is logged once at warning level (``unknown_job_status``).
    """

    STARTING = "STARTING"
    INPROGRESS = "INPROGRESS"
    STOPPING = "STOPPING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @classmethod
    def _missing_(cls, value: object) -> JobStatus | None:
        # A well-formed status the library does not know yet: one member per value,
        # made the first time it is seen (identity holds, as for the known ones).
        if not isinstance(value, str) or not value or not value.isprintable() or len(value) > 64:
            return None
        with _UNKNOWN_LOCK:
            member = cls._value2member_map_.get(value)
            if member is None:
                member = str.__new__(cls, value)
                member._name_ = value
                member._value_ = value
                cls._value2member_map_[value] = member
                _log_unknown(value)
        return member  # type: ignore[return-value]

    @property
    def is_known(self) -> bool:
        """False for a status this release of the library does not know."""
        return self in _RANK

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and STOPPED: the job will not change again."""
        return self in _TERMINAL

    @property
    def rank(self) -> int:
        """Place in the forward order STARTING < INPROGRESS < STOPPING < terminal.

        Statuses only move forward: an answer ranked below a status already seen is
        stale (an eventually consistent List, an old owner's late answer in a fleet).
        """
        return _RANK.get(self, _UNKNOWN_RANK)

    def __str__(self) -> str:
        return self.value


#: The statuses this release knows, by value (a lookup that never makes a new one).
KNOWN_STATUSES: dict[object, JobStatus] = {status.value: status for status in JobStatus}
KNOWN_STATUSES.update({status: status for status in JobStatus})

#: Where a status the library does not know stands in the forward order: with INPROGRESS.
_UNKNOWN_RANK = 1
_UNKNOWN_LOCK = threading.Lock()


def _log_unknown(value: str) -> None:
    from ._log import get_logger

    get_logger().warning(
        "unknown_job_status",
        status=value,
        note="reported as not terminal; the job keeps being polled",
    )


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED})
_RANK = {
    JobStatus.STARTING: 0,
    JobStatus.INPROGRESS: 1,
    JobStatus.STOPPING: 2,
    JobStatus.COMPLETED: 3,
    JobStatus.FAILED: 3,
    JobStatus.STOPPED: 3,
}


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A job was seen in a new status.

    Attributes:
        job_name: the optimization job's name.
        previous_status: the status this watcher saw before, ``None`` on its first observation.
        status: the status now.
        description: the DescribeOptimizationJob response, as botocore parsed it. For
            an event from List (``source == "list"``) it is partial: the fields the List
            entry shares with a describe (name, ARN, status, the times, the instance
            type), without ``FailureReason`` or outputs.
        observed_at: when the response arrived (timezone-aware UTC wall clock).
        source: ``"describe"`` (the default), or ``"list"`` for a non-terminal change a
            sweep reported with ``SweepPolicy(confirm="terminal")``. A terminal event
            always comes from a describe.
        summary: the List entry the event came from (``source == "list"``), else None.
    """

    job_name: str
    previous_status: JobStatus | None
    status: JobStatus
    description: Description = field(repr=False, compare=False)
    observed_at: datetime
    source: EventSource = "describe"
    summary: JobSummary | None = field(default=None, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """True when ``status`` is COMPLETED, FAILED or STOPPED."""
        return self.status.is_terminal


@dataclass(frozen=True, slots=True)
class JobErrorEvent:
    """A job could not be watched to its end; it is the job's terminal outcome.

    Attributes:
        job_name: the optimization job's name.
        error: why, e.g. :class:`~asyncoptjob.JobNotFoundError` once the grace period ran out.
    """

    job_name: str
    error: Exception

    @property
    def is_terminal(self) -> bool:
        """Always True: no more events follow for this job."""
        return True


Event: TypeAlias = StatusChange | JobErrorEvent
"""What ``watch()`` yields."""


def summary_description(summary: JobSummary) -> Description:
    """The fields of a List entry a describe answer has too: a partial description."""
    return {key: value for key, value in summary.items() if key != "OptimizationTypes"}  # type: ignore[return-value]


def description_status(description: Any) -> JobStatus:
    """Return the status in a describe response; raise ``ValueError`` if there is none."""
    return JobStatus(description["OptimizationJobStatus"])
