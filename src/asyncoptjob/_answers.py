"""What an answer must hold, checked once at the boundary, whatever the transport.

Every describe and List answer passes through these checks on its way from the
transport (aiobotocore, the testing kit's fake, or a user's own) to the hub, inside the
request pipeline's retried call: an answer that lacks what the library needs, or holds
it with the wrong type, is a :class:`~asyncoptjob.TransientError` with the code
``MalformedResponse``, retried under the retry policy like any transient failure, and
ending only that job (or failing only that sweep) if it persists. A well-formed status
the library does not know is not malformed: it is reported (see ``JobStatus``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from ._errors import TransientError
from ._operations import DESCRIBE, LIST

if TYPE_CHECKING:
    from types_aiobotocore_sagemaker.type_defs import ListOptimizationJobsResponseTypeDef

    from ._events import Description

__all__ = ["MALFORMED", "check_description", "check_page"]

#: The error code of an answer that lacks what the library needs.
MALFORMED = "MalformedResponse"


def _status_ok(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable()


def check_description(name: str, answer: object) -> Description:
    """``answer`` as a description of ``name``, or :class:`TransientError` (malformed)."""
    status = answer.get("OptimizationJobStatus") if isinstance(answer, Mapping) else None
    if not _status_ok(status):
        shown = f"{status!r}" if isinstance(answer, Mapping) else f"a {type(answer).__name__}"
        raise _malformed(answer, f"without a valid OptimizationJobStatus ({shown})", DESCRIBE, name)
    return cast("Description", answer)


def check_page(answer: object) -> ListOptimizationJobsResponseTypeDef:
    """``answer`` as a List page, judged as a whole, or :class:`TransientError`.

    Every summary must name a job and a status (strings); ``NextToken``, if any, must be
    a string (empty: no more pages).
    """
    problem = _page_problem(answer)
    if problem is not None:
        raise _malformed(answer, f"with a malformed page: {problem}", LIST, None)
    return cast("ListOptimizationJobsResponseTypeDef", answer)


def _page_problem(answer: object) -> str | None:
    if not isinstance(answer, Mapping):
        return f"a {type(answer).__name__}, not an object"
    summaries: Any = answer.get("OptimizationJobSummaries")
    if not isinstance(summaries, list):
        return "no OptimizationJobSummaries list"
    for summary in summaries:
        if not isinstance(summary, Mapping):
            return "a summary that is not an object"
        name = summary.get("OptimizationJobName")
        if not isinstance(name, str) or not name:
            return f"a summary without a job name ({name!r})"
        if not _status_ok(summary.get("OptimizationJobStatus")):
            return f"{name}: no valid OptimizationJobStatus"
    token = answer.get("NextToken")
    if token is not None and not isinstance(token, str):
        return f"a NextToken that is not a string ({token!r})"
    return None


def _malformed(answer: object, what: str, operation: str, job_name: str | None) -> TransientError:
    """The error of an answer that lacks what the library needs (still an answer: its
    HTTP status, when the transport kept one, tells the first-answer rule so)."""
    call = f"{operation}({job_name})" if job_name else operation
    meta = answer.get("ResponseMetadata") if isinstance(answer, Mapping) else None
    status = meta.get("HTTPStatusCode") if isinstance(meta, Mapping) else None
    return TransientError(
        f"{call} returned a response {what}",
        code=MALFORMED,
        operation=operation,
        job_name=job_name,
        http_status=status if isinstance(status, int) else None,
    )
