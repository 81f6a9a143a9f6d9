"""S1 overhead: describes/s and client CPU per describe at saturation, no throttling.

Every contender keeps ``CONCURRENCY`` describes in flight against jobs that never finish,
for a fixed number of describes after a warm-up (client creation and warm-up are not
measured; the warm-up is long enough for asyncoptjob's slow start to reach the mock's
rate, so this is the cost per describe at saturation, not the cold start's). The mock
answers at once (0 ms) or after 20 ms. asyncoptjob watches the jobs
with a 1 ms poll interval, so every job is always due and its workers never idle; its
describes are counted from ``poller.stats``. Logging is left unconfigured here (neither
structlog nor ``logging`` set up), the default of a program that embeds the library: its
per-poll ``debug`` call costs what it costs by default.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from asyncoptjob import Poller, PollPolicy

from ..contenders import (
    ADAPTIVE_RETRIES,
    CONTENDERS,
    aio_client,
    boto3_client,
    raw_describer,
)
from ..environment import REGION, logging_left_unconfigured
from ..measure import Meter, medians, ratio
from ..mockserver import MockServer
from ..registry import RunContext, scenario
from ..report import Column, Headline, Plot, Row, ScenarioResult, Table, Target, fmt
from .s1_cold import measure_cold

CONCURRENCY = 16
#: Jobs that stay INPROGRESS for ever.
FOREVER = {"starting": [0, 0], "in_progress": [None, None]}


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each measurement does."""

    jobs: int
    describes: int
    warmup: int
    latencies_ms: tuple[float, ...]


#: The warm-up covers asyncoptjob's slow start (its default): from 5 requests/s it needs
#: about 2 s of answers to reach this mock's ~1,000/s, a start-up cost S2 and S4 report.
FULL = Sizes(jobs=64, describes=1_500, warmup=3_000, latencies_ms=(0.0, 20.0))
QUICK = Sizes(jobs=16, describes=64, warmup=16, latencies_ms=(0.0, 20.0))


@dataclass(slots=True)
class Outcome:
    """What one contender did in the measured span (and in total, for the cross-check).

    The mock injects no faults here, so the hand-written contenders do not catch errors: any
    error fails the run. asyncoptjob counts non-``ok`` outcomes in ``errors``.
    """

    ok: int
    errors: int
    calls_total: int


Runner = Callable[[str, list[str], Sizes, Meter], Outcome]


# -- 1. boto3, a describe; sleep loop per job in its own thread ------------------------------


