"""Soak: thousands of jobs under rotating faults for minutes, checking every promise.

One long-lived ``Poller`` (as a service would hold) watches jobs that arrive in waves,
while the mock SageMaker endpoint, in its own process, cycles through faults: an
account-wide rate limit all the time, plus throttling storms, bursts of 500/503,
dropped connections, malformed bodies and answers slower than the read timeout.
Callers come and go: one watcher per group of jobs reads every event, churn watchers
are cancelled at random points, and ``wait_until_done`` callers wait for samples.

Checked, against the endpoint's ground truth (``/_mock/transitions``):

* every watched job ends with exactly one terminal outcome, its last event;
* per caller and job, events are in order, never repeat a status, and are the job's
  true statuses in their true order; the final status is the true final status;
* the request rate the endpoint saw never exceeded ``max_rate`` plus the burst;
* after the Poller closes: no task left, no connection open, nothing watched.

Resource use over time (RSS, tasks, request rate, events, limiter rate, connections)
is sampled and written as JSON, with a short text summary on stdout::

    python -m benchmarks.soak --jobs 10000 --minutes 10 --json soak.json
    python -m benchmarks.soak --quick          # a few seconds, the test suite's smoke run

Exit status: 0 when no invariant was violated, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import anyio
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from asyncoptjob import (
    Event,
    Poller,
    PollPolicy,
    RetryPolicy,
    WaitTimeoutError,
)
from asyncoptjob.mock import MockProcess
from asyncoptjob.testing import EventOrder, InvariantError, check_truth

from .environment import AWS_ENV, REGION
from .measure import cpu_seconds, rss_mib

__all__ = ["SoakConfig", "main", "run"]

DESCRIBE = "DescribeOptimizationJob"
LIST = "ListOptimizationJobs"
#: Sending and arriving may differ by this much (network hop, connection set-up).
ARRIVAL_JITTER = 0.05


@dataclass(frozen=True)
class SoakConfig:
    """What one soak run does (``--quick`` picks a few-second version of it)."""

    jobs: int = 2000
    seconds: float = 300.0
    max_rate: float = 200.0
    account_rate: float = 160.0  # the endpoint's own limit, below max_rate: throttles happen
    concurrency: int = 32
    waves: int = 10
    group_size: int = 50
    fault_period: float = 60.0
    fault_cycles: int | None = None  # None: rotate through the faults for the whole run
    sample_every: float = 5.0
    poll_interval: float = 5.0
    read_timeout: float = 2.0
    slow_ms: float = 3000.0
    retry_initial: float = 0.5
    retry_max: float = 10.0
    seed: int = 1

    @classmethod
    def quick(cls, seed: int = 1) -> SoakConfig:
        return cls(
            jobs=80,
            seconds=5.0,
            max_rate=150.0,
            account_rate=120.0,
            concurrency=16,
            waves=3,
            group_size=10,
            # One pass through the faults, then calm: after a throttling storm the adaptive
            # rate takes several seconds to climb back (CUBIC), as long as the whole run.
            fault_period=4.0,
            fault_cycles=1,
            sample_every=0.25,
            poll_interval=0.05,
            read_timeout=0.3,
            slow_ms=500.0,
            retry_initial=0.02,
            retry_max=0.3,
            seed=seed,
        )

    def lifecycle(self) -> dict[str, Any]:
        """Job durations (real seconds) so that the last wave ends well before the run."""
        d = self.seconds
        return {
            "starting": [0.02 * d, 0.05 * d],
            "in_progress": [0.05 * d, 0.3 * d],
            "stopping": [0.01 * d, 0.03 * d],
            "failure_rate": 0.1,
            "stop_rate": 0.05,
        }

    def phases(self) -> list[tuple[str, float, dict[str, Any]]]:
        """The fault cycle: (name, fraction of the period, faults beyond the rate limit)."""
        return [
            ("calm", 0.15, {}),
            ("throttle_storm", 0.15, {"throttle_rate": 0.95}),
            ("5xx_burst", 0.10, {"error_rate": 0.6}),
            ("calm", 0.10, {}),
            ("drops", 0.10, {"drop_rate": 0.3}),
            ("malformed", 0.10, {"malformed_rate": 0.3}),
            # Bodies that parse but lack a usable status: retried per job, nothing lost.
            ("bad_answers", 0.10, {"missing_status_rate": 0.15, "mistyped_status_rate": 0.15}),
            ("slow", 0.10, {"latency_ms": self.slow_ms}),
            ("mixed", 0.10, {"throttle_rate": 0.1, "error_rate": 0.1, "drop_rate": 0.05}),
        ]


CLEAR = {
    "throttle_rate": 0.0,
    "error_rate": 0.0,
    "drop_rate": 0.0,
    "malformed_rate": 0.0,
    "missing_status_rate": 0.0,
    "mistyped_status_rate": 0.0,
    "latency_ms": 0.0,
}


# -- the endpoint, in its own process ------------------------------------------------------


class Endpoint:
    """``python -m asyncoptjob.mock`` on 127.0.0.1, and its control path."""

    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.url = ""
        self.process = MockProcess(
            [
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--seed",
                str(config.seed),
                "--describe-rate",
                str(config.account_rate),
                "--describe-burst",
                str(max(1.0, config.account_rate / 10)),
                "--request-log-size",
                "200000",
            ],
            env={**os.environ, **AWS_ENV},
        )
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Endpoint:
        self.url = await anyio.to_thread.run_sync(self.process.start)
        # trust_env=False: never through a proxy, whatever the environment says. No
        # keep-alive, so the endpoint's open-connection count is the library's alone.
        self.http = aiohttp.ClientSession(
            trust_env=False, connector=aiohttp.TCPConnector(force_close=True)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.close()
        await anyio.to_thread.run_sync(self.process.stop)

    async def call(self, route: str, body: dict[str, Any] | None = None, **query: Any) -> Any:
        assert self.http is not None
        url = f"{self.url}/_mock/{route}"
        if body is None:
            async with self.http.get(url, params=query) as response:
                response.raise_for_status()
                return await response.json()
        async with self.http.post(url, json=body) as response:
            response.raise_for_status()
            return await response.json()

    async def seed(self, count: int, prefix: str, lifecycle: dict[str, Any]) -> list[str]:
        result = await self.call("seed", {"count": count, "prefix": prefix, "lifecycle": lifecycle})
        names: list[str] = result["names"]
        return names

    async def set_faults(self, faults: dict[str, Any]) -> None:
        await self.call("faults", faults)

    async def connections(self) -> int | None:
        """Client connections open to the endpoint, not counting this very request's."""
        count = (await self.call("stats")).get("connections")
        return None if count is None else count - 1

    async def max_in_window(self, window: float) -> int:
        result = await self.call(
            "max_requests_in_window", operation="describe", window_s=window, outcome="any"
        )
        return int(result["max"])

    def cpu_seconds(self) -> float:
        pid = self.process.pid
        return math.nan if pid is None else cpu_seconds(pid)

    def rss_mib(self) -> float:
        pid = self.process.pid
        return math.nan if pid is None else rss_mib(pid)


