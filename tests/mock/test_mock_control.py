"""The control path over HTTP: no auth, not counted, never faulted."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from asyncoptjob.mock import MockSageMaker

SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 Signature=0",
    "X-Amz-Target": "SageMaker.DescribeOptimizationJob",
}


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(http: aiohttp.ClientSession, url: str, params: Any = None) -> Any:
    async with http.get(url, params=params) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _post(http: aiohttp.ClientSession, url: str, body: Any, status: int = 200) -> Any:
    async with http.post(url, json=body) as response:
        assert response.status == status, await response.text()
        return await response.json()


async def test_seed_stats_transitions_and_reset(
    mock: MockSageMaker, http: aiohttp.ClientSession
) -> None:
    base = f"{mock.url}/_mock"
    seeded = await _post(
        http,
        f"{base}/seed",
        {
            "count": 3,
            "prefix": "ctl",
            "lifecycle": {"starting": [0, 0], "in_progress": [0, "inf"]},
        },
    )
    assert seeded == {"count": 3, "names": ["ctl-00000", "ctl-00001", "ctl-00002"]}
    stats = await _get(http, f"{base}/stats")
    assert stats["jobs"] == 3
    assert stats["statuses"]["INPROGRESS"] == 3
    assert stats["counters"] == {}
    assert stats["faults"]["describe_rate"] is None

    truth = await _get(http, f"{base}/transitions")
    assert [s for s, _ in truth["jobs"]["ctl-00000"]] == ["STARTING", "INPROGRESS"]
    one = await _get(http, f"{base}/transitions", {"name": "ctl-00001", "include_future": "1"})
    assert list(one["jobs"]) == ["ctl-00001"]
    assert one["jobs"]["ctl-00001"][-1] == ["COMPLETED", None]  # never reached: infinite

    await _post(http, f"{base}/reset", {})
    assert (await _get(http, f"{base}/stats"))["jobs"] == 0


async def test_faults_over_http(mock: MockSageMaker, http: aiohttp.ClientSession) -> None:
    base = f"{mock.url}/_mock"
    changed = await _post(http, f"{base}/faults", {"describe_rate": 5, "latency_ms": 2})
    assert changed["describe_rate"] == 5.0
    assert mock.faults.latency_ms == 2.0
    assert (await _get(http, f"{base}/faults")) == changed
    error = await _post(http, f"{base}/faults", {"error_rate": 3}, status=400)
    assert "error_rate" in error["error"]
    error = await _post(http, f"{base}/faults", {"bogus": 1}, status=400)
    assert "bogus" in error["error"]
    assert mock.faults.error_rate == 0.0


async def test_request_log_over_http(mock: MockSageMaker, http: aiohttp.ClientSession) -> None:
    (name,) = mock.seed_jobs(1)
    for _ in range(3):
        async with http.post(mock.url, json={"OptimizationJobName": name}, headers=SIGNED) as r:
            assert r.status == 200
    base = f"{mock.url}/_mock"
    log = (await _get(http, f"{base}/requests"))["requests"]
    assert [(op, outcome) for _, op, outcome in log] == [("DescribeOptimizationJob", "ok")] * 3
    most = await _get(
        http, f"{base}/max_requests_in_window", {"operation": "describe", "window_s": "60"}
    )
    assert most == {"max": 3}
    most = await _get(
        http, f"{base}/max_requests_in_window", {"operation": "list", "outcome": "any"}
    )
    assert most == {"max": 0}
    # Control calls are never counted.
    stats = await _get(http, f"{base}/stats")
    assert stats["counters"] == {"DescribeOptimizationJob": {"ok": 3}}


@pytest.mark.parametrize(
    ("method", "route", "body", "status"),
    [
        ("GET", "nope", None, 404),
        ("DELETE", "stats", None, 404),
        ("POST", "stats", {}, 404),
        ("POST", "seed", {"count": -1}, 400),
        ("POST", "seed", {"count": 1, "lifecycle": {"starting": [3, 1]}}, 400),
        ("POST", "seed", {"count": 1, "colour": "red"}, 400),
        ("POST", "seed", [1, 2], 400),
    ],
)
async def test_control_errors(
    mock: MockSageMaker,
    http: aiohttp.ClientSession,
    method: str,
    route: str,
    body: Any,
    status: int,
) -> None:
    async with http.request(method, f"{mock.url}/_mock/{route}", json=body) as response:
        assert response.status == status
        assert "error" in await response.json()