def boto3_threads(url: str, names: list[str], sizes: Sizes, meter: Meter) -> Outcome:
    client = boto3_client(url, pool=CONCURRENCY)
    jobs = names[:CONCURRENCY]

    def poll_loop(name: str, polls: int) -> None:
        # The SDK's wait loop with the poll interval at 0: describe, check, sleep.
        for _ in range(polls):
            client.describe_optimization_job(OptimizationJobName=name)
            time.sleep(0)

    def run_threads(polls: int) -> None:
        threads = [threading.Thread(target=poll_loop, args=(name, polls)) for name in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    warm = sizes.warmup // len(jobs)
    per_job = sizes.describes // len(jobs)
    run_threads(warm)
    with meter:
        run_threads(per_job)
    client.close()
    done = per_job * len(jobs)
    return Outcome(done, 0, (warm + per_job) * len(jobs))


# -- 2. boto3 with a ThreadPoolExecutor ---------------------------------------------------


def boto3_pool(url: str, names: list[str], sizes: Sizes, meter: Meter) -> Outcome:
    client = boto3_client(url, pool=CONCURRENCY)

    def describe(name: str) -> bool:
        client.describe_optimization_job(OptimizationJobName=name)
        return True

    warm = [names[i % len(names)] for i in range(sizes.warmup)]
    work = [names[i % len(names)] for i in range(sizes.describes)]
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        list(pool.map(describe, warm))
        with meter:
            ok = sum(pool.map(describe, work))
    client.close()
    return Outcome(ok, len(work) - ok, len(warm) + len(work))


# -- 3. aiobotocore, a coroutine per job with its own loop --------------------------------


def aiobotocore_loops(url: str, names: list[str], sizes: Sizes, meter: Meter) -> Outcome:
    jobs = names[:CONCURRENCY]

    async def main() -> tuple[int, int]:
        async with aio_client(url, pool=CONCURRENCY) as client:

            async def poll_loop(name: str, polls: int) -> None:
                for _ in range(polls):
                    await client.describe_optimization_job(OptimizationJobName=name)
                    await asyncio.sleep(0)

            warm = sizes.warmup // len(jobs)
            per_job = sizes.describes // len(jobs)
            await asyncio.gather(*(poll_loop(name, warm) for name in jobs))
            meter.start()
            await asyncio.gather(*(poll_loop(name, per_job) for name in jobs))
            meter.stop()
            return warm, per_job

    warm, per_job = asyncio.run(main())
    done = per_job * len(jobs)
    return Outcome(done, 0, (warm + per_job) * len(jobs))


# -- 4. aiobotocore, gather + Semaphore, adaptive retries -----------------------------------


def aiobotocore_gather(url: str, names: list[str], sizes: Sizes, meter: Meter) -> Outcome:
    async def main() -> int:
        async with aio_client(url, pool=CONCURRENCY, retries=ADAPTIVE_RETRIES) as client:
            semaphore = asyncio.Semaphore(CONCURRENCY)

            async def describe(name: str) -> bool:
                async with semaphore:
                    await client.describe_optimization_job(OptimizationJobName=name)
                    return True

            warm = [names[i % len(names)] for i in range(sizes.warmup)]
            await asyncio.gather(*(describe(name) for name in warm))
            work = [names[i % len(names)] for i in range(sizes.describes)]
            meter.start()
            results = await asyncio.gather(*(describe(name) for name in work))
            meter.stop()
            return sum(results)

    ok = asyncio.run(main())
    return Outcome(ok, sizes.describes - ok, sizes.warmup + sizes.describes)


# -- 5. raw aiohttp: the transport ceiling --------------------------------------------------


def aiohttp_raw(url: str, names: list[str], sizes: Sizes, meter: Meter) -> Outcome:
    jobs = names[:CONCURRENCY]

    async def main() -> tuple[int, int]:
        async with raw_describer(url, pool=CONCURRENCY) as raw:

            async def worker(name: str, count: int) -> None:
                for _ in range(count):
                    await raw.describe(name)

            warm = sizes.warmup // len(jobs)
            per_job = sizes.describes // len(jobs)
            await asyncio.gather(*(worker(name, warm) for name in jobs))
            meter.start()
            await asyncio.gather(*(worker(name, per_job) for name in jobs))
            meter.stop()
            return warm, per_job

    warm, per_job = asyncio.run(main())
    done = per_job * len(jobs)
    return Outcome(done, 0, (warm + per_job) * len(jobs))


# -- 6. asyncoptjob -------------------------------------------------------------------------


def asyncoptjob(
    url: str,
    names: list[str],
    sizes: Sizes,
    meter: Meter,
    *,
    meter_provider: Any = None,
    collect: Callable[[], object] | None = None,
    collect_every: float = 1.0,
) -> Outcome:
    """The library at saturation; ``collect`` (if any) runs every ``collect_every`` s."""
    # Every job is due again 1 ms after its answer: the workers never wait for work.
    policy = PollPolicy(interval=0.001, max_interval=0.001, jitter=0.0)

    async def collecting() -> None:
        assert collect is not None
        while True:
            await asyncio.sleep(collect_every)
            collect()

    async def main() -> Outcome:
        async with Poller(
            endpoint_url=url,
            region_name=REGION,
            max_concurrency=CONCURRENCY,
            poll_interval=policy,
            strategy="describe",
            meter_provider=meter_provider,
        ) as poller:

            def ok() -> int:
                return poller.stats.requests["ok"]

            async def until(target: int) -> None:
                # Checked every 5 ms: often enough for a 1,500-describe window (the rate is
                # computed from the describes actually done), rarely enough to cost nothing.
                while ok() < target:
                    await asyncio.sleep(0.005)

            async def consume() -> None:
                async for _event in poller.watch(names):
                    pass

            consumer = asyncio.create_task(consume())
            scraper = asyncio.create_task(collecting()) if collect is not None else None
            await until(sizes.warmup)
            meter.start()
            start = ok()
            await until(start + sizes.describes)
            meter.stop()
            done = ok() - start
            for task in (consumer, scraper):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            stats = poller.stats
            return Outcome(done, stats.total_requests - stats.requests["ok"], stats.total_requests)

    return asyncio.run(main())


RUNNERS: dict[str, Runner] = {
    "boto3_threads": boto3_threads,
    "boto3_pool": boto3_pool,
    "aiobotocore_loops": aiobotocore_loops,
    "aiobotocore_gather": aiobotocore_gather,
    "aiohttp_raw": aiohttp_raw,
    "asyncoptjob": asyncoptjob,
}

COLUMNS = [
    Column("describes_per_s", "describes/s", ",.0f"),
    Column("cpu_ms", "client CPU ms/describe", ".3f"),
    Column("vs_gather", "throughput x 4", ".2f"),
    Column("vs_raw", "throughput x 5 (ceiling)", ".2f"),
    Column("cpu_vs_gather", "CPU/describe x 4", ".2f"),
    Column("mock_busy", "mock CPU busy", ".0%"),
]


def _measure_case(
    ctx: RunContext, mock: MockServer, names: list[str], sizes: Sizes, repeats: int
) -> tuple[dict[str, list[dict[str, float]]], list[str]]:
    samples: dict[str, list[dict[str, float]]] = {key: [] for key in RUNNERS}
    problems: list[str] = []
    order = list(RUNNERS)
    for repeat in range(repeats):
        # Rotate the order so no contender always runs first (cold) or last.
        rotated = order[repeat % len(order) :] + order[: repeat % len(order)]
        round_values: dict[str, dict[str, float]] = {}
        for key in rotated:
            meter = Meter(mock.cpu_seconds)
            before = mock.settled_describe_counts()
            outcome = RUNNERS[key](mock.url, names, sizes, meter)
            after = mock.settled_describe_counts()
            span = meter.span
            assert span is not None
            served = sum(after.values()) - sum(before.values())
            # asyncoptjob's requests still on the wire when its Poller closes are cancelled
            # client-side, yet the mock answers (and counts) them.
            slack = CONCURRENCY if key == "asyncoptjob" else 0
            if not 0 <= served - outcome.calls_total <= slack or outcome.errors:
                problems.append(
                    f"{key} repeat {repeat + 1}: client counted {outcome.calls_total} calls "
                    f"({outcome.errors} errors), the mock served {served}"
                )
            round_values[key] = {
                "describes": outcome.ok,
                "wall_s": span.wall,
                "cpu_s": span.cpu,
                "describes_per_s": outcome.ok / span.wall,
                "cpu_ms": 1000 * span.cpu / max(outcome.ok, 1),
                "mock_busy": span.mock_busy,
                "errors": outcome.errors,
            }
            ctx.log(
                f"  repeat {repeat + 1}/{repeats} {key:<20} "
                f"{round_values[key]['describes_per_s']:8.0f}/s "
                f"{round_values[key]['cpu_ms']:.3f} ms CPU/describe"
            )
        gather = round_values["aiobotocore_gather"]
        raw = round_values["aiohttp_raw"]
        for key, values in round_values.items():
            values["vs_gather"] = ratio(values["describes_per_s"], gather["describes_per_s"])
            values["vs_raw"] = ratio(values["describes_per_s"], raw["describes_per_s"])
            values["cpu_vs_gather"] = ratio(values["cpu_ms"], gather["cpu_ms"])
            samples[key].append(values)
    return samples, problems


@scenario("s1", "S1 overhead: describes/s and client CPU per describe at saturation")
def run(ctx: RunContext) -> ScenarioResult:
    sizes = QUICK if ctx.quick else FULL
    # Short runs, many repeats: on a shared machine a burst of someone else's work then
    # hits one repeat of one contender, and the median of the ratios shrugs it off.
    repeats = ctx.repeats_or(5)
    tables: list[Table] = []
    targets: list[Target] = []
    headline: list[Headline] = []
    notes: list[str] = []
    with ctx.mock() as mock, logging_left_unconfigured():
        names = mock.seed(sizes.jobs, prefix="s1", lifecycle=FOREVER)
        for latency in sizes.latencies_ms:
            mock.set_faults(latency_ms=latency)
            ctx.log(f"mock latency {latency:g} ms")
            samples, problems = _measure_case(ctx, mock, names, sizes, repeats)
            notes += [f"latency {latency:g} ms: {p}" for p in problems]
            rows = [
                Row(c.key, c.title, dict(medians(samples[c.key])), repeats=samples[c.key])
                for c in CONTENDERS
            ]
            key = f"latency_{latency:g}ms"
            tables.append(
                Table(
                    key,
                    f"Mock latency {latency:g} ms, {CONCURRENCY} in flight, "
                    f"{sizes.describes:,} describes measured",
                    COLUMNS,
                    rows,
                    "`x 4`, `x 5`: ratio to contender 4 / 5 within each repeat, median.",
                )
            )
            mine = medians(samples["asyncoptjob"])
            vs_gather = mine["vs_gather"]
            spread = [r["vs_gather"] for r in samples["asyncoptjob"]]
            targets.append(
                Target(
                    f"s1_vs_gather_{latency:g}ms",
                    f"S1 ({latency:g} ms): asyncoptjob throughput >= 0.95 x contender 4",
                    f"{vs_gather:.2f} x",
                    vs_gather >= 0.95,
                    f"median of {len(spread)} repeats (range {min(spread):.2f}-{max(spread):.2f}); "
                    f"{fmt(mine['describes_per_s'])}/s vs "
                    f"{fmt(medians(samples['aiobotocore_gather'])['describes_per_s'])}/s; "
                    f"{mine['vs_raw']:.2f} x the raw-aiohttp ceiling",
                )
            )
            headline.append(
                Headline(
                    f"S1 describes/s, mock {latency:g} ms",
                    {k: fmt(medians(v)["describes_per_s"]) for k, v in samples.items()},
                )
            )
            if latency == sizes.latencies_ms[0]:
                headline.append(
                    Headline(
                        f"S1 client CPU ms/describe, mock {latency:g} ms",
                        {k: fmt(medians(v)["cpu_ms"], ".2f") for k, v in samples.items()},
                    )
                )
    cold, cold_target = measure_cold(ctx, min(repeats, 3))
    tables.append(cold)
    targets.append(cold_target)
    first = tables[0].key
    return ScenarioResult(
        key="s1",
        name="s1_overhead",
        title="S1 overhead: describes/s and client CPU per describe at saturation",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "concurrency": CONCURRENCY,
            "jobs": sizes.jobs,
            "describes": sizes.describes,
            "warmup": sizes.warmup,
            "latency_ms": list(sizes.latencies_ms),
            "logging": "unconfigured",
        },
        tables=tables,
        targets=targets,
        headline=headline,
        plots=[
            Plot(first, "describes_per_s", "describes/s, mock 0 ms"),
            Plot(first, "cpu_ms", "client CPU ms per describe, mock 0 ms"),
        ],
        notes=notes,
        run={"repeats": repeats},
    )
