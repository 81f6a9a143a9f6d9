"""Bad answers over real HTTP: 200s whose body lies, and List pages that never end or repeat.

Each fault mode is shown on the wire (raw HTTP with aiohttp) and as botocore parses it
(aiobotocore), for named jobs and for a fraction of requests, beside jobs whose answers
stay good.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import PaginationError

from asyncoptjob.mock import Lifecycle, MockSageMaker

ClientFactory = Callable[..., AbstractAsyncContextManager[Any]]

#: Jobs that stay INPROGRESS, so a status read twice is the same status.
STEADY = Lifecycle(starting=(0, 0), in_progress=(math.inf, math.inf))
#: SageMaker's statuses, in the service model's order (a mistyped status is an index into it).
MODEL_STATUSES = ("INPROGRESS", "COMPLETED", "FAILED", "STARTING", "STOPPING", "STOPPED")
SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/x, Signature=0"}
DESCRIBE_KINDS = ("malformed", "missing_status", "mistyped_status", "unknown_status")


async def raw(mock: MockSageMaker, operation: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """POST one AWS JSON request and return the HTTP status and the body, unparsed."""
    headers = {**SIGNED, "X-Amz-Target": f"SageMaker.{operation}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(mock.url, json=body, headers=headers) as response,
    ):
        return response.status, await response.read()


async def raw_describe(mock: MockSageMaker, name: str) -> tuple[int, bytes]:
    return await raw(mock, "DescribeOptimizationJob", {"OptimizationJobName": name})


def as_json(body: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(body)
    return document


def check_wire(kind: str, status: int, body: bytes, true_status: str) -> None:
    """Assert that *body* is the bad answer *kind* for a job truly in *true_status*."""
    assert status == 200
    if kind == "malformed":
        with pytest.raises(ValueError, match=r"Expecting|Unterminated|Invalid|Extra"):
            json.loads(body)
        return
    document = as_json(body)
    assert document["OptimizationJobName"]  # the rest of the description is still there
    if kind == "missing_status":
        assert "OptimizationJobStatus" not in document
    elif kind == "mistyped_status":
        assert document["OptimizationJobStatus"] == MODEL_STATUSES.index(true_status)
    else:
        assert document["OptimizationJobStatus"] == "PAUSED"


# -- Describe: named jobs -------------------------------------------------------------


@pytest.mark.parametrize("kind", DESCRIBE_KINDS)
async def test_named_jobs_get_the_bad_answer_and_the_others_do_not(
    mock: MockSageMaker, kind: str
) -> None:
    bad, good = mock.seed_jobs(2, lifecycle=STEADY)
    mock.set_faults(**{f"{kind}_jobs": [bad]})
    for _ in range(3):  # every answer about the named job, not a draw
        status, body = await raw_describe(mock, bad)
        check_wire(kind, status, body, mock.status(bad))
    status, body = await raw_describe(mock, good)
    assert status == 200
    assert as_json(body)["OptimizationJobStatus"] == mock.status(good)
    assert mock.stats().counters["DescribeOptimizationJob"] == {kind: 3, "ok": 1}


async def test_botocore_parses_each_bad_answer(mock: MockSageMaker, aio_client: Any) -> None:
    malformed, missing, mistyped, unknown, good = mock.seed_jobs(5, lifecycle=STEADY)
    mock.set_faults(
        malformed_jobs=[malformed],
        missing_status_jobs=[missing],
        mistyped_status_jobs=[mistyped],
        unknown_status_jobs=[unknown],
        unknown_status="PAUSED",
    )

    async def describe(name: str) -> dict[str, Any]:
        answer: dict[str, Any] = await aio_client.describe_optimization_job(
            OptimizationJobName=name
        )
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        return answer

    # botocore raises nothing for a 200 that is not JSON: it parses to no member at all.
    assert set(await describe(malformed)) == {"ResponseMetadata"}
    assert "OptimizationJobStatus" not in await describe(missing)
    assert isinstance((await describe(mistyped))["OptimizationJobStatus"], int)
    paused = await describe(unknown)
    assert paused["OptimizationJobStatus"] == "PAUSED"
    assert paused["OptimizationJobName"] == unknown
    assert paused["CreationTime"].timestamp() == mock.transitions([unknown])[unknown][0][1]
    assert (await describe(good))["OptimizationJobStatus"] == "INPROGRESS"


async def test_named_jobs_are_set_over_the_control_path(mock: MockSageMaker) -> None:
    bad, good = mock.seed_jobs(2, lifecycle=STEADY)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{mock.url}/_mock/faults",
            json={"unknown_status_jobs": [bad], "unknown_status": "ARCHIVED"},
        ) as response,
    ):
        assert response.status == 200
        assert (await response.json())["unknown_status_jobs"] == [bad]
    assert as_json((await raw_describe(mock, bad))[1])["OptimizationJobStatus"] == "ARCHIVED"
    assert as_json((await raw_describe(mock, good))[1])["OptimizationJobStatus"] == "INPROGRESS"


async def test_a_job_meets_one_bad_answer_named_jobs_first(mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1, lifecycle=STEADY)
    mock.set_faults(
        missing_status_jobs=[name], unknown_status_jobs=[name], mistyped_status_rate=1.0
    )
    status, body = await raw_describe(mock, name)
    check_wire("missing_status", status, body, mock.status(name))
    mock.set_faults(missing_status_jobs=[])
    status, body = await raw_describe(mock, name)
    check_wire("unknown_status", status, body, mock.status(name))
    mock.set_faults(unknown_status_jobs=[])
    status, body = await raw_describe(mock, name)
    check_wire("mistyped_status", status, body, mock.status(name))


# -- Describe: a fraction of requests ----------------------------------------------------


@pytest.mark.parametrize("kind", DESCRIBE_KINDS)
async def test_a_fraction_of_answers_turns_bad_while_running(
    mock: MockSageMaker, kind: str
) -> None:
    names = mock.seed_jobs(4, lifecycle=STEADY)
    mock.set_faults(**{f"{kind}_rate": 0.5})
    seen_bad = 0
    requests = 40
    for i in range(requests):
        name = names[i % len(names)]
        status, body = await raw_describe(mock, name)
        try:
            good = as_json(body).get("OptimizationJobStatus") == mock.status(name)
        except ValueError:
            good = False
        if not good:
            check_wire(kind, status, body, mock.status(name))
            seen_bad += 1
    assert 0 < seen_bad < requests
    assert mock.stats().counters["DescribeOptimizationJob"] == {
        kind: seen_bad,
        "ok": requests - seen_bad,
    }
    mock.set_faults(**{f"{kind}_rate": 0.0})
    for name in names:
        assert as_json((await raw_describe(mock, name))[1])["OptimizationJobStatus"] == (
            mock.status(name)
        )


@pytest.mark.parametrize("kind", ["missing_status", "mistyped_status", "unknown_status"])
async def test_status_faults_touch_describe_only(mock: MockSageMaker, kind: str) -> None:
    names = mock.seed_jobs(3, lifecycle=STEADY)
    mock.set_faults(**{f"{kind}_rate": 1.0, f"{kind}_jobs": names})
    status, body = await raw(mock, "ListOptimizationJobs", {})
    assert status == 200
    summaries = as_json(body)["OptimizationJobSummaries"]
    assert {s["OptimizationJobStatus"] for s in summaries} == {"INPROGRESS"}
    status, body = await raw(mock, "StopOptimizationJob", {"OptimizationJobName": names[0]})
    assert (status, body) == (200, b"{}")
    assert mock.stats().count("ListOptimizationJobs", "ok") == 1


# -- List: one NextToken forever ---------------------------------------------------------


async def test_a_stuck_listing_repeats_one_token_forever(
    mock: MockSageMaker, aio_client: Any
) -> None:
    mock.seed_jobs(3, lifecycle=STEADY)
    mock.set_faults(stuck_list_rate=1.0)
    first = await aio_client.list_optimization_jobs()
    assert first["OptimizationJobSummaries"] == []
    token = first["NextToken"]
    mock.set_faults(stuck_list_rate=0.0)  # a listing already stuck stays stuck
    for _ in range(5):
        page = await aio_client.list_optimization_jobs(NextToken=token)
        assert page["OptimizationJobSummaries"] == []
        assert page["NextToken"] == token
    # A fresh listing is not picked any more, and ends.
    fresh = await aio_client.list_optimization_jobs()
    assert len(fresh["OptimizationJobSummaries"]) == 3
    assert "NextToken" not in fresh
    assert mock.stats().counters["ListOptimizationJobs"] == {"stuck_list": 6, "ok": 1}


async def test_botocore_paginator_refuses_a_stuck_listing(
    mock: MockSageMaker, aio_client: Any
) -> None:
    mock.seed_jobs(3, lifecycle=STEADY)
    mock.set_faults(stuck_list_rate=1.0)
    paginator = aio_client.get_paginator("list_optimization_jobs")
    with pytest.raises(PaginationError, match="same next token"):
        async for _ in paginator.paginate():
            pass


async def test_a_listing_can_get_stuck_midway(mock: MockSageMaker) -> None:
    mock.seed_jobs(5, lifecycle=STEADY)
    first = as_json((await raw(mock, "ListOptimizationJobs", {"MaxResults": 2}))[1])
    assert len(first["OptimizationJobSummaries"]) == 2
    mock.set_faults(stuck_list_rate=1.0)
    request = {"MaxResults": 2, "NextToken": first["NextToken"]}
    stuck = as_json((await raw(mock, "ListOptimizationJobs", request))[1])
    assert stuck["OptimizationJobSummaries"] == []
    assert stuck["NextToken"] != first["NextToken"]
    again = {"MaxResults": 2, "NextToken": stuck["NextToken"]}
    assert as_json((await raw(mock, "ListOptimizationJobs", again))[1]) == stuck


# -- List: an entry repeated across pages ------------------------------------------------


@pytest.mark.parametrize("sort_by", ["Name", "CreationTime", "Status"])
async def test_duplicate_pages_repeat_the_last_entry_and_still_end(
    mock: MockSageMaker, make_aio_client: ClientFactory, sort_by: str
) -> None:
    names = mock.seed_jobs(7, lifecycle=STEADY)
    mock.set_faults(duplicate_list_rate=1.0)
    page_size = 3
    pages: list[list[str]] = []
    async with make_aio_client(mock.url) as client:
        request: dict[str, Any] = {"MaxResults": page_size, "SortBy": sort_by}
        while True:
            page = await client.list_optimization_jobs(**request)
            pages.append([s["OptimizationJobName"] for s in page["OptimizationJobSummaries"]])
            if "NextToken" not in page:
                break
            request["NextToken"] = page["NextToken"]
    assert len(pages) > 1
    assert len(pages[0]) == page_size  # the first page has nothing to repeat
    for previous, page in itertools.pairwise(pages):
        assert page[0] == previous[-1]
        assert len(page) <= page_size + 1
    listed = [name for page in pages for name in page]
    assert sorted(set(listed)) == sorted(names)
    assert len(listed) == len(names) + len(pages) - 1
    assert mock.stats().counters["ListOptimizationJobs"] == {
        "ok": 1,
        "duplicate_list": len(pages) - 1,
    }


async def test_a_fraction_of_pages_repeats_an_entry(mock: MockSageMaker) -> None:
    names = mock.seed_jobs(40, lifecycle=STEADY)
    mock.set_faults(duplicate_list_rate=0.5)
    listed: list[str] = []
    request: dict[str, Any] = {"MaxResults": 1, "SortBy": "Name"}
    while True:
        page = as_json((await raw(mock, "ListOptimizationJobs", request))[1])
        listed += [s["OptimizationJobName"] for s in page["OptimizationJobSummaries"]]
        if "NextToken" not in page:
            break
        request["NextToken"] = page["NextToken"]
    repeats = len(listed) - len(set(listed))
    assert sorted(set(listed)) == names
    assert 0 < repeats < len(names) - 1
    assert mock.stats().count("ListOptimizationJobs", "duplicate_list") == repeats
