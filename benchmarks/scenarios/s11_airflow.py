"""S11 Airflow: 500 deferred jobs in one triggerer-like loop, at an account's describe limit.

Each contender runs in a fresh process (its memory and its loop its own), against its
own mock process holding the same 500 jobs (same seed, same schedules) and the same
account limit. The process is a triggerer as far as the triggers can tell: one asyncio
loop running one task per deferred job, each iterating its trigger's ``run()`` to the
first event, the AWS connection ``aws_default`` given as ``AIRFLOW_CONN_AWS_DEFAULT``
(JSON, ``endpoint_url`` pointing at the mock). Both poll each job every ``interval``.

- **asyncoptjob**: ``asyncoptjob.airflow.OptimizationJobTrigger``; the 500 share one
  Poller (one client, one adaptive rate budget, List sweeps once enough jobs are
  watched), opened by the first trigger.
- **provider-style**: what the Amazon provider's ``SageMakerTrigger`` does for the job
  types it knows, written for optimization jobs (the provider has none, and botocore no
  waiter): per trigger its own hook (``AwsGenericHook.get_async_conn()``) and aiobotocore
  client (botocore's default retries, as the provider leaves them), then describe and
  ``sleep(interval)`` until a terminal status. A throttle that outlives botocore's
  retries counts as one attempt, as the provider's ``async_wait`` treats any
  non-terminal waiter error; any other error ends the trigger with an error event.

Measured per contender: API calls and the throttled share (the mock's counts), triggers
failed (no event, or an event that disagrees with the mock's final status), clients
created (asyncoptjob: botocore's ``creating-client-class`` events on the registry's
sessions; provider-style: one per trigger, counted as each is created), the worst loop
lag (a 1 ms ticker over the whole run, start-up included) beside the longest full
(generation 2) garbage collection in that time, the peak RSS above the
process's size before the first trigger (sampled every 50 ms), and the p95 detection
latency (the event's arrival minus the mock's true terminal transition).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from ..environment import configure_process
from ..isolation import run_side_by_side
from ..measure import LagProbe, percentile, rss_mib
from ..registry import RunContext, scenario
from ..report import Column, Plot, Row, ScenarioResult, Table, Target, fmt

TERMINAL = ("COMPLETED", "FAILED", "STOPPED")
THROTTLE_CODES = ("ThrottlingException", "Throttling", "TooManyRequestsException")


@dataclass(frozen=True, slots=True)
class Sizes:
    """The experiment's size (seconds are real seconds)."""

    jobs: int
    lifecycle: dict[str, Any]
    interval: float
    limit: float


FULL = Sizes(
    jobs=500,
    lifecycle={
        "starting": [5, 15],
        "in_progress": [20, 60],
        "failure_rate": 0.1,
        "stop_rate": 0.05,
        "stopping": [2, 5],
    },
    interval=5.0,
    limit=20.0,
)
QUICK = Sizes(
    jobs=30,
    # Long enough that most jobs end after the child process has started (about 5 s).
    lifecycle={"starting": [4, 6], "in_progress": [1, 3], "failure_rate": 0.2},
    interval=0.2,
    limit=20.0,
)

VARIANTS = {
    "asyncoptjob": ("asyncoptjob", "asyncoptjob OptimizationJobTrigger (one shared Poller)"),
    "provider": (
        "aiobotocore_loops",
        "provider-style trigger (client per trigger, describe + sleep)",
    ),
}
COLUMNS = [
    Column("calls", "API calls", ",.0f"),
    Column("throttled_pct", "throttled %", ".1f"),
    Column("failed", "triggers failed", ",.0f"),
    Column("clients", "clients created", ",.0f"),
    Column("worst_lag_ms", "worst loop lag ms", ",.0f"),
    Column("gc_pause_ms", "longest full GC ms", ",.0f"),
    Column("rss_mib", "peak RSS MiB", ",.0f"),
    Column("p95_s", "detection p95 s", ".2f"),
    Column("wall_s", "time s", ".0f"),
]


# -- the child process: one contender in a triggerer-like loop ------------------------


def measure(variant: str, url: str, names: list[str], interval: float) -> dict[str, Any]:
    """Run ``names``' triggers in one loop; return each event and the process's figures."""
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="s11-airflow-")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": url, "region_name": "us-east-1"},
        }
    )
    import airflow.providers.amazon  # noqa: F401  (Airflow configures logging on import)

    configure_process()  # back to an application's logging with INFO off
    logging.getLogger().setLevel(logging.WARNING)
    return asyncio.run(_triggerer(variant, names, interval))


