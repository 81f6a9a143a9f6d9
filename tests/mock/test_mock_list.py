"""ListOptimizationJobs: filters, sorting, keyset paging under change, the empty-page quirk."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncoptjob.mock import Faults, Lifecycle, MockSageMaker
from asyncoptjob.mock._listing import list_jobs
from asyncoptjob.mock._sim import Simulation
from asyncoptjob.mock._wire import AwsError
from asyncoptjob.testing import ManualClock

T0 = 1_700_000_000.0
FIXED = Lifecycle(starting=(10, 10), in_progress=(100, 100), stopping=(1, 1))


def build(clock: ManualClock, batches: int = 5, per_batch: int = 4) -> Simulation:
    """Seed *batches* of jobs 1 s apart, so creation times differ between batches."""
    sim = Simulation(lifecycle=FIXED, rng=random.Random(9), clock=clock.now)
    for batch in range(batches):
        sim.seed(per_batch, prefix=f"batch{batch}")
        clock.jump(1)
    return sim


def page(sim: Simulation, **request: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(list_jobs(sim, request).body)
    return result


def names(response: dict[str, Any]) -> list[str]:
    return [s["OptimizationJobName"] for s in response["OptimizationJobSummaries"]]


def walk(sim: Simulation, **request: Any) -> list[str]:
    """Follow NextToken to the end; return every name in order."""
    found: list[str] = []
    token = None
    for _ in range(10_000):
        response = page(sim, **request, **({"NextToken": token} if token else {}))
        found += names(response)
        token = response.get("NextToken")
        if token is None:
            return found
    raise AssertionError("paging did not end")


def test_default_is_creation_time_descending_fifty() -> None:
    clock = ManualClock(T0)
    sim = build(clock, batches=20, per_batch=4)
    response = page(sim)
    assert len(response["OptimizationJobSummaries"]) == 50
    assert "NextToken" in response
    keys = [
        (s["CreationTime"], s["OptimizationJobName"]) for s in response["OptimizationJobSummaries"]
    ]
    assert keys == sorted(keys, reverse=True)
    assert names(response)[0] == "batch19-00003"


@pytest.mark.parametrize("sort_by", ["Name", "CreationTime", "Status"])
@pytest.mark.parametrize("order", ["Ascending", "Descending"])
def test_sorting_and_paging_cover_every_job_once(sort_by: str, order: str) -> None:
    clock = ManualClock(T0)
    sim = build(clock)
    clock.jump(T0 + 12 - clock.now())  # some jobs INPROGRESS, some still STARTING
    found = walk(sim, SortBy=sort_by, SortOrder=order, MaxResults=3)
    assert sorted(found) == sorted(sim.jobs)
    jobs = sim.jobs
    key = {
        "Name": lambda n: n,
        "CreationTime": lambda n: (jobs[n].created, n),
        "Status": lambda n: (jobs[n].status(clock.now()), n),
    }[sort_by]
    assert found == sorted(found, key=key, reverse=order == "Descending")


def test_filters() -> None:
    clock = ManualClock(T0)
    sim = build(clock)
    clock.jump(T0 + 12.5 - clock.now())
    sim.stop("batch0-00000")
    every = set(sim.jobs)

    def listed(**request: Any) -> set[str]:
        return set(walk(sim, **request))

    assert listed(NameContains="BATCH1") == {n for n in every if n.startswith("batch1")}
    assert listed(CreationTimeAfter=T0 + 2) == {n for n in every if n[5] in "34"}
    assert listed(CreationTimeBefore=T0 + 2) == {n for n in every if n[5] in "01"}
    assert listed(CreationTimeAfter=T0, CreationTimeBefore=T0 + 2) == {
        n for n in every if n[5] == "1"
    }
    assert listed(StatusEquals="STOPPING") == {"batch0-00000"}
    in_progress = {n for n in every if n[5] in "012"} - {"batch0-00000"}
    assert listed(StatusEquals="INPROGRESS") == in_progress
    assert listed(LastModifiedTimeAfter=T0 + 11.5) == {
        "batch0-00000",
        *{n for n in every if n[5] == "2"},
    }
    assert listed(LastModifiedTimeBefore=T0 + 4.5) == {n for n in every if n[5] in "34"}
    quantized = {n for n, job in sim.jobs.items() if "Quantization" in job.types}
    assert quantized
    assert listed(OptimizationContains="quantization") == quantized
    assert listed(OptimizationContains="Quant") == quantized
    assert listed(NameContains="batch", StatusEquals="STARTING", MaxResults=1) == {
        n for n in every if n[5] in "34"
    }


def test_iso_timestamps_are_accepted() -> None:
    clock = ManualClock(T0)
    sim = build(clock)
    after = dt.datetime.fromtimestamp(T0 + 2, tz=dt.timezone.utc).isoformat()
    assert set(walk(sim, CreationTimeAfter=after)) == {n for n in sim.jobs if n[5] in "34"}


def test_paging_stays_correct_while_jobs_change() -> None:
    clock = ManualClock(T0)
    sim = build(clock)
    first = page(sim, SortBy="Name", SortOrder="Ascending", MaxResults=5)
    seen = names(first)
    # Between pages: a job already seen and a job not yet seen are deleted,
    # new jobs appear before and after the cursor.
    sim.delete(seen[0])
    sim.delete("batch3-00000")
    sim.seed(1, prefix="aaa")
    sim.seed(1, prefix="zzz")
    token = first["NextToken"]
    while token:
        response = page(sim, SortBy="Name", SortOrder="Ascending", MaxResults=5, NextToken=token)
        seen += names(response)
        token = response.get("NextToken")
    assert len(seen) == len(set(seen))
    unchanged = set(sim.jobs) - {"aaa-00000"}
    assert unchanged <= set(seen)
    assert "batch3-00000" not in seen
    assert "zzz-00000" in seen  # created after the cursor: listed
    assert "aaa-00000" not in seen  # created before the cursor: not


def test_token_is_bound_to_its_query() -> None:
    clock = ManualClock(T0)
    sim = build(clock)
    token = page(sim, MaxResults=2, NameContains="batch")["NextToken"]
    assert page(sim, MaxResults=7, NameContains="batch", NextToken=token)  # page size may change
    for request in ({"NameContains": "other"}, {"SortBy": "Name", "NameContains": "batch"}):
        with pytest.raises(AwsError) as info:
            page(sim, **request, NextToken=token)
        assert info.value.code == "ValidationException"


@pytest.mark.parametrize("token", ["", "!!!", "W10=", "WzEsMiwzXQ=="])
def test_garbage_tokens_are_rejected(token: str) -> None:
    sim = build(ManualClock(T0))
    with pytest.raises(AwsError) as info:
        page(sim, NextToken=token)
    assert info.value.code == "ValidationException"


def test_empty_page_quirk_with_last_modified_time_after() -> None:
    clock = ManualClock(T0)
    sim = build(clock)
    request = {"LastModifiedTimeAfter": T0 - 1, "MaxResults": 100}
    pages = []
    token = None
    while True:
        response = json.loads(
            list_jobs(
                sim, {**request, **({"NextToken": token} if token else {})}, empty_pages=3
            ).body
        )
        pages.append(response)
        token = response.get("NextToken")
        if token is None:
            break
    assert [len(p["OptimizationJobSummaries"]) for p in pages] == [0, 0, 0, 20]
    assert all("NextToken" in p for p in pages[:3])
    # Without LastModifiedTimeAfter, no empty pages.
    plain = json.loads(list_jobs(sim, {"MaxResults": 100}, empty_pages=3).body)
    assert len(plain["OptimizationJobSummaries"]) == 20


async def test_empty_page_quirk_through_botocore(aio_client: Any, mock: MockSageMaker) -> None:
    mock.seed_jobs(12)
    mock.set_faults(empty_list_pages=2)
    since = dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(minutes=5)
    first = await aio_client.list_optimization_jobs(LastModifiedTimeAfter=since, MaxResults=5)
    # A loop that stops at the first empty page sees nothing at all.
    assert first["OptimizationJobSummaries"] == []
    assert first["NextToken"]
    paginator = aio_client.get_paginator("list_optimization_jobs")
    listed = [
        s["OptimizationJobName"]
        async for p in paginator.paginate(
            LastModifiedTimeAfter=since, PaginationConfig={"PageSize": 5}
        )
        for s in p["OptimizationJobSummaries"]
    ]
    assert sorted(listed) == mock.job_names()
    assert mock.stats().count("ListOptimizationJobs") == 1 + 2 + 3


@pytest.mark.parametrize("sort_by", ["Name", "CreationTime", "Status"])
def test_list_lag_shows_each_job_as_it_was_and_hides_the_youngest(sort_by: str) -> None:
    clock = ManualClock(T0)
    sim = build(clock)  # batches created at T0 .. T0+4; STARTING for 10 s, then INPROGRESS
    clock.jump(T0 + 12 - clock.now())  # truth: batches 0-2 INPROGRESS, batches 3-4 still STARTING

    def listed(lag: float, **request: Any) -> dict[str, str]:
        found: dict[str, str] = {}
        token = None
        while True:
            extra = {"NextToken": token} if token else {}
            response = json.loads(
                list_jobs(sim, {"SortBy": sort_by, **request, **extra}, lag=lag).body
            )
            for s in response["OptimizationJobSummaries"]:
                found[s["OptimizationJobName"]] = s["OptimizationJobStatus"]
            token = response.get("NextToken")
            if token is None:
                return found

    truth = {name: job.status(clock.now()) for name, job in sim.jobs.items()}
    assert listed(0.0) == truth
    # 8.5 s behind (T0+3.5): every job still STARTING, batch 4 (created T0+4) not listed.
    stale = listed(8.5)
    assert set(stale) == {n for n in truth if not n.startswith("batch4")}
    assert set(stale.values()) == {"STARTING"}
    assert {n for n, s in truth.items() if s == "INPROGRESS"} == {
        n for n in truth if n[:6] in ("batch0", "batch1", "batch2")
    }
    # The lagging view filters on its own LastModifiedTime: no change shows yet.
    assert listed(8.5, LastModifiedTimeAfter=T0 + 4.5) == {}
    assert len(listed(0.0, LastModifiedTimeAfter=T0 + 4.5)) == 12
    assert listed(math.inf) == {}


def test_list_lag_validation() -> None:
    assert Faults(list_lag=2).list_lag == 2.0
    for bad in (-1, "soon", True, None, math.nan):
        with pytest.raises(ValueError, match="list_lag"):
            Faults(list_lag=bad)


async def test_list_lag_through_aiobotocore(aio_client: Any, mock: MockSageMaker) -> None:
    mock.set_faults(list_lag=3_600)
    # STARTING for an hour: the client's first (slow) request still finds them starting.
    mock.seed_jobs(4, lifecycle=Lifecycle(starting=(3_600, 3_600)))
    # Describe sees a new job at once; List does not for an hour.
    described = await aio_client.describe_optimization_job(OptimizationJobName=mock.job_names()[0])
    assert described["OptimizationJobStatus"] == "STARTING"
    assert (await aio_client.list_optimization_jobs())["OptimizationJobSummaries"] == []
    mock.set_faults(list_lag=0)
    listed = (await aio_client.list_optimization_jobs())["OptimizationJobSummaries"]
    assert sorted(s["OptimizationJobName"] for s in listed) == mock.job_names()


async def test_list_summaries_through_aiobotocore(aio_client: Any, mock: MockSageMaker) -> None:
    mock.seed_jobs(3, lifecycle=Lifecycle(starting=(0, 0), in_progress=(0, 0)), outcome="FAILED")
    response = await aio_client.list_optimization_jobs(StatusEquals="FAILED")
    assert len(response["OptimizationJobSummaries"]) == 3
    for summary in response["OptimizationJobSummaries"]:
        assert "FailureReason" not in summary
        assert summary["OptimizationEndTime"] == summary["LastModifiedTime"]
        assert summary["OptimizationTypes"]
    with pytest.raises(ClientError):
        await aio_client.list_optimization_jobs(StatusEquals="Failed")


@settings(max_examples=60, deadline=None)
@given(
    sort_by=st.sampled_from(["Name", "CreationTime", "Status"]),
    order=st.sampled_from(["Ascending", "Descending"]),
    page_size=st.integers(1, 9),
    status=st.sampled_from([None, "STARTING", "INPROGRESS", "COMPLETED"]),
    at=st.floats(4, 130),  # from the last batch's creation (time only moves forward)
)
def test_paging_equals_one_big_sorted_filtered_list(
    sort_by: str, order: str, page_size: int, status: str | None, at: float
) -> None:
    clock = ManualClock(T0)
    sim = build(clock, batches=4, per_batch=5)
    clock.jump(T0 + at - clock.now())
    request: dict[str, Any] = {"SortBy": sort_by, "SortOrder": order}
    if status is not None:
        request["StatusEquals"] = status
    paged = walk(sim, **request, MaxResults=page_size)
    whole = walk(sim, **request, MaxResults=100)
    assert paged == whole
    assert len(set(paged)) == len(paged)
    expected = {
        n for n, job in sim.jobs.items() if status is None or job.status(clock.now()) == status
    }
    assert set(paged) == expected
