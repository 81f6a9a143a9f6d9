"""S8 durable watches: what ``state=`` costs, and what it saves on a restart.

- **Events/s with and without state**: a Poller watches N jobs through an instant
  in-process transport (each job answers STARTING, INPROGRESS, COMPLETED on its first
  three describes; 1 ms poll interval), and one consumer reads every event. With
  ``state=`` each event is committed (batched, written in a worker thread). Target:
  with state >= 0.8x in-memory. The worst event-loop lag of a 5 ms ticker during the
  run with state is the lag while committing (target: <= 10 ms from the commits; the
  ticker also sees the hub's own work, so compare with the run without state).
- **Open**: a state file holding the cursors of N jobs for one consumer ("svc"),
  written by a durable watch of the N jobs (``consumer="svc"``, each job still
  INPROGRESS) that is then left: seconds to open a ``Poller(state=path)`` on it (the
  file's checks included; the Poller's own start without ``state=`` is timed beside it
  for comparison) and for ``await poller.unfinished(consumer="svc")`` to read the
  consumer's cursors back (the N names a restart resumes). All through the public API,
  on a ``FakeTransport``, so no client is built and nothing is sent.
- **Restart under a quota**: the mock (its own process) allows R = 20 describes/s; 100
  jobs polled every second ask for 5 R. A first run with ``state=`` learns the rate;
  then a cold start (no state) and a restart on that state file each run 10 s: their
  throttled describes are counted.

All numbers come from one run on a shared 2-core machine: read them as ratios within
the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from asyncoptjob import Poller, PollerOptions, PollPolicy
from asyncoptjob.testing import FakeRequest, FakeTransport, describe_response

from ..measure import LagProbe, medians
from ..mockserver import MockServer
from ..registry import RunContext, scenario
from ..report import Column, Headline, Row, ScenarioResult, Table, Target, fmt

RATE = 20.0
_STATUSES = ("STARTING", "INPROGRESS", "COMPLETED")


@dataclass(frozen=True, slots=True)
class Sizes:
    jobs: int
    open_jobs: int
    restart_jobs: int
    learn_s: float
    window_s: float


FULL = Sizes(jobs=10_000, open_jobs=100_000, restart_jobs=100, learn_s=10.0, window_s=10.0)
QUICK = Sizes(jobs=300, open_jobs=2_000, restart_jobs=30, learn_s=1.0, window_s=1.0)


class LifecycleTransport:
    """Answers each job's describes with STARTING, INPROGRESS, then COMPLETED, at once."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def describe(self, name: str) -> Any:
        seen = self.calls.get(name, 0)
        self.calls[name] = seen + 1
        await asyncio.sleep(0)
        status = _STATUSES[min(seen, 2)]
        return {"OptimizationJobName": name, "OptimizationJobStatus": status}

    async def list_jobs(self, **params: Any) -> Any:
        return {"OptimizationJobSummaries": []}


async def _throughput(count: int, state: str | None) -> dict[str, float]:
    names = [f"dur-{i:06d}" for i in range(count)]
    policy = PollPolicy(interval=0.001, max_interval=0.001, jitter=0.0)
    options: dict[str, Any] = {
        "transport": LifecycleTransport(),
        "poll_interval": policy,
        "strategy": "describe",
    }
    if state is not None:
        options["state"] = state
    events = 0
    async with LagProbe() as probe, Poller(**options) as poller:
        started = time.perf_counter()
        async for _ in poller.watch(names):
            events += 1
        wall = time.perf_counter() - started
        worst = probe.worst
    return {"events": events, "events_per_s": events / wall, "lag_ms": 1000 * worst}


def _still_running(request: FakeRequest) -> dict[str, Any]:
    """Every job answers INPROGRESS: its cursor stays unfinished."""
    return describe_response(request.job_name or "", "INPROGRESS")


async def _open(count: int, path: str) -> dict[str, float]:
    names = [f"open-{i:06d}" for i in range(count)]
    quiet: PollerOptions = {
        "transport": FakeTransport(_still_running),
        "strategy": "describe",
        "poll_interval": PollPolicy(interval=3600.0, max_interval=3600.0),
    }
    durable: PollerOptions = {**quiet, "state": path}
    async with Poller(**durable) as poller, poller.watch(names, consumer="svc"):
        pass  # attaching registers every name for "svc"; nothing is committed
    started = time.perf_counter()
    async with Poller(**quiet):
        bare = time.perf_counter() - started
    started = time.perf_counter()
    async with Poller(**durable) as poller:
        opened = time.perf_counter() - started
        started = time.perf_counter()
        unfinished = await poller.unfinished(consumer="svc")
        loaded = time.perf_counter() - started
    if len(unfinished) != count:
        raise RuntimeError(f"the state file resumes {len(unfinished):,} jobs, not {count:,}")
    return {"open_s": opened, "bare_open_s": bare, "load_s": loaded}


async def _quota_run(url: str, names: list[str], state: str | None, seconds: float) -> int:
    options: dict[str, Any] = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "poll_interval": PollPolicy(interval=1.0, max_interval=1.0),
        "strategy": "describe",
    }
    if state is not None:
        options["state"] = state
    async with Poller(**options) as poller, poller.watch(names) as events:

        async def drain() -> None:
            async for _ in events:
                pass

        reader = asyncio.create_task(drain())
        await asyncio.sleep(seconds)
        throttled = poller.stats.requests.get("throttled", 0)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return throttled


