"""S6 fleet: 4 processes watching the same jobs under one account budget R.

Four processes each run a Poller over the same jobs (the same service deployed as four
replicas), against one mock whose DescribeOptimizationJob limit is R requests/s (burst R),
for a fixed window. **independent**: four plain Pollers, each with its own adaptive rate
(what replicas do today). **fleet**: the same Pollers with ``redis_url`` (a real
``redis-server`` on 127.0.0.1): one budget for the fleet, one process polls each job, the
others get its events through Redis; adaptive only, and with ``max_rate=R``. The two
**sweep** rows run the same with ``strategy="sweep"``: independent replicas each sweep
ListOptimizationJobs on their own, a fleet sweeps from the one process holding its sweep
lease and hands what it finds to the others through Redis; List calls per fleet are
counted by the mock. The **list-first** row is the sweeping fleet with
``SweepPolicy(confirm="terminal")``: the holder's List entries themselves reach every
replica, so a non-terminal change is an event everywhere with no describe, and only a
terminal one is described (by the job's lease holder); "from List" is the share of the
status changes the replicas delivered that came from List.

Goodput is successful describes per second over the window, divided by R (start-up of the
four processes included, so slightly understated); throttled share and describes per job
come from the mock; coverage is the share of (process, job) pairs that got the job's
status in the window (each replica's subscribers want every job).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from asyncoptjob.testing import RedisServer

from ..measure import medians
from ..mockserver import MockServer
from ..registry import RunContext, scenario
from ..report import Column, Headline, Row, ScenarioResult, Table, Target, fmt

PROCESSES = 4


@dataclass(frozen=True, slots=True)
class Sizes:
    jobs: int
    rate: float
    duration: float
    poll: float


FULL = Sizes(jobs=2_500, rate=50.0, duration=40.0, poll=5.0)
QUICK = Sizes(jobs=40, rate=50.0, duration=4.0, poll=0.5)
MODES = {
    "independent": "4 independent Pollers",
    "fleet": "fleet (redis_url), adaptive",
    "fleet_max_rate": "fleet (redis_url), max_rate=R",
    "independent_sweep": "4 independent Pollers, strategy='sweep'",
    "fleet_sweep": "fleet (redis_url), strategy='sweep'",
    "fleet_list_first": "fleet (redis_url), strategy='sweep', confirm='terminal'",
}
SWEEP_MODES = ("independent_sweep", "fleet_sweep", "fleet_list_first")
COLUMNS = [
    Column("goodput_r", "goodput / R", ".2f"),
    Column("throttled", "calls throttled", ".1%"),
    Column("describes_per_job", "describes per job", ".2f"),
    Column("coverage", "process-job pairs served", ".2f"),
    Column("round_trips_per_describe", "Redis round trips / describe", ".2f"),
    Column("list_calls", "List calls (fleet)", ",.0f"),
    Column("from_list", "changes from List", ".0%"),
]


def _run_mode(mode: str, sizes: Sizes, redis_url: str, seed: int) -> dict[str, float]:
    args = ["--describe-rate", str(sizes.rate), "--describe-burst", str(sizes.rate)]
    with MockServer(seed=seed, args=args) as mock:
        lifecycle = {"starting": [5, 30], "in_progress": [20, 90]}
        names = mock.seed(sizes.jobs, prefix="s6", lifecycle=lifecycle)
        cfg: dict[str, Any] = {
            "mock_url": mock.url,
            "names": names,
            "duration": sizes.duration,
            "poll": sizes.poll,
            "prefix": f"s6-{secrets.token_hex(3)}",
        }
        if not mode.startswith("independent"):
            cfg["redis_url"] = redis_url
        if mode in SWEEP_MODES:
            cfg["strategy"] = "sweep"
        if mode == "fleet_list_first":
            cfg["confirm"] = "terminal"
        if mode == "fleet_max_rate":
            cfg["max_rate"] = sizes.rate
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.fleet_worker", json.dumps(cfg)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        outs = [json.loads(w.communicate()[0].strip().splitlines()[-1]) for w in workers]
        elapsed = time.monotonic() - started
        counts = mock.describe_counts()
        lists = sum(mock.stats()["counters"].get("ListOptimizationJobs", {}).values())
    ok = counts.get("ok", 0)
    total = sum(counts.values())
    served = sum(len({change[0] for change in out["changes"]}) for out in outs)
    changes = [change for out in outs for change in out["changes"]]
    from_list = sum(1 for change in changes if change[4] == "list")
    return {
        "goodput_r": ok / elapsed / sizes.rate,
        "throttled": (total - ok) / max(1, total),
        "describes_per_job": total / sizes.jobs,
        "coverage": served / (PROCESSES * sizes.jobs),
        "round_trips_per_describe": sum(o["round_trips"] for o in outs) / max(1, total),
        "list_calls": lists,
        "from_list": from_list / max(1, len(changes)),
    }


@scenario("s6", "S6 fleet: 4 processes sharing one account budget through Redis")
def run(ctx: RunContext) -> ScenarioResult:
    sizes = QUICK if ctx.quick else FULL
    repeats = ctx.repeats_or(1)
    samples: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with RedisServer() as redis:
        redis_url = redis.url
        for repeat in range(repeats):
            for mode in MODES:
                values = _run_mode(mode, sizes, redis_url, seed=repeat + 1)
                samples[mode].append(values)
                ctx.log(
                    f"  repeat {repeat + 1}/{repeats} {mode:<15} goodput "
                    f"{values['goodput_r']:.2f} R, throttled {values['throttled']:.1%}, "
                    f"{values['describes_per_job']:.2f} describes/job"
                )
    rows = [
        Row("asyncoptjob", label, dict(medians(samples[mode])), repeats=samples[mode])
        for mode, label in MODES.items()
    ]
    by_mode = {mode: row.values for mode, row in zip(MODES, rows, strict=True)}
    fleet = by_mode["fleet"]
    independent = by_mode["independent"]
    return ScenarioResult(
        key="s6",
        name="s6_fleet",
        title="S6 fleet: 4 processes sharing one account budget through Redis",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "processes": PROCESSES,
            "jobs": sizes.jobs,
            "R": sizes.rate,
            "window_s": sizes.duration,
            "poll_interval_s": sizes.poll,
        },
        tables=[
            Table(
                "fleet",
                f"{PROCESSES} processes x {sizes.jobs:,} jobs (the same jobs), R = "
                f"{sizes.rate:g}/s, {sizes.duration:g} s window",
                COLUMNS,
                rows,
                "All rows are asyncoptjob; the difference is only redis_url.",
            )
        ],
        targets=[
            Target(
                "s6_fleet",
                "S6: the fleet keeps throttling low and polls each job about once",
                f"{fmt(fleet.get('throttled'), '.1%')} throttled (independent "
                f"{fmt(independent.get('throttled'), '.1%')})",
                fleet.get("throttled", 1) <= independent.get("throttled", 0),
                f"goodput {fmt(fleet.get('goodput_r'), '.2f')} R vs "
                f"{fmt(independent.get('goodput_r'), '.2f')} R; coverage "
                f"{fmt(fleet.get('coverage'), '.2f')} vs {fmt(independent.get('coverage'), '.2f')}",
            ),
            _sweep_target(by_mode),
            _list_first_target(by_mode),
        ],
        headline=[
            Headline(
                "S6 4 replicas: throttled share, independent / fleet",
                {
                    "asyncoptjob": f"{fmt(independent.get('throttled'), '.1%')} / "
                    f"{fmt(fleet.get('throttled'), '.1%')}"
                },
            ),
            Headline(
                "S6 4 replicas sweeping: List calls, independent / fleet",
                {
                    "asyncoptjob": f"{fmt(by_mode['independent_sweep'].get('list_calls'))} / "
                    f"{fmt(by_mode['fleet_sweep'].get('list_calls'))}"
                },
            ),
            Headline(
                "S6 sweeping fleet: describes per job, confirm change / terminal",
                {
                    "asyncoptjob": f"{fmt(by_mode['fleet_sweep'].get('describes_per_job'), '.2f')}"
                    f" / {fmt(by_mode['fleet_list_first'].get('describes_per_job'), '.2f')}"
                },
            ),
            Headline(
                "S6 4 replicas: process-job pairs served, independent / fleet",
                {
                    "asyncoptjob": f"{fmt(independent.get('coverage'), '.2f')} / "
                    f"{fmt(fleet.get('coverage'), '.2f')}"
                },
            ),
        ],
        plots=[],
        run={"repeats": repeats},
    )


def _sweep_target(by_mode: dict[str, dict[str, float | None]]) -> Target:
    """A sweeping fleet makes about one replica's List calls (at most 1.5x)."""
    fleet = by_mode["fleet_sweep"].get("list_calls") or 0.0
    independent = by_mode["independent_sweep"].get("list_calls") or 0.0
    one_replica = independent / PROCESSES
    return Target(
        "s6_fleet_sweep",
        "S6: a sweeping fleet makes at most 1.5x one replica's List calls",
        f"{fleet:,.0f} List calls for the fleet; independent replicas {independent:,.0f} "
        f"({one_replica:,.1f} each)",
        0 < fleet <= 1.5 * one_replica,
        "every process-job pair is still served: see the coverage column",
    )


def _list_first_target(by_mode: dict[str, dict[str, float | None]]) -> Target:
    """A list-first fleet describes less than a sweeping one and serves as many pairs."""
    sweep = by_mode["fleet_sweep"]
    first = by_mode["fleet_list_first"]
    before = sweep.get("describes_per_job") or 0.0
    describes = first.get("describes_per_job") or 0.0
    fewer_text = f"{before / describes:.1f}x fewer" if describes else "no describes"
    fewer = before > describes
    return Target(
        "s6_fleet_list_first",
        "S6: a list-first fleet (confirm='terminal') describes less than a sweeping one, "
        "coverage no lower",
        f"{fmt(first.get('describes_per_job'), '.2f')} describes/job vs "
        f"{fmt(sweep.get('describes_per_job'), '.2f')} ({fewer_text})",
        fewer and (first.get("coverage") or 0.0) >= (sweep.get("coverage") or 0.0) - 0.02,
        f"coverage {fmt(first.get('coverage'), '.2f')} vs {fmt(sweep.get('coverage'), '.2f')}; "
        f"{fmt(first.get('from_list'), '.0%')} of the changes delivered came from List",
    )