# -- measurements ----------------------------------------------------------------------------


class LogCounter:
    """A structlog processor: count events by level and name, print nothing."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, logger: Any, method: str, event_dict: dict[str, Any]) -> Any:
        self.counts[f"{method}:{event_dict.get('event')}"] += 1
        raise structlog.DropEvent


@dataclass
class Record:
    """What the run saw, kept small: statuses per caller and job, and the violations."""

    # caller id -> its jobs' statuses, checked as they arrive ("!Code" for a JobErrorEvent)
    seen: dict[str, EventOrder] = field(default_factory=lambda: defaultdict(EventOrder))
    complete: set[str] = field(default_factory=set)  # callers that read to the end
    waited: dict[str, str] = field(default_factory=dict)  # wait_until_done: job -> status
    violations: list[str] = field(default_factory=list)
    events: int = 0
    cancelled_callers: int = 0
    timeouts: int = 0

    def add(self, caller: str, event: Event) -> None:
        self.events += 1
        self.check(caller, self.seen[caller].add, event)

    def check(self, who: str, check: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Run one of the testing kit's checks; a broken invariant is a violation of ``who``."""
        try:
            check(*args, **kwargs)
        except InvariantError as exc:
            self.violate(f"{who}/{exc}")

    def violate(self, message: str) -> None:
        if len(self.violations) < 200:
            self.violations.append(message)
        else:
            self.violations[-1] = f"... and more ({message})"


