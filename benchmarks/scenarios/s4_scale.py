"""S4 scale: 1k, 10k and 100k watched jobs: memory per job, scheduler CPU, event-loop lag.

This measures the watcher's own machinery, so describes go to an in-process transport that
answers INPROGRESS at once (asyncoptjob's public ``transport=`` option; the task-per-job
contenders call the same object). HTTP and botocore costs are S1's subject.

- **Bytes per job**: ``tracemalloc`` growth from just before subscribing N jobs (poll
  interval one hour) until every job has had its first describe and event, divided by N.
- **Subscribe**: wall time from the subscription until every job's first event, and the
  worst event-loop lag meanwhile (subscribing is synchronous).
- **Saturated polling**: every job is always due (1 ms interval): polls/s, CPU µs per poll
  (``process_time``), and the worst and p99 lag of a ticker task sleeping 5 ms, over a
  fixed window that starts a second after the first round (steady state: asyncoptjob's
  default slow start may still be ramping its rate up then; its cost is in the
  subscribe time).

Contenders 3 and 4 keep one task per job, the way their code is written; asyncoptjob keeps
one heap entry per job and ``max_concurrency`` worker tasks.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asyncoptjob import Poller, PollPolicy

from ..contenders import CONTENDERS, TERMINAL
from ..measure import LagProbe, medians
from ..registry import RunContext, scenario
from ..report import Column, Headline, Plot, Row, ScenarioResult, Table, Target, fmt

CONCURRENCY = 16
_ANSWER = {"OptimizationJobName": "job", "OptimizationJobStatus": "INPROGRESS"}


@dataclass(frozen=True, slots=True)
class Sizes:
    """Job counts and the saturated-polling window."""

    counts: tuple[int, ...]
    window_s: float
    warmup_s: float


FULL = Sizes(counts=(1_000, 10_000, 100_000), window_s=2.0, warmup_s=1.0)
QUICK = Sizes(counts=(200, 2_000), window_s=0.3, warmup_s=0.1)


class InstantTransport:
    """A :class:`asyncoptjob.Transport` that answers INPROGRESS after one loop turn."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0

    async def describe(self, name: str) -> Any:
        self.calls += 1
        await asyncio.sleep(0)
        return _ANSWER

    async def list_jobs(self, **params: Any) -> Any:
        return {"OptimizationJobSummaries": []}


@dataclass(slots=True)
class Watching:
    """A running watcher of N jobs: how to know all first answers are in, how many polls."""

    first_round: asyncio.Event
    polls: Callable[[], int]
    stop: Callable[[], Awaitable[None]]


# Each ``start_*`` begins watching ``names`` with ``interval`` and returns at once.


async def start_asyncoptjob(names: list[str], interval: float, transport: InstantTransport) -> Any:
    policy = PollPolicy(interval=interval, max_interval=interval, jitter=0.0)
    poller = Poller(
        transport=transport,
        max_concurrency=CONCURRENCY,
        poll_interval=policy,
        strategy="describe",
    )
    await poller.__aenter__()
    first_round = asyncio.Event()
    seen = [0]

    async def consume() -> None:
        async for _event in poller.watch(names):
            seen[0] += 1
            if seen[0] == len(names):
                first_round.set()

    task = asyncio.create_task(consume())

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await poller.__aexit__(None, None, None)

    return Watching(first_round, lambda: poller.stats.requests["ok"], stop)


def _task_per_job(with_semaphore: bool) -> Callable[..., Awaitable[Watching]]:
    async def start(names: list[str], interval: float, transport: InstantTransport) -> Watching:
        first_round = asyncio.Event()
        seen = [0]
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def describe(name: str) -> Any:
            if with_semaphore:
                async with semaphore:
                    return await transport.describe(name)
            return await transport.describe(name)

        async def wait_for_job(name: str) -> None:
            previous = None
            while True:
                response = await describe(name)
                status = response["OptimizationJobStatus"]
                if status != previous:
                    previous = status
                    seen[0] += 1
                    if seen[0] == len(names):
                        first_round.set()
                if status in TERMINAL:
                    return
                await asyncio.sleep(interval)

        everything = asyncio.ensure_future(asyncio.gather(*(wait_for_job(name) for name in names)))

        async def stop() -> None:
            everything.cancel()
            await asyncio.gather(everything, return_exceptions=True)

        return Watching(first_round, lambda: transport.calls, stop)

    return start


STARTERS: dict[str, Callable[..., Awaitable[Watching]]] = {
    "aiobotocore_loops": _task_per_job(with_semaphore=False),
    "aiobotocore_gather": _task_per_job(with_semaphore=True),
    "asyncoptjob": start_asyncoptjob,
}
NOT_APPLICABLE = {
    "boto3_threads": "n/a (an OS thread per job: 100k threads is not a design anyone ships)",
    "boto3_pool": "n/a (no per-job state or schedule: it re-sweeps every job each interval)",
    "aiohttp_raw": "n/a (a transport, not a watcher)",
}

COLUMNS = [
    Column("bytes_per_job", "bytes per job", ",.0f"),
    Column("subscribe_s", "subscribe + first round s", ".2f"),
    Column("subscribe_lag_ms", "worst lag then ms", ",.1f"),
    Column("polls_per_s", "saturated polls/s", ",.0f"),
    Column("cpu_us_per_poll", "CPU µs/poll", ",.1f"),
    Column("lag_ms", "worst lag ms", ",.1f"),
    Column("lag_p99_ms", "p99 lag ms", ",.1f"),
]


