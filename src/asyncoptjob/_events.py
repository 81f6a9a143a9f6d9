"""What watchers receive: job statuses and events."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from types_aiobotocore_sagemaker.type_defs import DescribeOptimizationJobResponseTypeDef

    Description = DescribeOptimizationJobResponseTypeDef
    """A DescribeOptimizationJob response as botocore parses it: a ``dict`` whose keys and
    value types are those of ``DescribeOptimizationJobResponseTypeDef`` (what
    ``wait_until_done`` returns and ``StatusChange.description`` holds)."""
else:
    Description = dict

__all__ = ["Description", "Event", "JobErrorEvent", "JobStatus", "StatusChange"]


class JobStatus(str, enum.Enum):
    """A job's status, equal to the API's string (``JobStatus.FAILED == "FAILED"``)."""

    STARTING = "STARTING"
    INPROGRESS = "INPROGRESS"
    STOPPING = "STOPPING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

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
        return _RANK[self]

    def __str__(self) -> str:
        return self.value


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
        description: the DescribeOptimizationJob response, as botocore parsed it.
        observed_at: when the response arrived (timezone-aware UTC wall clock).
    """

    job_name: str
    previous_status: JobStatus | None
    status: JobStatus
    description: Description = field(repr=False, compare=False)
    observed_at: datetime

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


def description_status(description: Any) -> JobStatus:
    """Return the status in a describe response; raise ``ValueError`` if there is none."""
    return JobStatus(description["OptimizationJobStatus"])
