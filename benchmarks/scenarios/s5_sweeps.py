"""S5 sweeps: List sweeps vs describe-only polling, 1,000 and 10,000 jobs.

Jobs follow long, LLM-sized lifecycles (STARTING 1-3 min, INPROGRESS 30-120 min at 1,000
jobs, 10-30 min at 10,000; 10% FAILED, 3% stopped by a simulated user), time-scaled.
Both strategies use the same base interval (20 simulated seconds, the library's default;
sweeps run every 0.75 of it, their default), through ``Poller.watch``:

- **describe-only** (``strategy="describe"``) at a fixed interval: one describe per job per
  interval, the latency any per-job loop gets at that interval; and with the default
  backoff (the interval grows 1.5x per unchanged poll up to 6x), the cheaper describe-only
  setting;
- **sweep** (``strategy="sweep"``): one ListOptimizationJobs call per interval (100 jobs a
  page, ``LastModifiedTimeAfter`` a watermark) finds what changed, and only those jobs are
  described; every job is still described every 12-15 simulated minutes (the safety net,
  ``safety_interval=900``);
- **sweep, confirm terminal** (``SweepPolicy(confirm="terminal")``): the same sweeps, but a
  non-terminal change List reports is its event at once (no describe), a job the first
  sweep lists needs no describe at attach, and only terminal changes are described.

API calls per job lifecycle = (describes + lists) / jobs, counted by the mock, and split
per job into the sweeps' List calls, attach describes (jobs whose first event came from
a describe), confirm describes (later events from a describe: a change confirmed, or
polled) and the rest, the safety net (safety-net describes, for describe-only the polls
that saw no change, and with confirm terminal the re-lists' List calls, also shown on
their own, from the Poller's ``stats.relist_pages``). Detection
latency as in S3 (event ``observed_at`` minus the mock's true transition time).
``S5_JOBS=1000`` (a comma-separated list) runs only those sizes of the full run, and
``S5_SKIP=describe_backoff`` leaves those rows out.

Time compression is chosen so describe-only keeps its own cadence at 1,000 jobs: 15x
(about 800 describes/s at peak, below this machine's ceiling measured in S1), so one
1,000-job run takes up to 8 minutes. At 10,000 jobs describe-only would need 7,500
describes/s at that scale (500/s even in real time, more than most accounts' Describe
limit), so that size runs 30x compressed and describe-only is capped by the machine's
ceiling: its interval stretches and it makes fewer calls than its policy asks, with a
longer latency. The 20x target is judged at 1,000 jobs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from asyncoptjob import Event, PollPolicy, StatusChange, SweepPolicy

from ..measure import Meter, medians
from ..registry import RunContext, scenario
from ..report import Column, Headline, Plot, Row, ScenarioResult, Table, Target, fmt
from ..watchers import Watcher, asyncoptjob_watcher
from .s3_lifecycle import detection

CONCURRENCY = 16
INTERVAL_SIM = 20.0  # the library's default base interval, in simulated seconds
SAFETY_SIM = 900.0
OVERLAP_SIM = 60.0


@dataclass(frozen=True, slots=True)
class Size:
    """One S5 experiment (durations in simulated seconds)."""

    jobs: int
    lifecycle: dict[str, Any]

    @property
    def scale(self) -> float:
        return float(self.lifecycle["time_scale"])


def _lifecycle(in_progress: list[float], time_scale: float) -> dict[str, Any]:
    return {
        "starting": [60, 180],
        "in_progress": in_progress,
        "stopping": [30, 90],
        "failure_rate": 0.1,
        "stop_rate": 0.03,
        "time_scale": time_scale,
    }


FULL = [
    Size(1_000, _lifecycle([1_800, 7_200], 1 / 15)),
    Size(10_000, _lifecycle([600, 1_800], 1 / 30)),
]
QUICK = [Size(40, _lifecycle([300, 600], 1 / 200))]

COLUMNS = [
    Column("calls_per_job", "API calls per job", ".2f"),
    Column("list_per_job", "List (sweeps)", ".2f"),
    Column("attach_per_job", "attach", ".2f"),
    Column("confirm_per_job", "confirm", ".2f"),
    Column("safety_per_job", "safety", ".2f"),
    Column("relist_per_job", "of which re-list", ".2f"),
    Column("describes", "describes", ",.0f"),
    Column("lists", "lists", ",.0f"),
    Column("p50_s", "detection p50 s", ".2f"),
    Column("p95_s", "p95 s", ".2f"),
    Column("p95_sim_s", "p95 simulated s", ",.0f"),
    Column("missed_terminal", "terminal missed", ",.0f"),
    Column("cpu_s", "client CPU s", ".1f"),
    Column("wall_s", "time s", ".1f"),
]


class Sources:
    """Counts the events of one run by where they came from (first or later, describe or List)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.first_described = 0
        self.later_described = 0

    def reset(self) -> None:
        """Forget the last run's events."""
        self.seen = set()
        self.first_described = self.later_described = 0

    async def __call__(self, event: Event) -> None:
        if not isinstance(event, StatusChange):
            return
        first = event.job_name not in self.seen
        self.seen.add(event.job_name)
        if event.source == "describe":
            if first:
                self.first_described += 1
            else:
                self.later_described += 1


