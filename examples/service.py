"""A small Starlette service that keeps one asyncoptjob Poller for its whole lifetime.

Every request shares the Poller's workers, rate budget and AWS client: a hundred
browsers following the same job cost one describe per poll, not a hundred.

Endpoints:
    GET /jobs/{name}/events   the job's status changes as Server-Sent Events, until it ends
    GET /jobs/{name}          waits until the job ends (``?timeout=`` seconds), then its status
    GET /stats                the Poller's statistics
    GET /metrics              the library's OpenTelemetry metrics, in Prometheus text format
    GET /healthz              200 while the Poller's loop is alive (a liveness probe), else 503
    GET /readyz               200 once every watched job has been described (a readiness
                              probe), else 503

The Poller opens in the background: the service answers ``/healthz`` (503) at once while
it opens (in fleet mode, connecting to Redis can take a while); requests for jobs wait
for it (up to ``OPEN_WAIT`` seconds, then 503).

Run it (``pip install "asyncoptjob[cli,examples]"``) against the mock endpoint::

    asyncoptjob mock-server --seed-jobs 3 --time-scale 0.01    # prints http://127.0.0.1:PORT
    ASYNCOPTJOB_ENDPOINT_URL=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=x \\
    AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 \\
        uvicorn examples.service:app --port 8000
    curl -N localhost:8000/jobs/job-00000/events

or against SageMaker itself: leave ASYNCOPTJOB_ENDPOINT_URL unset and use your usual
AWS credentials and region.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import structlog
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from asyncoptjob import (
    Event,
    JobErrorEvent,
    JobNotFoundError,
    Poller,
    PollerClosedError,
    PollerOptions,
    TransportError,
    WaitTimeoutError,
)


def options_from_env(environ: Mapping[str, str] = os.environ) -> PollerOptions:
    """Poller options from ``ASYNCOPTJOB_ENDPOINT_URL`` and ``ASYNCOPTJOB_POLL_INTERVAL``."""
    options: PollerOptions = {}
    if url := environ.get("ASYNCOPTJOB_ENDPOINT_URL"):
        options["endpoint_url"] = url
    if interval := environ.get("ASYNCOPTJOB_POLL_INTERVAL"):
        options["poll_interval"] = float(interval)
    return options


def _event_json(event: Event) -> dict[str, Any]:
    if isinstance(event, JobErrorEvent):
        return {
            "job_name": event.job_name,
            "error": type(event.error).__name__,
            "message": str(event.error),
        }
    data: dict[str, Any] = {
        "job_name": event.job_name,
        "previous_status": event.previous_status.value if event.previous_status else None,
        "status": event.status.value,
        "observed_at": event.observed_at.isoformat(),
    }
    if reason := event.description.get("FailureReason"):
        data["failure_reason"] = reason
    return data


#: How long a request for a job waits for the Poller to open before answering 503.
OPEN_WAIT = 30.0


def _poller(request: Request) -> Poller:
    poller: Poller = request.state.poller
    return poller


async def _open_poller(request: Request) -> Poller:
    """The Poller, once it is open (or after ``OPEN_WAIT`` s: its calls then raise 503s)."""
    opened: anyio.Event = request.state.opened
    with anyio.move_on_after(OPEN_WAIT):
        await opened.wait()
    return _poller(request)


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    return name


async def job_events(request: Request) -> Response:
    """The job's status changes as Server-Sent Events; the stream ends with the job."""
    poller = await _open_poller(request)
    try:
        events = poller.watch(_name(request))
    except ValueError as exc:  # an invalid job name: the message says which rule it breaks
        return JSONResponse({"error": str(exc)}, status_code=400)
    except PollerClosedError as exc:  # still opening (or closing): try again shortly
        return JSONResponse({"error": str(exc)}, status_code=503)

    async def stream() -> AsyncIterator[str]:
        # Leaving this generator (job done, or the client went away) closes the watch and
        # unsubscribes; the Poller itself keeps running for the next request.
        async with events as job_events:
            async for event in job_events:
                kind = "error" if isinstance(event, JobErrorEvent) else "status"
                yield f"event: {kind}\ndata: {json.dumps(_event_json(event))}\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


