"""ListOptimizationJobs: filters, sorting, keyset paging, the empty-page quirk and bad pages.

Paging is by key, not by offset: the opaque NextToken holds the sort key of
the last job returned, and the next page starts strictly after it. Jobs
created, deleted or changing status between pages therefore never make an
unchanged job appear twice or be skipped. The token also fingerprints the
filters, so reusing it with different filters is a ValidationException, as
on AWS.

The quirk: some SageMaker List calls given ``LastModifiedTimeAfter`` return
empty pages that still carry a NextToken. With ``empty_pages=k`` the first
*k* pages of such a listing are empty, so a loop that stops at the first
empty page misses jobs, and one that never stops spins until throttled.

Two bad answers are made here too, where the pages are. A stuck listing
answers no summaries and a NextToken marked stuck, which answers itself
forever. A duplicate page starts with the job its NextToken points past (the
previous page's last entry) again, then carries its own page.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import heapq
import json
import math
import re
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple

from ._bad_answers import DUPLICATE_LIST, OK, STUCK_LIST
from ._lifecycle import STATUSES, Job
from ._sim import Simulation
from ._wire import AwsError, dumps, validation

__all__ = ["SORT_BY", "SORT_ORDER", "ListAnswer", "list_jobs"]

SORT_BY: Final = ("Name", "CreationTime", "Status")
SORT_ORDER: Final = ("Ascending", "Descending")
_CONTAINS_PATTERN: Final = re.compile(r"[a-zA-Z0-9\-]+")
_TIME_FILTERS: Final = (
    "CreationTimeAfter",
    "CreationTimeBefore",
    "LastModifiedTimeAfter",
    "LastModifiedTimeBefore",
)
# Sorts after every job name (names are ASCII), for bisecting on time alone.
_NAME_MAX: Final = "\U0010ffff"


def _field(member: str) -> str:
    return member[0].lower() + member[1:]


def _enum(request: Mapping[str, Any], member: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.get(member, default)
    if value not in allowed:
        raise validation(
            f"1 validation error detected: Value '{value}' at '{_field(member)}' failed to "
            f"satisfy constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
        )
    return str(value)


def _timestamp(request: Mapping[str, Any], member: str) -> float | None:
    value = request.get(member)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise validation(f"Value '{value}' at '{_field(member)}' is not a valid timestamp.")


def _contains(request: Mapping[str, Any], member: str) -> str | None:
    value = request.get(member)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 63 or not _CONTAINS_PATTERN.fullmatch(value):
        raise validation(
            f"1 validation error detected: Value '{value}' at '{_field(member)}' failed to "
            r"satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9\-]+"
        )
    return value.lower()


def _max_results(request: Mapping[str, Any]) -> int:
    value = request.get("MaxResults", 50)
    if not isinstance(value, int) or isinstance(value, bool):
        raise validation(f"Value '{value}' at 'maxResults' is not an integer.")
    if value < 1:
        bound = "greater than or equal to 1"
    elif value > 100:
        bound = "less than or equal to 100"
    else:
        return value
    raise validation(
        f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy "
        f"constraint: Member must have value {bound}"
    )


def _encode_token(fingerprint: int, cursor: Any, empties: int, *, stuck: bool = False) -> str:
    raw = dumps([fingerprint, cursor, empties, stuck]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _invalid_token() -> AwsError:
    return validation(
        "The NextToken is not valid for this request: pass the token from the previous "
        "response unchanged, with the same filters and sort."
    )


def _decode_token(token: object, fingerprint: int) -> tuple[Any, int, bool]:
    """Return the cursor, the empty pages still due, and whether the listing is stuck."""
    if not isinstance(token, str):
        raise _invalid_token()
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        raise _invalid_token() from None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 4
        or decoded[0] != fingerprint
        or not isinstance(decoded[2], int)
        or not isinstance(decoded[3], bool)
    ):
        raise _invalid_token()
    return decoded[1], decoded[2], decoded[3]


def _cursor_fits(cursor: Any, sort_by: str) -> bool:
    if sort_by == "Name":
        return isinstance(cursor, str)
    first = (int, float) if sort_by == "CreationTime" else str
    return (
        isinstance(cursor, list)
        and len(cursor) == 2
        and isinstance(cursor[0], first)
        and isinstance(cursor[1], str)
    )


def _summary(job: Job, now: float) -> dict[str, Any]:
    i = job.index(now)
    status = job.statuses[i]
    times = job.times
    summary: dict[str, Any] = {
        "OptimizationJobName": job.name,
        "OptimizationJobArn": job.arn,
        "CreationTime": times[0],
        "OptimizationJobStatus": status,
        "DeploymentInstanceType": job.instance_type,
        "OptimizationTypes": list(job.types),
        "LastModifiedTime": times[i],
    }
    if i and job.statuses[1] == "INPROGRESS":
        summary["OptimizationStartTime"] = times[1]
    if status in ("COMPLETED", "FAILED", "STOPPED"):
        summary["OptimizationEndTime"] = times[i]
    return summary


def _predicate(
    request: Mapping[str, Any], now: float, created_by: float = math.inf
) -> Callable[[Job], bool]:
    created_after, created_before, modified_after, modified_before = (
        _timestamp(request, member) for member in _TIME_FILTERS
    )
    name_contains = _contains(request, "NameContains")
    optimization_contains = _contains(request, "OptimizationContains")
    status_equals = request.get("StatusEquals")
    if status_equals is not None:
        _enum(request, "StatusEquals", STATUSES, "")

    def matches(job: Job) -> bool:
        if job.created > created_by:
            return False  # not visible to List yet
        if created_after is not None and not job.created > created_after:
            return False
        if created_before is not None and not job.created < created_before:
            return False
        if name_contains is not None and name_contains not in job.name.lower():
            return False
        if optimization_contains is not None and not any(
            optimization_contains in t.lower() for t in job.types
        ):
            return False
        if status_equals is None and modified_after is None and modified_before is None:
            return True
        i = job.index(now)
        if status_equals is not None and job.statuses[i] != status_equals:
            return False
        if modified_after is not None and not job.times[i] > modified_after:
            return False
        return modified_before is None or job.times[i] < modified_before

    return matches


def _candidates(
    sim: Simulation,
    sort_by: str,
    ascending: bool,
    cursor: Any,
    request: Mapping[str, Any],
    now: float,
    matches: Callable[[Job], bool],
    limit: int,
) -> Iterator[tuple[Any, Job]]:
    """Yield ``(sort key, job)`` in page order, strictly after *cursor*.

    Jobs may not match the filters, except when sorting by status, where
    only the first *limit* matches are yielded.
    """
    jobs = sim.jobs
    if sort_by == "CreationTime":
        index = sim.by_created
        lo, hi = 0, len(index)
        # The creation-time filters narrow the walk by bisection, not by scanning.
        after = _timestamp(request, "CreationTimeAfter")
        before = _timestamp(request, "CreationTimeBefore")
        if after is not None:
            lo = bisect.bisect_right(index, (after, _NAME_MAX))
        if before is not None:
            hi = bisect.bisect_left(index, (before, ""))
        if cursor is not None:
            created_key = (float(cursor[0]), str(cursor[1]))
            if ascending:
                lo = max(lo, bisect.bisect_right(index, created_key))
            else:
                hi = min(hi, bisect.bisect_left(index, created_key))
        positions = range(lo, hi) if ascending else range(hi - 1, lo - 1, -1)
        for position in positions:
            created, name = index[position]
            yield [created, name], jobs[name]
    elif sort_by == "Name":
        names = sim.by_name
        lo, hi = 0, len(names)
        if cursor is not None:
            if ascending:
                lo = bisect.bisect_right(names, str(cursor))
            else:
                hi = bisect.bisect_left(names, str(cursor))
        positions = range(lo, hi) if ascending else range(hi - 1, lo - 1, -1)
        for position in positions:
            name = names[position]
            yield name, jobs[name]
    else:
        # Status changes with time, so there is no standing index: select the
        # next page among the (status, name) keys of this moment.
        past: tuple[str, str] | None = None
        if cursor is not None:
            past = (str(cursor[0]), str(cursor[1]))

        def keyed() -> Iterator[tuple[tuple[str, str], Job]]:
            for job in jobs.values():
                key = (job.statuses[job.index(now)], job.name)
                beyond = past is None or (key > past if ascending else key < past)
                if beyond and matches(job):
                    yield key, job

        select = heapq.nsmallest if ascending else heapq.nlargest
        for (status, name), job in select(limit, keyed(), key=_first):
            yield [status, name], job


def _first(item: tuple[tuple[str, str], Job]) -> tuple[str, str]:
    return item[0]


class ListAnswer(NamedTuple):
    """A serialized ListOptimizationJobs response and what kind of answer it is.

    Attributes:
        body: The response body.
        outcome: ``"ok"``, or the bad answer it is (``"stuck_list"``,
            ``"duplicate_list"``).
    """

    body: bytes
    outcome: str


def _cursor_name(cursor: Any) -> str:
    # A Name cursor is the name; the others are [CreationTime or status, name].
    return cursor if isinstance(cursor, str) else str(cursor[1])


def list_jobs(
    sim: Simulation,
    request: Mapping[str, Any],
    *,
    empty_pages: int = 0,
    lag: float = 0.0,
    hidden: Collection[str] = (),
    stuck: bool = False,
    duplicate: bool = False,
) -> ListAnswer:
    """Handle ListOptimizationJobs, returning the serialized response.

    Args:
        sim: The jobs.
        request: The parsed request body.
        empty_pages: How many empty pages to answer first when the request
            has ``LastModifiedTimeAfter`` (the quirk); 0 disables it.
        lag: Seconds List trails the truth (eventual consistency): jobs are
            listed as they were ``lag`` seconds ago, and jobs created since
            are not listed yet.
        hidden: Jobs never listed (a List entry missing for good).
        stuck: Answer no summaries and a NextToken that answers itself
            forever (a listing already stuck stays stuck regardless).
        duplicate: Repeat the previous page's last entry (the one the
            NextToken points past) before this page's own entries.

    Raises:
        AwsError: ``ValidationException`` for a bad MaxResults, enum,
            filter or NextToken.
    """
    max_results = _max_results(request)
    sort_by = _enum(request, "SortBy", SORT_BY, "CreationTime")
    ascending = _enum(request, "SortOrder", SORT_ORDER, "Descending") == "Ascending"
    # List's view of the world: ``lag`` seconds old (eventual consistency).
    now = sim.clock() - lag
    # Only a lagging List hides young jobs (a wall clock stepping back must not).
    matches = _predicate(request, now, now if lag else math.inf)
    query = {k: request.get(k) for k in (*_TIME_FILTERS, "NameContains", "OptimizationContains")}
    query.update(StatusEquals=request.get("StatusEquals"), SortBy=sort_by, Ascending=ascending)
    fingerprint = zlib.crc32(dumps(query).encode())

    token = request.get("NextToken")
    quirk = empty_pages > 0 and request.get("LastModifiedTimeAfter") is not None
    if token is None:
        cursor, empties, looping = None, empty_pages if quirk else 0, False
    else:
        cursor, empties, looping = _decode_token(token, fingerprint)
    if looping or stuck:
        # The same token forever: the one sent, or one that says so itself.
        loop = token if looping else _encode_token(fingerprint, cursor, 0, stuck=True)
        return ListAnswer(_page([], loop), STUCK_LIST)
    if empties > 0:
        return ListAnswer(_page([], _encode_token(fingerprint, cursor, empties - 1)), OK)

    if cursor is not None and not _cursor_fits(cursor, sort_by):
        raise _invalid_token()
    summaries: list[dict[str, Any]] = []
    last_key: Any = None
    more = False
    for key, job in _candidates(
        sim, sort_by, ascending, cursor, request, now, matches, max_results + 1
    ):
        if not matches(job) or job.name in hidden:
            continue
        if len(summaries) == max_results:
            more = True
            break
        summaries.append(_summary(job, now))
        last_key = key
    next_token = _encode_token(fingerprint, last_key, 0) if more else None
    repeated = sim.jobs.get(_cursor_name(cursor)) if duplicate and cursor is not None else None
    if repeated is None:
        return ListAnswer(_page(summaries, next_token), OK)
    return ListAnswer(_page([_summary(repeated, now), *summaries], next_token), DUPLICATE_LIST)


def _page(summaries: list[dict[str, Any]], next_token: Any) -> bytes:
    response: dict[str, Any] = {"OptimizationJobSummaries": summaries}
    if next_token is not None:
        response["NextToken"] = next_token
    return dumps(response).encode()
