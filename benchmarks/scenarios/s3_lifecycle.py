"""S3 lifecycle: watch 1,000 running jobs until all are terminal.

Jobs follow the mock's simulated lifecycle (STARTING 30-120 s, INPROGRESS 5-15 min, 10%
FAILED, 5% stopped by a simulated user: STOPPING then STOPPED), time-scaled so the whole
run takes about 30 s. Every contender polls each job every ``interval`` (the same base
interval for all, scaled like the jobs). Detection latency is the time a watcher first saw
a status (asyncoptjob: the event's ``observed_at``) minus the mock's true transition time
(from its control path), over every status change after a job's first observation.
API calls are the mock's count. asyncoptjob runs with a fixed interval (as the others)
through the module-level ``watch()`` and through ``Poller.watch``, and with its default
policy shape (the interval grows 1.5x per unchanged poll up to 6x, reset on every change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asyncoptjob import PollPolicy

from ..contenders import CONTENDERS, TERMINAL, contender
from ..measure import Meter, medians, percentile
from ..registry import RunContext, scenario
from ..report import Column, Headline, Plot, Row, ScenarioResult, Table, Target, fmt
from ..watchers import WATCHERS, Watcher, WatchLog, asyncoptjob_watcher

CONCURRENCY = 16
#: asyncoptjob rows shown in parentheses after the main (``watch()``, fixed) one.
EXTRA_VARIANTS = {"asyncoptjob_poller": "Poller", "asyncoptjob_backoff": "backoff"}


@dataclass(frozen=True, slots=True)
class Sizes:
    """The lifecycle experiment's size (durations in simulated seconds)."""

    jobs: int
    lifecycle: dict[str, Any]
    interval: float
    latency_ms: float


FULL = Sizes(
    jobs=1_000,
    lifecycle={
        "starting": [30, 120],
        "in_progress": [300, 900],
        "stopping": [10, 60],
        "failure_rate": 0.1,
        "stop_rate": 0.05,
        "time_scale": 1 / 36,
    },
    interval=2.0,
    latency_ms=20.0,
)
QUICK = Sizes(
    jobs=30,
    lifecycle={
        "starting": [1, 2],
        "in_progress": [2, 4],
        "stopping": [0.5, 1],
        "failure_rate": 0.1,
        "stop_rate": 0.1,
        # Long enough that client start-up on a busy machine still sees jobs change.
        "time_scale": 0.25,
    },
    interval=0.05,
    latency_ms=0.0,
)

COLUMNS = [
    Column("calls", "API calls", ",.0f"),
    Column("calls_per_job", "calls per job", ".1f"),
    Column("p50_s", "detection p50 s", ".2f"),
    Column("p95_s", "p95 s", ".2f"),
    Column("p99_s", "p99 s", ".2f"),
    Column("terminal_p95_s", "terminal p95 s", ".2f"),
    Column("missed_terminal", "terminal missed", ",.0f"),
    Column("skipped", "statuses skipped", ",.0f"),
    Column("cpu_s", "client CPU s", ".1f"),
    Column("wall_s", "time s", ".1f"),
]


def _variants(sizes: Sizes) -> list[tuple[str, str, str, Watcher | None]]:
    rows: list[tuple[str, str, str, Watcher | None]] = [
        (c.key, c.key, c.title, WATCHERS.get(c.key)) for c in CONTENDERS if c.number < 6
    ]
    mine = contender("asyncoptjob")
    fixed = PollPolicy(interval=sizes.interval, max_interval=sizes.interval, backoff=1.0)
    rows += [
        (
            "asyncoptjob_fixed",
            mine.key,
            f"{mine.title} watch(), fixed interval",
            asyncoptjob_watcher(fixed),
        ),
        (
            "asyncoptjob_poller",
            mine.key,
            f"{mine.title} Poller.watch, fixed interval",
            asyncoptjob_watcher(fixed, api="poller"),
        ),
        (
            "asyncoptjob_backoff",
            mine.key,
            f"{mine.title} watch(), default backoff",
            asyncoptjob_watcher(sizes.interval),
        ),
    ]
    return rows


def detection(log: WatchLog, truth: dict[str, list[tuple[str, float]]]) -> dict[str, float]:
    """Detection latencies and misses of ``log`` against the mock's true transitions."""
    seen: dict[str, list[tuple[float, str]]] = {}
    for name, status, at in log.seen:
        seen.setdefault(name, []).append((at, status))
    latencies: list[float] = []
    terminal: list[float] = []
    missed = skipped = 0
    for name, transitions in truth.items():
        times = dict(transitions)
        observed = sorted(seen.get(name, []))
        final = transitions[-1][0]
        if final in TERMINAL and final not in {s for _, s in observed}:
            missed += 1
        if not observed:
            continue
        first_status = observed[0][1]
        statuses = [s for s, _ in transitions]
        later = statuses[statuses.index(first_status) + 1 :] if first_status in statuses else []
        skipped += len(set(later) - {s for _, s in observed[1:]})
        for at, status in observed[1:]:
            if status in times:
                latency = at - times[status]
                latencies.append(latency)
                if status in TERMINAL:
                    terminal.append(latency)
    return {
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "p99_s": percentile(latencies, 99),
        "terminal_p50_s": percentile(terminal, 50),
        "terminal_p95_s": percentile(terminal, 95),
        "max_s": max(latencies, default=float("nan")),
        "changes_detected": len(latencies),
        "missed_terminal": missed,
        "skipped": skipped,
    }