# -- the run ---------------------------------------------------------------------------------


async def _fault_cycle(endpoint: Endpoint, config: SoakConfig, phase: list[str]) -> None:
    """Rotate through the fault phases (``fault_cycles`` times, or as long as the run lasts)."""
    cycles = 0
    while config.fault_cycles is None or cycles < config.fault_cycles:
        for name, fraction, faults in config.phases():
            phase[0] = name
            await endpoint.set_faults({**CLEAR, **faults})
            await anyio.sleep(fraction * config.fault_period)
        cycles += 1
    phase[0] = "calm"
    await endpoint.set_faults(CLEAR)


async def _primary(poller: Poller, caller: str, names: list[str], record: Record) -> None:
    """Reads every event of its jobs to the end; must see one terminal outcome per job."""
    async for event in poller.watch(names):
        record.add(caller, event)
    record.complete.add(caller)


async def _churn(
    poller: Poller, caller: str, names: list[str], record: Record, lifetime: float
) -> None:
    """Watches a random subset and is cancelled at a random point (or finishes first)."""
    with anyio.move_on_after(lifetime) as scope:
        async for event in poller.watch(names):
            record.add(caller, event)
            if random.random() < 0.2:
                await anyio.sleep(random.uniform(0, 0.05))  # sometimes a slow reader
    if scope.cancelled_caught:
        record.cancelled_callers += 1
    else:
        record.complete.add(caller)


async def _waiter(poller: Poller, names: list[str], record: Record, timeout: float) -> None:
    try:
        results = await poller.wait_until_done(names, timeout=timeout)
    except WaitTimeoutError as exc:
        record.timeouts += 1
        results = dict(exc.done)
    except Exception as exc:  # a JobErrorEvent's error, raised: reported, not a crash
        record.violate(f"wait_until_done raised {type(exc).__name__}: {exc}")
        return
    for name, description in results.items():
        record.waited[name] = description["OptimizationJobStatus"]


