"""Faults: validation, the token bucket, storms toggled while running, an untouched control path."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncoptjob.mock import Faults, MockSageMaker
from asyncoptjob.mock._injector import DROP, Injector
from asyncoptjob.mock._limits import TokenBucket, family_of


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("describe_rate", 0),
        ("describe_rate", -1),
        ("list_rate", float("inf")),
        ("describe_burst", 0.5),
        ("list_burst", "10"),
        ("throttle_rate", 1.5),
        ("error_rate", -0.1),
        ("drop_rate", True),
        ("malformed_rate", None),
        ("error_code_rate", 2),
        ("latency_ms", -5),
        ("latency_jitter_ms", float("nan")),
        ("error_code", "not a code"),
        ("error_code", 403),
        ("error_code_status", 200),
        ("empty_list_pages", -1),
        ("empty_list_pages", 1.5),
        ("missing_status_rate", 2),
        ("mistyped_status_rate", None),
        ("unknown_status_rate", -0.5),
        ("stuck_list_rate", "1"),
        ("duplicate_list_rate", 1.01),
        ("unknown_status", "COMPLETED"),  # known: not an unknown status
        ("unknown_status", "paused"),
        ("unknown_status", ""),
        ("unknown_status", 7),
        ("malformed_jobs", "job-00001"),  # one name, not a list of names
        ("missing_status_jobs", ["a_b"]),
        ("mistyped_status_jobs", [None]),
        ("unknown_status_jobs", None),
    ],
)
def test_invalid_values_name_the_field(field: str, value: Any) -> None:
    faults = Faults()
    with pytest.raises(ValueError, match=field):
        setattr(faults, field, value)
    with pytest.raises(ValueError, match=field):
        Faults(**{field: value})
    with pytest.raises(ValueError, match=field):
        MockSageMaker().set_faults(**{field: value})


def test_unknown_field_is_named() -> None:
    with pytest.raises(ValueError, match="describe_rps"):
        Faults().update(describe_rps=5)


def test_update_is_all_or_nothing() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="error_rate"):
        faults.update(throttle_rate=0.5, error_rate=5)
    assert faults.throttle_rate == 0.0


def test_round_trip_through_a_mapping() -> None:
    faults = Faults(
        describe_rate=3,
        list_rate=1,
        list_burst=2,
        error_code="AccessDeniedException",
        missing_status_jobs=["job-00001", "job-00002"],
        unknown_status="ARCHIVED",
        unknown_status_rate=0.25,
        stuck_list_rate=0.5,
    )
    assert Faults.from_mapping(json.loads(json.dumps(faults.to_dict()))) == faults
    assert faults.missing_status_jobs == ("job-00001", "job-00002")


def test_every_default_is_a_valid_value() -> None:
    defaults = Faults().to_dict()
    faults = Faults(**defaults)
    faults.update(**defaults)
    assert faults == Faults()


def test_faults_left_at_their_defaults_draw_nothing() -> None:
    rng = random.Random(1)
    injector = Injector(Faults(), rng)
    state = rng.getstate()
    for operation in ("DescribeOptimizationJob", "ListOptimizationJobs"):
        assert injector.decide(family_of(operation), 0.0) is None
        assert injector.bad_answer(operation, "job-00001") is None
        assert not injector.chance(0.0)
    assert injector.latency() == 0.0
    assert rng.getstate() == state  # so a seed replays the same decisions


def test_bad_answers_are_deterministic_per_seed() -> None:
    faults = Faults(malformed_rate=0.1, missing_status_rate=0.2, unknown_status_rate=0.2)

    def draws(seed: int) -> list[str | None]:
        injector = Injector(faults, random.Random(seed))
        return [injector.bad_answer("DescribeOptimizationJob", "job") for _ in range(60)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert {"malformed", "missing_status", "unknown_status", None} <= set(draws(1))


def test_family_of() -> None:
    assert family_of("DescribeOptimizationJob") == "describe"
    assert family_of("ListOptimizationJobs") == "list"
    assert family_of("Weird") == "weird"


def test_token_bucket_grants_burst_then_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3.0, clock=lambda: now[0])
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5
    assert [bucket.try_acquire() for _ in range(2)] == [True, False]
    now[0] = 100.0
    assert sum(bucket.try_acquire() for _ in range(10)) == 3


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0.5)])
def test_token_bucket_validates(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate" if rate == 0 else "burst"):
        TokenBucket(rate=rate, burst=burst)


@settings(max_examples=100, deadline=None)
@given(
    rate=st.floats(0.5, 50),
    burst=st.floats(1, 20),
    gaps=st.lists(st.floats(0, 0.3), min_size=1, max_size=300),
    window=st.floats(0.01, 5),
)
def test_token_bucket_never_exceeds_rate_times_window_plus_burst(
    rate: float, burst: float, gaps: list[float], window: float
) -> None:
    now = 0.0
    bucket = TokenBucket(rate=rate, burst=burst, clock=lambda: 0.0)
    granted = []
    for gap in gaps:
        now += gap
        if bucket.try_acquire(now):
            granted.append(now)
    start = 0
    for end, t in enumerate(granted):
        while t - granted[start] > window:
            start += 1
        assert end - start + 1 <= rate * window + burst + 1e-9


def test_injector_is_deterministic_per_seed() -> None:
    def draws(seed: int) -> list[Any]:
        injector = Injector(
            Faults(throttle_rate=0.2, error_rate=0.2, drop_rate=0.1), random.Random(seed)
        )
        return [injector.decide("describe", 0.0) for _ in range(50)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert DROP in draws(1)


def test_injector_follows_limit_changes() -> None:
    faults = Faults(describe_rate=1, describe_burst=1)
    injector = Injector(faults, random.Random(1), clock=lambda: 0.0)
    assert injector.decide("describe", 0.0) is None
    assert injector.decide("describe", 0.0) is not None
    assert injector.decide("list", 0.0) is None  # families are limited separately
    faults.describe_rate = None
    assert all(injector.decide("describe", 0.0) is None for _ in range(100))


async def test_throttling_storm_opens_and_closes_while_running(
    aio_client: Any, mock: MockSageMaker
) -> None:
    (name,) = mock.seed_jobs(1)

    async def outcome() -> str:
        try:
            await aio_client.describe_optimization_job(OptimizationJobName=name)
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "ok"

    assert {await outcome() for _ in range(5)} == {"ok"}
    mock.faults.throttle_rate = 1.0
    assert {await outcome() for _ in range(5)} == {"ThrottlingException"}
    mock.set_faults(throttle_rate=0.0)
    assert {await outcome() for _ in range(5)} == {"ok"}
    assert mock.stats().counters["DescribeOptimizationJob"] == {"ok": 10, "ThrottlingException": 5}


async def test_served_rate_never_exceeds_the_limit(aio_client: Any, mock: MockSageMaker) -> None:
    names = mock.seed_jobs(5)
    rate, burst = 40.0, 5.0
    mock.set_faults(describe_rate=rate, describe_burst=burst)

    async def hammer(name: str) -> None:
        for _ in range(15):
            await asyncio.gather(
                aio_client.describe_optimization_job(OptimizationJobName=name),
                return_exceptions=True,
            )

    await asyncio.gather(*(hammer(n) for n in names))
    counters = mock.stats().counters["DescribeOptimizationJob"]
    assert set(counters) == {"ok", "ThrottlingException"}
    for window in (0.05, 0.1, 0.25, 0.5, 1.0):
        served = mock.max_requests_in_window("describe", window)
        assert served <= rate * window + burst, window
    # The List family has its own (here unlimited) budget.
    for _ in range(10):
        await aio_client.list_optimization_jobs(MaxResults=1)
    assert mock.stats().count("ListOptimizationJobs", "ok") == 10


async def test_list_rate_limit(aio_client: Any, mock: MockSageMaker) -> None:
    mock.set_faults(list_rate=0.01, list_burst=2)
    await aio_client.list_optimization_jobs()
    await aio_client.list_optimization_jobs()
    with pytest.raises(ClientError) as info:
        await aio_client.list_optimization_jobs()
    assert info.value.response["Error"]["Code"] == "ThrottlingException"


async def test_latency_is_added(aio_client: Any, mock: MockSageMaker) -> None:
    mock.set_faults(latency_ms=60, latency_jitter_ms=20)
    started = time.perf_counter()
    await aio_client.list_optimization_jobs()
    # A lower bound only: the request cannot be answered before its latency.
    assert time.perf_counter() - started >= 0.06


async def test_faults_never_touch_the_control_path(mock: MockSageMaker) -> None:
    mock.set_faults(drop_rate=1.0, error_rate=1.0, throttle_rate=1.0, latency_ms=10_000)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{mock.url}/_mock/stats") as response:
            assert response.status == 200
            assert (await response.json())["counters"] == {}
        async with http.post(f"{mock.url}/_mock/faults", json={"drop_rate": 0}) as response:
            assert response.status == 200
    assert mock.faults.drop_rate == 0.0


async def test_malformed_body_is_not_json(mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1)
    mock.set_faults(malformed_rate=1.0)
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 Signature=0",
        "X-Amz-Target": "SageMaker.DescribeOptimizationJob",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(mock.url, json={"OptimizationJobName": name}, headers=headers) as response,
    ):
        assert response.status == 200
        body = await response.read()
    assert body
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|Invalid|Extra"):
        json.loads(body)


async def test_dropped_connection_over_raw_http(mock: MockSageMaker) -> None:
    mock.set_faults(drop_rate=1.0)
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 Signature=0",
        "X-Amz-Target": "SageMaker.ListOptimizationJobs",
    }
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with http.post(mock.url, json={}, headers=headers):
                pass  # pragma: no cover - never reached