@scenario("s3", "S3 lifecycle: 1,000 running jobs watched until terminal")
def run(ctx: RunContext) -> ScenarioResult:
    sizes = QUICK if ctx.quick else FULL
    repeats = ctx.repeats_or(1)
    variants = _variants(sizes)
    samples: dict[str, list[dict[str, float]]] = {key: [] for key, *_ in variants}
    for repeat in range(repeats):
        for key, _, _, watcher in variants:
            if watcher is None:
                continue
            # A fresh mock with the same seed per run: every contender watches jobs with
            # exactly the same schedules.
            with ctx.mock(seed=repeat + 1) as mock:
                mock.set_faults(latency_ms=sizes.latency_ms)
                meter = Meter(mock.cpu_seconds)
                log = watcher(
                    mock.url,
                    lambda: mock.seed(sizes.jobs, prefix="s3", lifecycle=sizes.lifecycle),
                    sizes.interval,
                    CONCURRENCY,
                    meter,
                )
                span = meter.span
                assert span is not None
                calls = sum(mock.describe_counts().values())
                values: dict[str, float] = {
                    "calls": calls,
                    "calls_per_job": calls / sizes.jobs,
                    "wall_s": span.wall,
                    "cpu_s": span.cpu,
                    "mock_busy": span.mock_busy,
                    "gave_up": len(log.gave_up),
                    **detection(log, mock.transitions()),
                }
                samples[key].append(values)
                ctx.log(
                    f"  repeat {repeat + 1}/{repeats} {key:<20} {calls:6,} calls, p95 "
                    f"{values['p95_s']:.2f} s, {values['missed_terminal']:.0f} missed, "
                    f"{span.wall:.1f} s"
                )
    rows = []
    for key, contender_key, label, watcher in variants:
        if watcher is None:
            rows.append(
                Row(contender_key, label, na="n/a (not a watcher: no retries; the ceiling is S1)")
            )
        else:
            rows.append(
                Row(contender_key, label, dict(medians(samples[key])), repeats=samples[key])
            )
    by_key = {key: row for (key, *_), row in zip(variants, rows, strict=True)}
    targets = [
        Target(
            f"s3_{key}_missed",
            f"S3 ({what}): terminal states missed = 0",
            fmt(by_key[key].values.get("missed_terminal")),
            by_key[key].values.get("missed_terminal") == 0,
            f"p95 detection {fmt(by_key[key].values.get('p95_s'), '.2f')} s with a "
            f"{sizes.interval:g} s base interval; {fmt(by_key[key].values.get('calls'))} calls",
        )
        for key, what in (
            ("asyncoptjob_fixed", "watch(), fixed interval"),
            ("asyncoptjob_poller", "Poller.watch, fixed interval"),
            ("asyncoptjob_backoff", "watch(), default backoff"),
        )
    ]

    def cells(column: str, spec: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, contender_key, _, _ in variants:
            row = by_key[key]
            text = "n/a" if row.na else fmt(row.values.get(column), spec)
            if key in EXTRA_VARIANTS:
                out[contender_key] += f"; {EXTRA_VARIANTS[key]}: {text}"
            else:
                out[contender_key] = text
        head, _, rest = out["asyncoptjob"].partition("; ")
        if rest:
            out["asyncoptjob"] = f"{head} ({rest})"
        return out

    scale = sizes.lifecycle["time_scale"]
    return ScenarioResult(
        key="s3",
        name="s3_lifecycle",
        title="S3 lifecycle: 1,000 running jobs watched until terminal",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "jobs": sizes.jobs,
            "interval_s": sizes.interval,
            "interval_simulated_s": round(sizes.interval / scale),
            "latency_ms": sizes.latency_ms,
            "concurrency": CONCURRENCY,
            **{f"lifecycle.{k}": v for k, v in sizes.lifecycle.items()},
        },
        tables=[
            Table(
                "lifecycle",
                f"{sizes.jobs:,} jobs, poll interval {sizes.interval:g} s "
                f"(= {sizes.interval / scale:.0f} simulated s), mock latency "
                f"{sizes.latency_ms:g} ms",
                COLUMNS,
                rows,
                "Latencies in real seconds (multiply by "
                f"{1 / scale:.0f} for simulated seconds). skipped = intermediate statuses "
                "never seen (a job changed twice between two polls).",
            )
        ],
        targets=targets,
        headline=[
            Headline(f"S3 API calls ({sizes.jobs:,} jobs to terminal)", cells("calls", ",.0f")),
            Headline(f"S3 detection p95, s ({sizes.interval:g} s interval)", cells("p95_s", ".2f")),
            Headline("S3 terminal states missed", cells("missed_terminal", ",.0f")),
        ],
        plots=[
            Plot("lifecycle", "calls", "API calls until all terminal (lower is better)"),
            Plot("lifecycle", "p95_s", "detection latency p95, s (lower is better)"),
        ],
        notes=[
            "The intervals are compressed with the jobs, so polling costs more CPU per "
            "simulated minute than in real life; the mock has no rate limit here (S2 covers "
            "quotas).",
        ],
        run={"repeats": repeats},
    )