async def _waves(
    poller: Poller, endpoint: Endpoint, config: SoakConfig, record: Record, all_names: list[str]
) -> None:
    """Seed the jobs in waves over the first half of the run and start their callers."""
    rng = random.Random(config.seed)
    lifecycle = config.lifecycle()
    per_wave = [config.jobs // config.waves] * config.waves
    per_wave[-1] += config.jobs - sum(per_wave)
    gap = config.seconds * 0.5 / config.waves
    async with anyio.create_task_group() as tg:
        for w, count in enumerate(per_wave):
            names = await endpoint.seed(count, f"w{w}", lifecycle)
            all_names.extend(names)
            for g in range(0, len(names), config.group_size):
                group = names[g : g + config.group_size]
                tg.start_soon(_primary, poller, f"p{w}.{g}", group, record)
            for c in range(3):
                subset = rng.sample(names, min(len(names), 20))
                lifetime = rng.uniform(0, config.seconds * 0.4)
                tg.start_soon(_churn, poller, f"c{w}.{c}", subset, record, lifetime)
            sample = rng.sample(names, max(1, len(names) // 10))
            tg.start_soon(_waiter, poller, sample, record, config.seconds * 1.5)
            await anyio.sleep(gap)


async def _sampler(
    poller: Poller,
    endpoint: Endpoint,
    config: SoakConfig,
    samples: list[dict[str, Any]],
    phase: list[str],
    started: float,
) -> None:
    last_requests = 0
    last_t = time.monotonic()
    while True:
        await anyio.sleep(config.sample_every)
        now = time.monotonic()
        stats = poller.stats
        try:
            connections = await endpoint.connections()
        except aiohttp.ClientError:
            connections = None
        requests = stats.total_requests
        samples.append(
            {
                "t": round(now - started, 2),
                "phase": phase[0],
                "rss_mb": round(rss_mib(), 1),
                "mock_rss_mb": round(endpoint.rss_mib(), 1),
                "tasks": len(asyncio.all_tasks()),
                "requests_per_s": round((requests - last_requests) / max(1e-9, now - last_t), 1),
                "requests": dict(stats.requests),
                "retries": stats.retries,
                "events": stats.events_emitted,
                "jobs_active": stats.jobs_active,
                "subscribers": stats.subscribers,
                "in_flight": stats.in_flight,
                "rate_limit": None if stats.rate_limit is None else round(stats.rate_limit, 1),
                "measured_rate": round(stats.measured_rate, 1),
                "connections": connections,
            }
        )
        last_requests, last_t = requests, now


async def _rate_watch(endpoint: Endpoint, config: SoakConfig, worst: dict[str, int]) -> None:
    """Keep the worst windows the endpoint saw (its log holds the last 200,000 requests)."""
    while True:
        await anyio.sleep(max(1.0, config.seconds / 20))
        for window in (0.5, 1.0, 5.0):
            key = f"{window:g}s"
            worst[key] = max(worst.get(key, 0), await endpoint.max_in_window(window))


def _check_truth(record: Record, truth: dict[str, list[list[Any]]], names: Iterable[str]) -> None:
    true_statuses = {name: [s for s, _ in items] for name, items in truth.items()}
    for caller, order in record.seen.items():
        for name, history in order.histories.items():
            real = true_statuses.get(name)
            if real is None:
                record.violate(f"{caller}/{name}: unknown to the endpoint")
                continue
            statuses = [s for s in history if not s.startswith("!")]
            record.check(caller, check_truth, name, statuses, real)
    for name, status in record.waited.items():
        truth_of = true_statuses.get(name, [])
        record.check("wait_until_done", check_truth, name, [status], truth_of, finished=True)
    # Every primary caller read to the end: exactly one terminal outcome per job, last.
    watched = set()
    for caller, order in record.seen.items():
        if not caller.startswith("p"):
            continue
        if caller not in record.complete:
            record.violate(f"{caller}: did not finish")
        watched.update(order.histories)
        record.check(caller, order.check_finished)
    missing = set(names) - watched
    if missing:
        record.violate(f"{len(missing)} jobs never reported, e.g. {sorted(missing)[:3]}")


async def run(config: SoakConfig) -> dict[str, Any]:
    """Run one soak and return its report (see the module docstring)."""
    counter = LogCounter()
    structlog.configure(processors=[counter])
    record = Record()
    samples: list[dict[str, Any]] = []
    worst: dict[str, int] = {}
    phase = ["calm"]
    names: list[str] = []
    session = get_session()
    started = time.monotonic()
    cpu_start = cpu_seconds()
    gc.collect()
    objects_start = len(gc.get_objects())
    async with Endpoint(config) as endpoint:
        poller = Poller(
            endpoint_url=endpoint.url,
            region_name=REGION,
            session=session,
            config=AioConfig(read_timeout=config.read_timeout, connect_timeout=5),
            max_concurrency=config.concurrency,
            max_rate=config.max_rate,
            poll_interval=PollPolicy(
                interval=config.poll_interval, max_interval=config.poll_interval * 6
            ),
            retry=RetryPolicy(
                initial_wait=config.retry_initial,
                max_wait=config.retry_max,
                max_elapsed=max(30.0, config.seconds),
            ),
        )
        async with poller:
            baseline_tasks = len(asyncio.all_tasks())
            async with anyio.create_task_group() as background:
                background.start_soon(_fault_cycle, endpoint, config, phase)
                background.start_soon(_sampler, poller, endpoint, config, samples, phase, started)
                background.start_soon(_rate_watch, endpoint, config, worst)
                with anyio.move_on_after(config.seconds * 3) as overall:
                    await _waves(poller, endpoint, config, record, names)
                if overall.cancelled_caught:
                    record.violate("the callers did not finish within 3x the planned duration")
                background.cancel_scope.cancel()
            ran_for = time.monotonic() - started
            await endpoint.set_faults(CLEAR)
            for window in (0.5, 1.0, 5.0):
                key = f"{window:g}s"
                worst[key] = max(worst.get(key, 0), await endpoint.max_in_window(window))
            final_stats = poller.stats
            tasks_while_open = len(asyncio.all_tasks())
        # -- after the Poller closed ------------------------------------------------------
        truth = (await endpoint.call("transitions"))["jobs"]
        _check_truth(record, truth, names)
        burst = max(1.0, config.max_rate * 0.05)
        for key, count in worst.items():
            window = float(key[:-1])
            bound = config.max_rate * (window + ARRIVAL_JITTER) + burst + 1
            if count > bound:
                record.violate(f"{count} requests in {key} > {bound:.0f} (max_rate + burst)")
        if (final_stats.jobs_active, final_stats.subscribers) != (0, 0):
            record.violate(f"still watched after every caller finished: {final_stats}")
        leftover = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        for _ in range(100):
            if not leftover:
                break
            await asyncio.sleep(0.01)
            leftover = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        if leftover:
            record.violate(f"{len(leftover)} tasks left after the Poller closed: {leftover}")
        connections = None
        for _ in range(100):
            connections = await endpoint.connections()
            if connections in (0, None):
                break
            await asyncio.sleep(0.05)
        if connections:
            record.violate(f"{connections} connections still open after the Poller closed")
        mock_cpu = endpoint.cpu_seconds()
        counters = (await endpoint.call("stats"))["counters"]
        mock_counts = counters.get(DESCRIBE, {})
        list_counts = counters.get(LIST, {})
        # Every describe the endpoint saw was one the library chose to send, and the other
        # way round: nothing below the library (botocore, aiohttp) retried on its own.
        sent = sum(final_stats.requests.values())
        if sent != sum(mock_counts.values()):
            record.violate(f"the library sent {sent} describes, the endpoint saw {mock_counts}")
    gc.collect()
    structlog.reset_defaults()
    return _report(
        config,
        record,
        samples,
        worst,
        final_stats,
        mock_counts,
        list_counts,
        {
            "ran_for_s": round(ran_for, 1),
            "client_cpu_s": round(cpu_seconds() - cpu_start, 1),
            "mock_cpu_s": round(mock_cpu, 1),
            "tasks_baseline": baseline_tasks,
            "tasks_at_end_while_open": tasks_while_open,
            "tasks_after_close": len(leftover),
            "connections_after_close": connections,
            "gc_objects_start": objects_start,
            "gc_objects_end": len(gc.get_objects()),
            "logs": dict(counter.counts),
        },
    )


def _report(
    config: SoakConfig,
    record: Record,
    samples: list[dict[str, Any]],
    worst: dict[str, int],
    stats: Any,
    mock_counts: dict[str, int],
    list_counts: dict[str, int],
    resources: dict[str, Any],
) -> dict[str, Any]:
    rss = [s["rss_mb"] for s in samples] or [math.nan]
    quarter = max(1, len(rss) // 4)
    outcomes: Counter[str] = Counter()
    for caller, order in record.seen.items():
        if caller.startswith("p"):
            for history in order.histories.values():
                outcomes[history[-1] if history else "none"] += 1
    return {
        "config": asdict(config),
        "verdict": "ok" if not record.violations else "VIOLATIONS",
        "violations": record.violations,
        "invariants": {
            "jobs": config.jobs,
            "jobs_with_one_terminal_outcome": sum(outcomes.values()),
            "final_outcomes": dict(outcomes),
            "events": record.events,
            "callers_complete": len(record.complete),
            "callers_cancelled": record.cancelled_callers,
            "waited_jobs_checked": len(record.waited),
            "wait_timeouts": record.timeouts,
            "max_requests_in_window": worst,
            "allowed_per_second": config.max_rate,
        },
        "requests": {
            "library": dict(stats.requests),
            "library_total": sum(stats.requests.values()),
            "retries": stats.retries,
            "endpoint": mock_counts,
            "endpoint_total": sum(mock_counts.values()),
            "list_library": dict(getattr(stats, "list_requests", {})),
            "list_endpoint": list_counts,
            "sweeps": getattr(stats, "sweeps", 0),
        },
        "resources": {
            **resources,
            "rss_mb_first_quarter_max": max(rss[:quarter]),
            "rss_mb_last_quarter_max": max(rss[-quarter:]),
            "rss_mb_peak": max(rss),
            "tasks_peak": max((s["tasks"] for s in samples), default=0),
            "connections_peak": max((s["connections"] or 0 for s in samples), default=0),
            "requests_per_s_peak": max((s["requests_per_s"] for s in samples), default=0),
        },
        "samples": samples,
    }


def summary(report: dict[str, Any]) -> str:
    """A few lines a human reads first."""
    c, inv, req, res = (report[k] for k in ("config", "invariants", "requests", "resources"))
    lines = [
        f"soak: {c['jobs']} jobs, {res['ran_for_s']} s, max_rate {c['max_rate']}/s, "
        f"account limit {c['account_rate']}/s, concurrency {c['concurrency']}",
        f"verdict: {report['verdict']} ({len(report['violations'])} violations)",
        f"outcomes: {inv['final_outcomes']}; events {inv['events']}; callers complete "
        f"{inv['callers_complete']}, cancelled {inv['callers_cancelled']}; "
        f"wait_until_done checked {inv['waited_jobs_checked']} jobs",
        f"describes: library {req['library_total']} {req['library']}, endpoint "
        f"{req['endpoint_total']}; retries {req['retries']}; lists: endpoint "
        f"{req['list_endpoint']}, sweeps {req['sweeps']}",
        f"rate: worst windows {inv['max_requests_in_window']} (max_rate {c['max_rate']}/s)",
        f"memory: RSS first quarter <= {res['rss_mb_first_quarter_max']} MiB, last quarter <= "
        f"{res['rss_mb_last_quarter_max']} MiB, peak {res['rss_mb_peak']} MiB; gc objects "
        f"{res['gc_objects_start']} -> {res['gc_objects_end']}",
        f"tasks: peak {res['tasks_peak']}, after close {res['tasks_after_close']}; connections: "
        f"peak {res['connections_peak']}, after close {res['connections_after_close']}",
        f"cpu: client {res['client_cpu_s']} s, mock {res['mock_cpu_s']} s",
    ]
    lines += [f"  VIOLATION: {v}" for v in report["violations"][:20]]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    parser.add_argument("--jobs", type=int, help="jobs in total (default 2000)")
    parser.add_argument("--minutes", type=float, help="planned duration (default 5)")
    parser.add_argument("--max-rate", type=float, help="the Poller's max_rate (requests/s)")
    parser.add_argument("--account-rate", type=float, help="the endpoint's limit (requests/s)")
    parser.add_argument("--concurrency", type=int, help="the Poller's max_concurrency")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH", help="write the full report here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = SoakConfig.quick(args.seed) if args.quick else SoakConfig(seed=args.seed)
    changes: dict[str, Any] = {}
    if args.jobs is not None:
        changes["jobs"] = args.jobs
    if args.minutes is not None:
        changes["seconds"] = args.minutes * 60
    if args.max_rate is not None:
        changes["max_rate"] = args.max_rate
    if args.account_rate is not None:
        changes["account_rate"] = args.account_rate
    if args.concurrency is not None:
        changes["concurrency"] = args.concurrency
    if changes:
        config = SoakConfig(**{**asdict(config), **changes})
    if not args.quick:
        # Scale the run's rhythm to its length: ~5 fault cycles, ~100+ samples.
        config = SoakConfig(
            **{
                **asdict(config),
                "fault_period": max(10.0, config.seconds / 5),
                "sample_every": max(1.0, min(10.0, config.seconds / 120)),
            }
        )
    os.environ.update(AWS_ENV)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    report = anyio.run(run, config)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    with contextlib.suppress(BrokenPipeError):
        print(summary(report), flush=True)
    return 0 if report["verdict"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