def _restart(sizes: Sizes, folder: str) -> dict[str, float]:
    lifecycle = {"starting": [0, 0], "in_progress": [1e9, 1e9]}
    path = os.path.join(folder, "quota.db")
    with MockServer(seed=8) as mock:
        mock.set_faults(describe_rate=RATE, describe_burst=RATE)
        names = mock.seed(sizes.restart_jobs, prefix="q", lifecycle=lifecycle)
        learn = asyncio.run(_quota_run(mock.url, names, path, sizes.learn_s))
        time.sleep(min(1.0, sizes.window_s))  # the mock's bucket refills
        cold = asyncio.run(_quota_run(mock.url, names, None, sizes.window_s))
        time.sleep(min(1.0, sizes.window_s))
        warm = asyncio.run(_quota_run(mock.url, names, path, sizes.window_s))
    return {"learn_throttles": learn, "cold_throttles": cold, "warm_throttles": warm}


COLUMNS = [
    Column("events_per_s", "events/s", ",.0f"),
    Column("vs_memory", "vs in-memory", ".2f"),
    Column("lag_ms", "worst loop lag, ms", ",.1f"),
]


@scenario("s8", "S8 durable watches: state= throughput, loop lag, open time, restart throttles")
def run(ctx: RunContext) -> ScenarioResult:
    sizes = QUICK if ctx.quick else FULL
    repeats = ctx.repeats_or(3)
    memory: list[dict[str, float]] = []
    durable: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(repeats):
            memory.append(asyncio.run(_throughput(sizes.jobs, None)))
            path = os.path.join(folder, f"thr-{repeat}.db")
            durable.append(asyncio.run(_throughput(sizes.jobs, path)))
            ctx.log(
                f"  repeat {repeat + 1}/{repeats}: {memory[-1]['events_per_s']:,.0f} events/s "
                f"in memory, {durable[-1]['events_per_s']:,.0f} with state "
                f"(lag {memory[-1]['lag_ms']:.1f} / {durable[-1]['lag_ms']:.1f} ms)"
            )
        opened = []
        for i in range(repeats):
            path = os.path.join(folder, f"open-{i}.db")
            values = asyncio.run(_open(sizes.open_jobs, path))
            opened.append({**values, "file_mb": os.path.getsize(path) / 1e6})
        ctx.log(f"  open {sizes.open_jobs:,} cursors: {medians(opened)}")
        restart = _restart(sizes, folder)
        ctx.log(f"  restart at R={RATE:g}/s: {restart}")
    mem, dur, opn = medians(memory), medians(durable), medians(opened)
    ratio = dur["events_per_s"] / mem["events_per_s"]
    rows = [
        Row(
            "asyncoptjob",
            f"in memory, {sizes.jobs:,} jobs",
            {**mem, "vs_memory": 1.0},
            repeats=memory,
        ),
        Row(
            "asyncoptjob",
            f"state=, {sizes.jobs:,} jobs",
            {**dur, "vs_memory": ratio},
            repeats=durable,
        ),
    ]
    restart_values = {k: float(v) for k, v in restart.items()}
    restart_row = Row(
        "asyncoptjob",
        f"{sizes.restart_jobs} jobs, first {sizes.window_s:g} s",
        restart_values,
        repeats=[restart_values],  # one run of each
    )
    open_row = Row(
        "asyncoptjob", f"{sizes.open_jobs:,} cursors of one consumer", dict(opn), repeats=opened
    )
    targets = [
        Target(
            "s8_throughput",
            f"S8: events/s with state= >= 0.8x in-memory at {sizes.jobs:,} jobs",
            f"{ratio:.2f}x",
            ratio >= 0.8,
            f"{dur['events_per_s']:,.0f} vs {mem['events_per_s']:,.0f} events/s",
        ),
        Target(
            "s8_lag",
            "S8: commits never block the loop for more than 10 ms",
            f"{dur['lag_ms']:.1f} ms worst (in memory: {mem['lag_ms']:.1f} ms)",
            dur["lag_ms"] - mem["lag_ms"] <= 10,
            "the worst lag of a 5 ms ticker; the hub's own work shows in both runs",
        ),
        Target(
            "s8_restart",
            f"S8: a restart on a state file throttles less than a cold start at R={RATE:g}/s",
            f"{restart['warm_throttles']} vs {restart['cold_throttles']} throttles",
            restart["warm_throttles"] < restart["cold_throttles"],
            f"first {sizes.window_s:g} s of each",
        ),
    ]
    return ScenarioResult(
        key="s8",
        name="s8_durable",
        title="S8 durable watches: state= throughput, loop lag, open time, restart throttles",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "jobs": sizes.jobs,
            "open_jobs": sizes.open_jobs,
            "restart_jobs": sizes.restart_jobs,
            "rate": RATE,
            "window_s": sizes.window_s,
        },
        tables=[
            Table("throughput", "Events delivered, in memory and with state=", COLUMNS, rows),
            Table(
                "open",
                "Opening a state file: Poller(state=) and unfinished(consumer=)",
                [
                    Column("open_s", "open Poller(state=), s", ".3f"),
                    Column("bare_open_s", "open Poller without state=, s", ".3f"),
                    Column("load_s", "unfinished(consumer=), s", ".3f"),
                    Column("file_mb", "file, MB", ".1f"),
                ],
                [open_row],
            ),
            Table(
                "restart",
                f"Throttled describes at R = {RATE:g}/s",
                [
                    Column("learn_throttles", "first run (learning)", ",.0f"),
                    Column("cold_throttles", "cold start", ",.0f"),
                    Column("warm_throttles", "restart on the state file", ",.0f"),
                ],
                [restart_row],
            ),
        ],
        targets=targets,
        headline=[
            Headline("S8 events/s with state= vs in memory", {"asyncoptjob": f"{ratio:.2f}x"}),
            Headline(
                f"S8 open {sizes.open_jobs:,} cursors, s",
                {"asyncoptjob": fmt(opn["open_s"] + opn["load_s"], ".2f")},
            ),
        ],
        run={"repeats": repeats},
    )