async def job_result(request: Request) -> Response:
    """Wait until the job ends (``?timeout=`` seconds), then answer its final status."""
    poller = await _open_poller(request)
    try:
        timeout = float(request.query_params.get("timeout", "3600"))
        description = await poller.wait_until_done(_name(request), timeout=timeout)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    except PollerClosedError as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    except JobNotFoundError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except WaitTimeoutError as exc:
        pending = {name: status and status.value for name, status in exc.pending.items()}
        return JSONResponse({"error": str(exc), "pending": pending}, status_code=504)
    except TransportError as exc:  # SageMaker kept failing for this job: a bad gateway
        return JSONResponse({"error": str(exc)}, status_code=502)
    body = {
        "job_name": description["OptimizationJobName"],
        "status": description["OptimizationJobStatus"],
    }
    if reason := description.get("FailureReason"):
        body["failure_reason"] = reason
    return JSONResponse(body)


async def stats(request: Request) -> Response:
    """The Poller's statistics: requests by outcome, jobs, current rate limit."""
    snapshot = (await _open_poller(request)).stats
    return JSONResponse(
        {
            "requests": dict(snapshot.requests),
            "retries": snapshot.retries,
            "jobs_active": snapshot.jobs_active,
            "jobs_finished": snapshot.jobs_finished,
            "subscribers": snapshot.subscribers,
            "rate_limit": snapshot.rate_limit,
        }
    )


async def healthz(request: Request) -> Response:
    """Liveness: 200 while the Poller's loop is alive, 503 before it opens or after a crash."""
    health = _poller(request).health()
    return JSONResponse(dataclasses.asdict(health), status_code=200 if health.alive else 503)


async def readyz(request: Request) -> Response:
    """Readiness: 200 once every watched job has been described at least once, else 503."""
    health = _poller(request).health()
    return JSONResponse(dataclasses.asdict(health), status_code=200 if health.ready else 503)


async def metrics(request: Request) -> Response:
    """The Poller's metrics (``asyncoptjob_requests_total``...) in Prometheus text format."""
    registry: CollectorRegistry = request.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def configure_logging(level: str) -> None:
    """Log structlog events at ``level`` and up: the library never configures logging itself."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper()))
    )


def create_app(*, log_level: str | None = None, **options: Any) -> Starlette:
    """The service; ``options`` go to its Poller (see ``asyncoptjob.PollerOptions``).

    The Poller reports its metrics to a meter provider of the service's own, read by
    ``GET /metrics`` (an application with a global OpenTelemetry setup would rather call
    ``opentelemetry.metrics.set_meter_provider`` once and leave ``meter_provider`` out).

    Args:
        log_level: configure structlog at startup (None leaves logging alone).
        **options: the Poller's options.
    """
    registry = CollectorRegistry()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    # One Poller for the whole life of the process (options are checked here, at once).
    poller = Poller(meter_provider=meter_provider, **options)

    async def keep_open(opened: anyio.Event, stop: anyio.Event) -> None:
        # Closing it reaps every background task; a crash inside leaves it not alive.
        async with poller:
            opened.set()
            await stop.wait()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if log_level is not None:
            configure_logging(log_level)
        opened, stop = anyio.Event(), anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                # Opened in the background: /healthz answers (503) while it opens.
                tg.start_soon(keep_open, opened, stop)
                try:
                    yield {"poller": poller, "opened": opened, "metrics": registry}
                finally:
                    stop.set()
        finally:
            meter_provider.shutdown()

    return Starlette(
        routes=[
            Route("/jobs/{name}/events", job_events),
            Route("/jobs/{name}", job_result),
            Route("/stats", stats),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )


app = create_app(log_level=os.environ.get("ASYNCOPTJOB_LOG_LEVEL", "INFO"), **options_from_env())
"""The app for ``uvicorn examples.service:app``, configured from the environment."""