async def _triggerer(variant: str, names: list[str], interval: float) -> dict[str, Any]:
    run_one, clients = _asyncoptjob(interval) if variant == "asyncoptjob" else _provider(interval)
    events: dict[str, dict[str, Any]] = {}
    base = rss_mib()
    peak = base
    done = asyncio.Event()

    async def sample_memory() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib())
            await asyncio.sleep(0.05)

    async def one(name: str) -> None:
        try:
            payload = await run_one(name)
        except Exception as exc:  # a trigger that crashed: no event
            payload = {"status": "crashed", "job_status": None, "message": repr(exc)}
        events[name] = {
            "status": payload["status"],
            "job_status": payload.get("job_status"),
            "at": time.time(),
        }

    pauses: list[float] = [0.0]
    gc_started = [0.0]

    def gc_pause(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info["generation"] == 2:
            pauses.append(time.perf_counter() - gc_started[0])

    started = time.monotonic()
    started_at = time.time()
    gc.callbacks.append(gc_pause)
    try:
        async with LagProbe(0.001) as probe:
            sampler = asyncio.create_task(sample_memory())
            await asyncio.gather(*(one(name) for name in names))
            done.set()
            await sampler
            await probe.settle()
    finally:
        gc.callbacks.remove(gc_pause)
    return {
        "gc_pause_ms": 1000 * max(pauses),
        "events": events,
        "clients": clients(),
        "worst_lag_ms": 1000 * probe.worst,
        "rss_mib": peak - base,
        "wall_s": time.monotonic() - started,
        "started_at": started_at,
    }


def _asyncoptjob(interval: float) -> tuple[Any, Any]:
    from asyncoptjob.airflow import OptimizationJobTrigger, registry

    before = registry().stats().clients_created

    async def run_one(name: str) -> dict[str, Any]:
        trigger = OptimizationJobTrigger(name, poller_options={"poll_interval": interval})
        async for event in trigger.run():
            payload: dict[str, Any] = event.payload
            return payload
        raise RuntimeError("the trigger returned without an event")

    return run_one, lambda: registry().stats().clients_created - before


def _provider(interval: float) -> tuple[Any, Any]:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
    from botocore.exceptions import ClientError

    created = 0

    async def run_one(name: str) -> dict[str, Any]:
        nonlocal created
        hook = AwsGenericHook(aws_conn_id="aws_default", client_type="sagemaker")
        async with await hook.get_async_conn() as client:
            created += 1
            first = True
            while True:
                if not first:
                    await asyncio.sleep(interval)
                first = False
                try:
                    answer = await client.describe_optimization_job(OptimizationJobName=name)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") in THROTTLE_CODES:
                        continue  # one attempt used up, as in the provider's async_wait
                    return {"status": "error", "job_status": None, "message": str(error)}
                status = answer["OptimizationJobStatus"]
                if status in TERMINAL:
                    ok = status == "COMPLETED"
                    return {"status": "success" if ok else "error", "job_status": status}

    return run_one, lambda: created


# -- the parent: mocks, ground truth, the table ----------------------------------------


def _failed(events: dict[str, dict[str, Any]], truth: dict[str, list[tuple[str, float]]]) -> int:
    failed = 0
    for name, transitions in truth.items():
        event = events.get(name)
        final = transitions[-1][0]
        expected = "success" if final == "COMPLETED" else "error"
        if event is None or event["job_status"] != final or event["status"] != expected:
            failed += 1
    return failed


def _p95(
    events: dict[str, dict[str, Any]], truth: dict[str, list[tuple[str, float]]], started: float
) -> float:
    """The p95 of event arrival minus true terminal time, over the jobs that ended after
    the triggers started (one that ended before is found by the first describe)."""
    latencies = []
    for name, transitions in truth.items():
        event = events.get(name)
        final, at = transitions[-1]
        if event is not None and event["job_status"] == final and at > started:
            latencies.append(event["at"] - at)
    return percentile(latencies, 95)


def _run_variant(ctx: RunContext, variant: str, sizes: Sizes) -> dict[str, float]:
    with ctx.mock(seed=11) as mock:
        mock.set_faults(
            describe_rate=sizes.limit,
            describe_burst=sizes.limit,
            list_rate=sizes.limit,
            list_burst=sizes.limit,
        )
        names = mock.seed(sizes.jobs, prefix="s11", lifecycle=sizes.lifecycle)
        (child,) = run_side_by_side(
            [
                (
                    "benchmarks.scenarios.s11_airflow:measure",
                    {
                        "variant": variant,
                        "url": mock.url,
                        "names": names,
                        "interval": sizes.interval,
                    },
                )
            ]
        )
        counters = mock.stats()["counters"]
        truth = mock.transitions()
    calls = sum(sum(outcomes.values()) for outcomes in counters.values())
    throttled = sum(
        count
        for outcomes in counters.values()
        for outcome, count in outcomes.items()
        if outcome in THROTTLE_CODES
    )
    values = {
        "calls": calls,
        "throttled": throttled,
        "throttled_pct": 100 * throttled / calls if calls else 0.0,
        "failed": _failed(child["events"], truth),
        "clients": child["clients"],
        "worst_lag_ms": child["worst_lag_ms"],
        "gc_pause_ms": child["gc_pause_ms"],
        "rss_mib": child["rss_mib"],
        "p95_s": _p95(child["events"], truth, child["started_at"]),
        "wall_s": child["wall_s"],
    }
    ctx.log(
        f"  {variant:<12} {calls:6,} calls ({values['throttled_pct']:.1f} % throttled), "
        f"{values['failed']} failed, {values['clients']} clients, worst lag "
        f"{values['worst_lag_ms']:.0f} ms (full GC {values['gc_pause_ms']:.0f} ms), "
        f"+{values['rss_mib']:.0f} MiB, p95 "
        f"{values['p95_s']:.2f} s, {values['wall_s']:.0f} s"
    )
    return values


@scenario("s11", "S11 Airflow: 500 deferred jobs in one triggerer at an account limit")
def run(ctx: RunContext) -> ScenarioResult:
    sizes = QUICK if ctx.quick else FULL
    repeats = ctx.repeats_or(1)
    samples: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:  # one after the other: each loop's lag is its own
            samples[variant].append(_run_variant(ctx, variant, sizes))
    rows = []
    for variant, (contender, label) in VARIANTS.items():
        values = {
            column.key: percentile([s[column.key] for s in samples[variant]], 50)
            for column in COLUMNS
        }
        rows.append(Row(contender, label, dict(values), repeats=samples[variant]))
    mine, theirs = rows
    title = "S11 Airflow: 500 deferred jobs in one triggerer at an account limit"
    return ScenarioResult(
        key="s11",
        name="s11_airflow",
        title=title,
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "jobs": sizes.jobs,
            "interval_s": sizes.interval,
            "describe_rate_limit": sizes.limit,
            **{f"lifecycle.{k}": v for k, v in sizes.lifecycle.items()},
        },
        tables=[
            Table(
                "airflow",
                f"{sizes.jobs:,} deferred jobs, one loop, poll interval {sizes.interval:g} s, "
                f"account limit {sizes.limit:g} describes/s (and List calls/s)",
                COLUMNS,
                rows,
                "calls = every AWS call the mock received (describes, and asyncoptjob's List "
                "sweeps); failed = no event, or an event that disagrees with the mock's final "
                "status; worst loop lag from a 1 ms ticker over the whole run; RSS above the "
                "process's size before the first trigger; longest full GC = the longest "
                "generation-2 garbage collection during the run (Airflow's imports make the "
                "heap large, and the triggerer does not gc.freeze() it): it holds the loop "
                "like any callback.",
            )
        ],
        targets=[
            Target(
                "s11_failed",
                "S11: every asyncoptjob trigger gets its one right event",
                fmt(mine.values.get("failed")),
                mine.values.get("failed") == 0,
                f"provider-style: {fmt(theirs.values.get('failed'))} failed",
            ),
            Target(
                "s11_one_client",
                "S11: one client for every asyncoptjob trigger of the process",
                fmt(mine.values.get("clients")),
                mine.values.get("clients") == 1,
                f"provider-style: {fmt(theirs.values.get('clients'))} clients",
            ),
        ],
        plots=[Plot("airflow", "calls", "S11 API calls, 500 deferred jobs (lower is better)")],
        notes=[
            "Each contender ran alone in its own process, one after the other, on a "
            "machine shared with other work: loop lag and detection latency are noisy.",
        ],
        run={"repeats": repeats},
    )
