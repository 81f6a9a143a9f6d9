"""S1 from cold: a fresh process waits for 3,000 finished jobs, client creation counted.

Each measurement runs in a new Python process with its own mock (nothing warm: no
service model loaded, no connection open), and times everything from before the client
(or ``Poller``) is created to the last job's answer. The mock answers at once and never
throttles, so what separates the two is how soon each reaches 16 requests in flight:
contender 4 sends them from the first moment, asyncoptjob's adaptive budget starts slow
and grows with its answers. The measurements run one after another (they are bound by
CPU), in an order rotated per repeat; the ratio is taken within each repeat.

A third row shows what the library's breaths cost here: the same run with
``loop_burst=None`` (after 3 ms of back-to-back work on the loop, by default, the
library's next step waits for the loop to run what else is due, which keeps S10's holds
short; None takes no breaths).
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from asyncoptjob import Poller

from ..contenders import ADAPTIVE_RETRIES, aio_client
from ..environment import REGION
from ..isolation import run_side_by_side
from ..measure import medians, ratio
from ..mockserver import MockServer
from ..registry import RunContext
from ..report import Column, Row, Table, Target

__all__ = ["measure_cold"]

CONCURRENCY = 16
FULL_JOBS = 3_000
QUICK_JOBS = 64
#: asyncoptjob with ``loop_burst=None`` (its row's contender is "asyncoptjob").
NO_BREATHS = "asyncoptjob_no_breaths"
#: Jobs that are COMPLETED from the start: one describe each is all a waiter needs.
DONE = {"starting": [0, 0], "in_progress": [0, 0]}
COLD = {
    "aiobotocore_gather": "4. aiobotocore gather + Semaphore, adaptive",
    "asyncoptjob": "6. asyncoptjob (`Poller.wait_until_done`)",
    NO_BREATHS: "6. asyncoptjob, no breaths (`loop_burst=None`)",
}
COLUMNS = [
    Column("jobs_per_s", "jobs/s", ",.0f"),
    Column("wall_s", "time s", ".2f"),
    Column("vs_gather", "throughput x 4", ".2f"),
    Column("calls", "describes", ",.0f"),
]


async def _gather(url: str, names: list[str]) -> int:
    async with aio_client(url, pool=CONCURRENCY, retries=ADAPTIVE_RETRIES) as client:
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(name: str) -> None:
            async with semaphore:
                await client.describe_optimization_job(OptimizationJobName=name)

        await asyncio.gather(*(one(name) for name in names))
    return len(names)


async def _asyncoptjob(url: str, names: list[str], **options: Any) -> int:
    async with Poller(
        endpoint_url=url, region_name=REGION, max_concurrency=CONCURRENCY, **options
    ) as poller:
        done = await poller.wait_until_done(names)
    return len(done)


def cold_one(contender: str, jobs: int, seed: int) -> dict[str, float]:
    """One cold run in this (fresh) process: from client creation to every job's answer."""
    runner = {
        "aiobotocore_gather": _gather,
        "asyncoptjob": _asyncoptjob,
        NO_BREATHS: functools.partial(_asyncoptjob, loop_burst=None),
    }[contender]
    with MockServer(seed=seed) as mock:
        names = mock.seed(jobs, prefix="cold", lifecycle=DONE, outcome="COMPLETED")
        start = time.perf_counter()
        finished = asyncio.run(runner(mock.url, names))
        wall = time.perf_counter() - start
        calls = sum(mock.describe_counts().values())
    if finished != jobs:
        raise RuntimeError(f"{contender}: {finished} of {jobs} jobs answered")
    return {"wall_s": wall, "jobs_per_s": jobs / wall, "calls": calls}


def measure_cold(ctx: RunContext, repeats: int) -> tuple[Table, Target]:
    """The cold-start table and its target (>= 0.95 x contender 4)."""
    jobs = QUICK_JOBS if ctx.quick else FULL_JOBS
    samples: dict[str, list[dict[str, Any]]] = {key: [] for key in COLD}
    order = list(COLD)
    for repeat in range(repeats):
        rotated = order[repeat % len(order) :] + order[: repeat % len(order)]
        values: dict[str, dict[str, float]] = {}
        for key in rotated:
            target = f"{__name__}:cold_one"
            (values[key],) = run_side_by_side(
                [(target, {"contender": key, "jobs": jobs, "seed": 1})]
            )
            ctx.log(
                f"  cold repeat {repeat + 1}/{repeats} {key:<20} "
                f"{values[key]['jobs_per_s']:8.0f} jobs/s ({values[key]['wall_s']:.2f} s)"
            )
        for key, value in values.items():
            value["vs_gather"] = ratio(
                value["jobs_per_s"], values["aiobotocore_gather"]["jobs_per_s"]
            )
            samples[key].append(value)
    rows = [
        Row(
            key.removesuffix("_no_breaths"),
            title,
            dict(medians(samples[key])),
            repeats=samples[key],
        )
        for key, title in COLD.items()
    ]
    table = Table(
        "cold",
        f"From cold: {jobs:,} finished jobs, {CONCURRENCY} in flight, mock 0 ms, no limit; "
        "each run a fresh process, client creation counted",
        COLUMNS,
        rows,
        "`x 4`: ratio to contender 4 within each repeat, median.",
    )
    mine = medians(samples["asyncoptjob"])
    spread = [value["vs_gather"] for value in samples["asyncoptjob"]]
    unbroken = medians(samples[NO_BREATHS])["vs_gather"]
    target = Target(
        "s1_cold_vs_gather",
        "S1 from cold: asyncoptjob >= 0.95 x contender 4 (3,000 finished jobs, 16 in flight)",
        f"{mine['vs_gather']:.2f} x",
        mine["vs_gather"] >= 0.95,
        f"median of {len(spread)} repeats (range {min(spread):.2f}-{max(spread):.2f}); "
        f"{mine['jobs_per_s']:,.0f} jobs/s vs "
        f"{medians(samples['aiobotocore_gather'])['jobs_per_s']:,.0f} jobs/s; "
        f"with no breaths {unbroken:.2f} x",
    )
    return table, target
