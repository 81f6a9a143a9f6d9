"""The example Starlette service (examples/service.py), end to end against the mock endpoint."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
import structlog
import uvicorn
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from asyncoptjob import RetryPolicy
from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.helpers import ROOT

SERVICE = ROOT / "examples" / "service.py"
FOREVER = Lifecycle(starting=(0.01, 0.01), in_progress=(float("inf"), float("inf")))


def load_service() -> ModuleType:
    """Import examples/service.py by path: examples/ is not an installed package."""
    spec = importlib.util.spec_from_file_location("asyncoptjob_example_service", SERVICE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


service = load_service()


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    """``[(event, data), ...]`` from a text/event-stream body."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.fixture
async def client(mock: MockSageMaker) -> AsyncIterator[httpx.AsyncClient]:
    """The service, its lifespan (and so its Poller) running, behind an in-memory client."""
    app = service.create_app(
        endpoint_url=mock.url, region_name="us-east-1", poll_interval=0.05, not_found_grace=0
    )
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://service"
        ) as http,
    ):
        yield http


async def test_events_stream_a_job_to_its_end_as_server_sent_events(
    client: httpx.AsyncClient, mock: MockSageMaker
) -> None:
    (name,) = mock.seed_jobs(1, outcome="FAILED")
    response = await client.get(f"/jobs/{name}/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert {kind for kind, _ in events} == {"status"}
    statuses = [data["status"] for _, data in events]
    assert statuses[-1] == "FAILED"
    assert events[0][1]["previous_status"] is None
    for (_, before), (_, after) in itertools.pairwise(events):
        assert after["previous_status"] == before["status"]
    assert events[-1][1]["failure_reason"]


async def test_many_clients_share_one_poller(
    client: httpx.AsyncClient, mock: MockSageMaker
) -> None:
    (name,) = mock.seed_jobs(1, outcome="COMPLETED")
    bodies: list[str] = []

    async def follow() -> None:
        bodies.append((await client.get(f"/jobs/{name}/events")).text)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(follow)
    assert [parse_sse(body)[-1][1]["status"] for body in bodies] == ["COMPLETED"] * 5
    stats = (await client.get("/stats")).json()
    assert stats["subscribers"] == 0
    assert stats["jobs_active"] == 0


async def test_wait_answers_each_final_status(
    client: httpx.AsyncClient, mock: MockSageMaker
) -> None:
    (ok,) = mock.seed_jobs(1, prefix="ok", outcome="COMPLETED")
    (stopped,) = mock.seed_jobs(1, prefix="halt", outcome="STOPPED")
    assert (await client.get(f"/jobs/{ok}")).json() == {"job_name": ok, "status": "COMPLETED"}
    assert (await client.get(f"/jobs/{stopped}")).json()["status"] == "STOPPED"


async def test_wait_errors_map_to_http_statuses(
    client: httpx.AsyncClient, mock: MockSageMaker
) -> None:
    (slow,) = mock.seed_jobs(1, prefix="slow", lifecycle=FOREVER)
    late = await client.get(f"/jobs/{slow}", params={"timeout": "0.2"})
    assert late.status_code == 504
    assert late.json()["pending"] == {slow: "INPROGRESS"}
    missing = await client.get("/jobs/no-such-job")
    assert missing.status_code == 404
    assert "no-such-job" in missing.json()["error"]
    invalid = await client.get("/jobs/not_valid/events")
    assert invalid.status_code == 400
    assert "not_valid" in invalid.json()["error"]
    assert (await client.get("/jobs/not_valid")).status_code == 400


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` under a real uvicorn server on 127.0.0.1, and an HTTP client to it."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
        server.should_exit = True


async def test_a_client_going_away_unsubscribes_it(mock: MockSageMaker) -> None:
    """Over real HTTP (uvicorn on 127.0.0.1, port 0): events arrive as they happen, and a
    disconnect ends the subscription while the Poller keeps serving."""
    (name,) = mock.seed_jobs(1, prefix="long", lifecycle=FOREVER)
    app = service.create_app(endpoint_url=mock.url, region_name="us-east-1", poll_interval=0.05)
    async with served(app) as http:
        async with http.stream("GET", f"/jobs/{name}/events") as response:
            lines = response.aiter_lines()
            assert await anext(lines) == "event: status"
            first = json.loads((await anext(lines)).removeprefix("data: "))
            assert first["status"] in ("STARTING", "INPROGRESS")
            assert (await http.get("/stats")).json()["subscribers"] == 1
        # The stream is closed without waiting for the (never-ending) job.
        with anyio.fail_after(10):
            while (await http.get("/stats")).json()["subscribers"]:
                await anyio.sleep(0.02)


def test_options_come_from_the_environment() -> None:
    env = {"ASYNCOPTJOB_ENDPOINT_URL": "http://127.0.0.1:1234", "ASYNCOPTJOB_POLL_INTERVAL": "5"}
    assert service.options_from_env(env) == {
        "endpoint_url": "http://127.0.0.1:1234",
        "poll_interval": 5.0,
    }
    assert service.options_from_env({}) == {}


async def test_the_service_can_configure_logging(mock: MockSageMaker) -> None:
    # The conftest's `_structlog_as_it_was` undoes the app's structlog setup.
    app = service.create_app(log_level="error", endpoint_url=mock.url, region_name="us-east-1")
    async with LifespanManager(app):
        logger = structlog.get_config()["wrapper_class"]
        assert logger.__name__ == "BoundLoggerFilteringAtError"


LIFE = Lifecycle(starting=(1.0, 1.2), in_progress=(0.3, 0.5), stopping=(0.05, 0.1))


@asynccontextmanager
async def silent_redis() -> AsyncIterator[str]:
    """A TCP port that accepts connections and never answers: a Redis that hangs."""

    async def hang(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hang)
        try:
            yield f"redis://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}/0"
        finally:
            tg.cancel_scope.cancel()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of a Prometheus text exposition (strictly parsed).

    The exporter's ``otel_scope_*`` labels (the same on every series) are left out.
    """
    return {
        (
            sample.name,
            frozenset(
                (key, value)
                for key, value in sample.labels.items()
                if not key.startswith("otel_scope_")
            ),
        ): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_health_and_readiness_over_real_http(aio_session: Any) -> None:
    async with (
        MockSageMaker(seed=31, lifecycle=LIFE) as mock,
        silent_redis() as redis_url,
    ):
        (slow,) = mock.seed_jobs(1, prefix="slow", lifecycle=FOREVER)
        app = service.create_app(
            endpoint_url=mock.url,
            session=aio_session,
            region_name="us-east-1",
            poll_interval=0.05,
            retry=RetryPolicy(initial_wait=0.01, max_wait=0.1, max_elapsed=60),
            # Opening waits for this Redis to answer (2 s), then goes on in local mode.
            redis_url=redis_url,
            redis_lease_ttl=1,
        )
        async with served(app) as http:
            opening = await http.get("/healthz")
            assert opening.status_code == 503
            assert opening.json()["alive"] is False
            assert (await http.get("/readyz")).status_code == 503
            with anyio.fail_after(30):
                while (await http.get("/healthz")).status_code != 200:
                    await anyio.sleep(0.05)
            health = (await http.get("/healthz")).json()
            assert health["alive"] is True
            assert health["fleet_connected"] is False
            assert (await http.get("/readyz")).status_code == 200  # nothing to describe yet

            # Created now, it is first seen before it ends: its later changes have a lag.
            (done,) = mock.seed_jobs(1, prefix="done", outcome="COMPLETED")
            followed = parse_sse((await http.get(f"/jobs/{done}/events")).text)
            assert followed[-1][1]["status"] == "COMPLETED"
            changes = sum(1 for _, data in followed if data["previous_status"] is not None)
            assert changes > 0, followed
            mock.set_faults(throttle_rate=1.0)
            # Following the slow job (an SSE stream) adds it to the Poller's jobs.
            async with http.stream("GET", f"/jobs/{slow}/events") as stream:
                assert stream.status_code == 200
                with anyio.fail_after(30):
                    while (await http.get("/readyz")).status_code != 503:
                        await anyio.sleep(0.02)
                not_ready = (await http.get("/readyz")).json()
                assert not_ready["jobs_pending"] == 1
                assert (await http.get("/healthz")).status_code == 200  # alive all along
                mock.set_faults(throttle_rate=0.0)
                with anyio.fail_after(30):
                    while (await http.get("/readyz")).status_code != 200:
                        await anyio.sleep(0.02)

            response = await http.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            found = samples(response.text)
            truth = mock.stats()

        def requests(outcome: str) -> float:
            labels = {"operation": "DescribeOptimizationJob", "outcome": outcome}
            return found[("asyncoptjob_requests_total", frozenset(labels.items()))]

        # The slow job may be described again between reading /metrics and the mock.
        assert 0 <= truth.count("DescribeOptimizationJob", "ok") - requests("ok") <= 2
        assert requests("throttled") == truth.count(
            "DescribeOptimizationJob", "ThrottlingException"
        )
        assert requests("throttled") > 0
        names = {name for name, _ in found}
        assert {
            "asyncoptjob_retries_total",
            "asyncoptjob_events_total",
            "asyncoptjob_jobs_active",
            "asyncoptjob_detection_lag_seconds_count",
            "asyncoptjob_detection_lag_seconds_bucket",
        } <= names, names
        assert any(name.startswith("asyncoptjob_rate_limit") for name in names), names
        completed = frozenset({("status", "COMPLETED")})
        assert found[("asyncoptjob_detection_lag_seconds_count", completed)] == 1
        lags = [v for (n, _), v in found.items() if n == "asyncoptjob_detection_lag_seconds_count"]
        assert sum(lags) == changes