async def _memory(key: str, names: list[str]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        watching = await STARTERS[key](names, 3600.0, InstantTransport())
        await watching.first_round.wait()
        await asyncio.sleep(0.01)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    await watching.stop()
    return grown / len(names)


async def _timing(key: str, names: list[str], window: float, warmup: float) -> dict[str, float]:
    async with LagProbe() as probe:
        started = time.perf_counter()
        watching = await STARTERS[key](names, 0.001, InstantTransport())
        await watching.first_round.wait()
        subscribe_s = time.perf_counter() - started
        subscribe_lag = probe.worst
        # Steady state: asyncoptjob's slow start (the default, as every other option) may
        # still be ramping up when the first round is in; the same pause for everyone.
        await asyncio.sleep(warmup)
        probe.reset()
        polls0, cpu0, wall0 = watching.polls(), time.process_time(), time.perf_counter()
        await asyncio.sleep(window)
        polls = watching.polls() - polls0
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        worst, p99 = probe.worst, probe.p99
        await watching.stop()
    return {
        "subscribe_s": subscribe_s,
        "subscribe_lag_ms": 1000 * subscribe_lag,
        "polls_per_s": polls / wall,
        "cpu_us_per_poll": 1e6 * cpu / max(polls, 1),
        "lag_ms": 1000 * worst,
        "lag_p99_ms": 1000 * p99,
    }


def _label(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 else str(count)


@scenario("s4", "S4 scale: memory, scheduler CPU and event-loop lag at 1k-100k jobs")
def run(ctx: RunContext) -> ScenarioResult:
    sizes = QUICK if ctx.quick else FULL
    repeats = ctx.repeats_or(1)
    samples: dict[tuple[str, int], list[dict[str, float]]] = {}
    for count in sizes.counts:
        names = [f"scale-{i:06d}" for i in range(count)]
        for repeat in range(repeats):
            for key in STARTERS:
                values = {"bytes_per_job": asyncio.run(_memory(key, names))}
                values.update(asyncio.run(_timing(key, names, sizes.window_s, sizes.warmup_s)))
                samples.setdefault((key, count), []).append(values)
                ctx.log(
                    f"  {_label(count):>5} repeat {repeat + 1}/{repeats} {key:<20} "
                    f"{values['bytes_per_job']:6.0f} B/job, "
                    f"{values['cpu_us_per_poll']:6.1f} µs/poll, "
                    f"lag {values['lag_ms']:.1f} ms (subscribe {values['subscribe_lag_ms']:.0f} ms)"
                )
    rows: list[Row] = []
    titles = {c.key: c.title for c in CONTENDERS}
    for c in CONTENDERS:
        if c.key in NOT_APPLICABLE:
            rows.append(Row(c.key, c.title, na=NOT_APPLICABLE[c.key]))
            continue
        for count in sizes.counts:
            runs = samples[(c.key, count)]
            rows.append(
                Row(
                    c.key,
                    f"{titles[c.key]}, {_label(count)} jobs",
                    dict(medians(runs)),
                    repeats=runs,
                )
            )
    largest = sizes.counts[-1]
    mine = medians(samples[("asyncoptjob", largest)])
    targets = [
        Target(
            "s4_bytes_per_job",
            f"S4: <= 1 KB of bookkeeping per job at {_label(largest)} jobs",
            f"{mine['bytes_per_job']:,.0f} B",
            mine["bytes_per_job"] <= 1024,
        ),
        Target(
            "s4_lag",
            f"S4: <= 50 ms event-loop lag while polling {_label(largest)} jobs",
            f"{mine['lag_ms']:,.1f} ms",
            mine["lag_ms"] <= 50,
            f"p99 {mine['lag_p99_ms']:.1f} ms; while subscribing them: worst "
            f"{mine['subscribe_lag_ms']:,.0f} ms",
        ),
    ]

    def cells(column: str, spec: str) -> dict[str, str]:
        out = dict.fromkeys(NOT_APPLICABLE, "n/a")
        out.update({key: fmt(medians(samples[(key, largest)])[column], spec) for key in STARTERS})
        return out

    return ScenarioResult(
        key="s4",
        name="s4_scale",
        title="S4 scale: memory, scheduler CPU and event-loop lag at 1k-100k jobs",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "jobs": list(sizes.counts),
            "concurrency": CONCURRENCY,
            "window_s": sizes.window_s,
            "warmup_s": sizes.warmup_s,
            "transport": "in-process, answers at once",
        },
        tables=[
            Table(
                "scale",
                "Watching N jobs through an instant in-process transport",
                COLUMNS,
                rows,
                "lag = how late a 5 ms ticker woke up (the longest stretch the loop was busy).",
            )
        ],
        targets=targets,
        headline=[
            Headline(f"S4 bytes per job ({_label(largest)} jobs)", cells("bytes_per_job", ",.0f")),
            Headline(
                f"S4 worst loop lag polling {_label(largest)} jobs, ms", cells("lag_ms", ",.0f")
            ),
            Headline(
                f"S4 worst loop lag subscribing {_label(largest)} jobs, ms",
                cells("subscribe_lag_ms", ",.0f"),
            ),
        ],
        plots=[
            Plot("scale", "bytes_per_job", "bytes of bookkeeping per job"),
            Plot("scale", "lag_ms", "worst event-loop lag while polling, ms", log=True),
            Plot(
                "scale",
                "subscribe_lag_ms",
                "worst event-loop lag while subscribing + first round, ms",
                log=True,
            ),
        ],
        run={"repeats": repeats},
    )