def _split(
    sources: Sources, describes: int, lists: int, relists: int, jobs: int
) -> dict[str, float]:
    """Calls per job: sweeps' List calls, attach, confirm, and the rest (the safety net:
    safety-net describes, and with confirm terminal the re-lists' List calls)."""
    attach = sources.first_described
    confirm = sources.later_described
    return {
        "list_per_job": (lists - relists) / jobs,
        "attach_per_job": attach / jobs,
        "confirm_per_job": confirm / jobs,
        "safety_per_job": (max(describes - attach - confirm, 0) + relists) / jobs,
        "relist_per_job": relists / jobs,
    }


def _sizes(quick: bool) -> list[Size]:
    if quick:
        return QUICK
    wanted = os.environ.get("S5_JOBS")
    if not wanted:
        return FULL
    jobs = {int(text) for text in wanted.split(",")}
    return [size for size in FULL if size.jobs in jobs]


#: Rows ``S5_SKIP`` may leave out (the others are what the targets compare).
OPTIONAL = {"describe_backoff"}


def _variants(size: Size) -> list[tuple[str, str, Watcher, Sources]]:
    interval = INTERVAL_SIM * size.scale
    fixed = PollPolicy(interval=interval, max_interval=interval, backoff=1.0)
    # interval: the library's default, 0.75 x the poll interval (see SweepPolicy).
    sweep = SweepPolicy(
        overlap=OVERLAP_SIM * size.scale,
        safety_interval=SAFETY_SIM * size.scale,
        max_rate=None,  # List is not rate-limited in this scenario (S2 covers quotas)
    )
    list_first = dataclasses.replace(sweep, confirm="terminal")
    rows = [
        ("describe_fixed", "describe-only, fixed interval", {}, fixed),
        ("describe_backoff", "describe-only, default backoff", {}, interval),
        ("sweep", "sweep", {"strategy": "sweep", "sweep": sweep}, fixed),
        (
            "list_first",
            "sweep, confirm terminal",
            {"strategy": "sweep", "sweep": list_first},
            fixed,
        ),
    ]
    skip = set(os.environ.get("S5_SKIP", "").split(","))
    variants = []
    for key, label, options, policy in rows:
        if key in skip & OPTIONAL:
            continue
        sources = Sources()
        watcher = asyncoptjob_watcher(policy, api="poller", consume=sources, **options)
        variants.append((key, label, watcher, sources))
    return variants


