"""A transport answered by a function: unit tests of code built on a Poller, no HTTP."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import anyio.lowlevel

from .._errors import JobNotFoundError
from .._events import JobStatus
from .._operations import DESCRIBE, LIST

if TYPE_CHECKING:
    from types_aiobotocore_sagemaker.type_defs import ListOptimizationJobsResponseTypeDef

    from .._clock import Clock
    from .._events import Description

__all__ = ["FakeRequest", "FakeTransport", "Handler", "ScriptedJobs", "describe_response"]

_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One call the library made through a :class:`FakeTransport`.

    Attributes:
        operation: ``"DescribeOptimizationJob"`` or ``"ListOptimizationJobs"``.
        params: the request parameters as the API names them
            (``{"OptimizationJobName": ...}``, or List's ``MaxResults``, ``NextToken``, ...).
    """

    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def job_name(self) -> str | None:
        """The described job's name (None for List)."""
        name = self.params.get("OptimizationJobName")
        return name if isinstance(name, str) else None


#: What a handler returns: a response dict, or an exception to raise (or it raises it).
Response = Mapping[str, Any] | BaseException
Handler = Callable[[FakeRequest], Response | Awaitable[Response]]
"""What `FakeTransport` calls for each request: it returns (or awaits) a response dict,
or returns or raises an exception (one of the library's errors, such as `ThrottledError`)."""


class FakeTransport:
    """A :class:`~asyncoptjob.Transport` whose answers come from ``handler(request)``.

    In the spirit of httpx's ``MockTransport``: the handler gets a
    :class:`FakeRequest` and returns the response dict (shaped like AWS's, see
    :func:`describe_response`), or returns or raises one of the library's errors
    (:class:`~asyncoptjob.ThrottledError`, :class:`~asyncoptjob.JobNotFoundError`, ...)
    to make the call fail that way. It may be a coroutine function. Every request is
    recorded in :attr:`requests`.

    Example::

        def handler(request: FakeRequest) -> dict[str, Any]:
            return describe_response(request.job_name, "COMPLETED")

        description = await wait_until_done("job-a", transport=FakeTransport(handler))

    Args:
        handler: the function from a request to its response or error.
    """

    __slots__ = ("handler", "requests")

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        #: Every request made, in order.
        self.requests: list[FakeRequest] = []

    async def describe(self, name: str) -> Description:
        """Answer DescribeOptimizationJob through the handler."""
        answer: Description = await self._handle(
            FakeRequest(DESCRIBE, {"OptimizationJobName": name})
        )
        return answer

    async def list_jobs(self, **params: Any) -> ListOptimizationJobsResponseTypeDef:
        """Answer ListOptimizationJobs through the handler."""
        page: ListOptimizationJobsResponseTypeDef = await self._handle(FakeRequest(LIST, params))
        return page

    def count(self, operation: str = DESCRIBE, job_name: str | None = None) -> int:
        """How many requests of ``operation`` (for ``job_name``, if given) were made."""
        return sum(
            1
            for request in self.requests
            if request.operation == operation and (job_name is None or request.job_name == job_name)
        )

    async def _handle(self, request: FakeRequest) -> Any:
        self.requests.append(request)
        # A real call always yields to the event loop; so does this one.
        await anyio.lowlevel.checkpoint()
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, BaseException):
            raise answer
        if not isinstance(answer, Mapping):
            raise TypeError(
                f"a FakeTransport handler must return a response dict or an exception, "
                f"got {type(answer).__name__} for {request.operation}"
            )
        return dict(answer)

    def __repr__(self) -> str:
        return f"<FakeTransport handler={self.handler!r} requests={len(self.requests)}>"


def describe_response(
    name: str,
    status: str | JobStatus,
    *,
    last_modified: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A DescribeOptimizationJob response for ``name`` in ``status``, shaped like AWS's.

    Args:
        name: the job's name.
        status: its ``OptimizationJobStatus``.
        last_modified: its ``LastModifiedTime`` (default: a fixed date).
        **extra: more fields, e.g. ``FailureReason="out of memory"``.
    """
    value = JobStatus(status).value
    response: dict[str, Any] = {
        "OptimizationJobName": name,
        "OptimizationJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:optimization-job/{name}",
        "OptimizationJobStatus": value,
        "CreationTime": _EPOCH,
        "LastModifiedTime": last_modified or _EPOCH,
        "DeploymentInstanceType": "ml.g5.2xlarge",
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "OptimizationConfigs": [],
    }
    if value == JobStatus.FAILED.value:
        response["FailureReason"] = "the job failed"
    response.update(extra)
    return response


class ScriptedJobs:
    """A handler for jobs whose statuses change at set times of a clock.

    ``ScriptedJobs(clock, {"job-a": [(0, "STARTING"), (30, "INPROGRESS"), (90,
    "COMPLETED")]})`` answers a describe of ``job-a`` with the last status whose time
    has come on ``clock`` (a :class:`ManualClock`, usually); before its first time, or
    for a name it does not know, it answers :class:`~asyncoptjob.JobNotFoundError`.
    A List call gets every job that exists, in one page (List is only a hint to the
    hub: it describes the jobs whose listed status is news).

    Args:
        clock: the clock the times are on.
        scripts: for each job, ``(time, status)`` pairs in time order.
    """

    def __init__(
        self, clock: Clock, scripts: Mapping[str, Iterable[tuple[float, str | JobStatus]]]
    ) -> None:
        self.clock = clock
        self.scripts = {
            name: [(float(t), JobStatus(status)) for t, status in steps]
            for name, steps in scripts.items()
        }

    def status(self, name: str) -> tuple[float, JobStatus] | None:
        """The job's current ``(since, status)``, None if it does not exist (yet)."""
        now = self.clock.now()
        current = None
        for step in self.scripts.get(name, ()):
            if step[0] > now:
                break
            current = step
        return current

    def __call__(self, request: FakeRequest) -> Response:
        if request.operation == LIST:
            return self._list(request.params)
        name = request.job_name or ""
        current = self.status(name)
        if current is None:
            return JobNotFoundError(
                f"Could not find optimization job '{name}'.",
                code="ResourceNotFound",
                operation=DESCRIBE,
                job_name=name,
            )
        since, status = current
        return describe_response(name, status, last_modified=_EPOCH + timedelta(seconds=since))

    def _list(self, params: Mapping[str, Any]) -> dict[str, Any]:
        summaries = []
        for name in self.scripts:
            current = self.status(name)
            if current is not None:
                summaries.append(
                    {
                        "OptimizationJobName": name,
                        "OptimizationJobStatus": current[1].value,
                        "LastModifiedTime": _EPOCH + timedelta(seconds=current[0]),
                    }
                )
        return {"OptimizationJobSummaries": summaries}