@scenario("s5", "S5 sweeps: List sweeps vs describe-only polling")
def run(ctx: RunContext) -> ScenarioResult:
    sizes = _sizes(ctx.quick)
    repeats = ctx.repeats_or(1)
    tables: list[Table] = []
    targets: list[Target] = []
    headline: dict[str, dict[str, float]] = {}
    for size in sizes:
        variants = _variants(size)
        samples: dict[str, list[dict[str, float]]] = {key: [] for key, *_ in variants}
        for repeat in range(repeats):
            for key, _, watcher, sources in variants:
                sources.reset()
                with ctx.mock(seed=repeat + 1) as mock:
                    meter = Meter(mock.cpu_seconds)
                    log = watcher(
                        mock.url,
                        lambda size=size: mock.seed(
                            size.jobs, prefix="s5", lifecycle=size.lifecycle
                        ),
                        INTERVAL_SIM * size.scale,
                        CONCURRENCY,
                        meter,
                    )
                    span = meter.span
                    assert span is not None
                    counters = mock.stats()["counters"]
                    describes = sum(counters.get("DescribeOptimizationJob", {}).values())
                    lists = sum(counters.get("ListOptimizationJobs", {}).values())
                    found = detection(log, mock.transitions())
                    relists = log.stats.relist_pages if log.stats is not None else 0
                    values = {
                        "describes": describes,
                        "lists": lists,
                        "calls_per_job": (describes + lists) / size.jobs,
                        "p95_sim_s": found["p95_s"] / size.scale,
                        "wall_s": span.wall,
                        "cpu_s": span.cpu,
                        "gave_up": len(log.gave_up),
                        **_split(sources, describes, lists, relists, size.jobs),
                        **found,
                    }
                    samples[key].append(values)
                    ctx.log(
                        f"  {size.jobs:,} jobs repeat {repeat + 1}/{repeats} {key:<17} "
                        f"{values['calls_per_job']:.2f} calls/job, p95 "
                        f"{values['p95_s']:.2f} s, missed {values['missed_terminal']:.0f}, "
                        f"{span.wall:.1f} s"
                    )
        rows = [
            Row("asyncoptjob", label, dict(medians(samples[key])), repeats=samples[key])
            for key, label, *_ in variants
        ]
        by_key = {key: row.values for (key, *_), row in zip(variants, rows, strict=True)}
        headline[f"{size.jobs}"] = {
            "fixed": by_key["describe_fixed"]["calls_per_job"],
            "backoff": by_key.get("describe_backoff", {}).get("calls_per_job", float("nan")),
            "sweep": by_key["sweep"]["calls_per_job"],
            "list_first": by_key["list_first"]["calls_per_job"],
            "p95_fixed": by_key["describe_fixed"]["p95_sim_s"],
            "p95_sweep": by_key["sweep"]["p95_sim_s"],
            "p95_list_first": by_key["list_first"]["p95_sim_s"],
        }
        fewer = by_key["describe_fixed"]["calls_per_job"] / by_key["sweep"]["calls_per_job"]
        p95_ratio = by_key["sweep"]["p95_s"] / by_key["describe_fixed"]["p95_s"]
        first = by_key["list_first"]
        fewer_lf = by_key["describe_fixed"]["calls_per_job"] / first["calls_per_job"]
        p95_lf = first["p95_s"] / by_key["sweep"]["p95_s"]
        tables.append(
            Table(
                f"sweeps_{size.jobs}",
                f"{size.jobs:,} jobs, base interval {INTERVAL_SIM:g} simulated s "
                f"({INTERVAL_SIM * size.scale:.3g} s real)",
                COLUMNS,
                rows,
                f"Sweep: {fewer:.1f}x fewer API calls per job than describe-only at the same "
                f"interval; p95 detection latency {p95_ratio:.2f}x. Confirm terminal: "
                f"{fewer_lf:.1f}x fewer; p95 {p95_lf:.2f}x the sweep's. Simulated seconds = "
                f"real x {1 / size.scale:.0f}.",
            )
        )
        if size.jobs == 1_000 or ctx.quick:
            targets.append(
                Target(
                    f"s5_calls_{size.jobs}",
                    f"S5 ({size.jobs:,} jobs): sweep >= 20x fewer calls per job, "
                    "p95 detection no worse",
                    f"{fewer:.1f}x fewer, p95 {p95_ratio:.2f}x",
                    fewer >= 20 and p95_ratio <= 1.0,
                    f"describe-only {fmt(by_key['describe_fixed']['calls_per_job'], '.1f')} "
                    f"calls/job, sweep {fmt(by_key['sweep']['calls_per_job'], '.1f')}; p95 "
                    f"{fmt(by_key['describe_fixed']['p95_sim_s'], ',.0f')} vs "
                    f"{fmt(by_key['sweep']['p95_sim_s'], ',.0f')} simulated s; terminal missed "
                    f"{fmt(by_key['sweep']['missed_terminal'])}",
                )
            )
            targets.append(
                Target(
                    f"s5_list_first_{size.jobs}",
                    f"S5 ({size.jobs:,} jobs): confirm terminal <= 2.5 calls per job "
                    "(>= 19x fewer than describe-only), p95 no worse than sweep, 0 missed",
                    f"{first['calls_per_job']:.2f} calls/job, {fewer_lf:.1f}x fewer, "
                    f"p95 {p95_lf:.2f}x",
                    first["calls_per_job"] <= 2.5
                    and fewer_lf >= 19
                    and p95_lf <= 1.0
                    and first["missed_terminal"] == 0,
                    f"List {fmt(first['list_per_job'], '.2f')}, attach "
                    f"{fmt(first['attach_per_job'], '.2f')}, confirm "
                    f"{fmt(first['confirm_per_job'], '.2f')}, safety "
                    f"{fmt(first['safety_per_job'], '.2f')} calls/job; terminal missed "
                    f"{fmt(first['missed_terminal'])}",
                )
            )
    sizes_text = " / ".join(f"{s.jobs:,}" for s in sizes)

    def cells(metric: str, spec: str) -> dict[str, str]:
        return {"asyncoptjob": " / ".join(fmt(headline[str(s.jobs)][metric], spec) for s in sizes)}

    return ScenarioResult(
        key="s5",
        name="s5_sweeps",
        title="S5 sweeps: List sweeps vs describe-only polling",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "jobs": [s.jobs for s in sizes],
            "interval_simulated_s": INTERVAL_SIM,
            "safety_interval_simulated_s": SAFETY_SIM,
            "overlap_simulated_s": OVERLAP_SIM,
            "concurrency": CONCURRENCY,
            **{f"lifecycle_{s.jobs}": s.lifecycle for s in sizes},
        },
        tables=tables,
        targets=targets,
        headline=[
            Headline(
                f"S5 calls/job describe-only fixed ({sizes_text} jobs)", cells("fixed", ".1f")
            ),
            Headline(f"S5 calls/job sweep ({sizes_text} jobs)", cells("sweep", ".1f")),
            Headline(
                f"S5 calls/job sweep, confirm terminal ({sizes_text} jobs)",
                cells("list_first", ".2f"),
            ),
            Headline(
                f"S5 p95 detection, simulated s, describe-only vs sweep vs confirm terminal "
                f"({sizes_text})",
                {
                    "asyncoptjob": " / ".join(
                        f"{fmt(headline[str(s.jobs)]['p95_fixed'], ',.0f')} vs "
                        f"{fmt(headline[str(s.jobs)]['p95_sweep'], ',.0f')} vs "
                        f"{fmt(headline[str(s.jobs)]['p95_list_first'], ',.0f')}"
                        for s in sizes
                    )
                },
            ),
        ],
        plots=[
            Plot(tables[0].key, "calls_per_job", "API calls per job lifecycle (lower is better)")
        ],
        notes=[
            "All rows are asyncoptjob (Poller.watch); the other contenders are "
            "describe-only loops, compared at equal intervals in S3.",
        ],
        run={"repeats": repeats},
    )
