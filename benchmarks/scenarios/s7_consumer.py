"""S7 consumer speed: module-level ``watch()`` against ``Poller.watch`` with a busy consumer.

An application does something with each event: a database write, a chat message. Here
the consumer spends 0, 50 or 200 ms per event (``await asyncio.sleep(delay)`` in the loop
body) while asyncoptjob watches 40 jobs with real lifecycles in the mock (STARTING 2-8 s,
INPROGRESS 8-22 s, 10 % FAILED, 25 % stopped by a simulated user: STOPPING 1.5-3 s, then
STOPPED), all with ``strategy="describe"`` and a fixed 0.5 s poll interval. The same
consumer runs on ``async for event in watch(names)`` and on ``Poller.watch``. Detection
latency is the event's ``observed_at`` minus the mock's true transition time (from its
control path), over every status change after a job's first observation; delivery latency
is when the consumer got the event minus the same true time (a consumer slower than the
jobs change falls behind whatever the library does). Polling should keep its pace
whatever the consumer does, so detection latency should not depend on the consumer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from asyncoptjob import Event, PollPolicy, StatusChange

from ..contenders import contender
from ..isolation import run_side_by_side
from ..measure import Meter, medians, percentile, ratio
from ..mockserver import MockServer
from ..registry import RunContext, scenario
from ..report import Column, Headline, Plot, Row, ScenarioResult, Table, Target, fmt
from ..watchers import asyncoptjob_watcher
from .s3_lifecycle import detection

TITLE = "S7 consumer speed: watch() vs Poller.watch with a busy consumer"
CONCURRENCY = 16
#: The two ways to consume events, by the ``api`` of :func:`asyncoptjob_watcher`.
APIS = {"watch": "watch()", "poller": "Poller.watch"}
#: watch() p95 / Poller.watch p95 allowed at every consumer speed (from issue 12).
TARGET_RATIO = 1.10


@dataclass(frozen=True, slots=True)
class Sizes:
    """The experiment's size (durations in real seconds: ``time_scale`` 1)."""

    jobs: int
    lifecycle: dict[str, Any]
    interval: float
    latency_ms: float
    delays: tuple[float, ...]


FULL = Sizes(
    jobs=40,
    lifecycle={
        "starting": [2, 8],
        "in_progress": [8, 22],
        "stopping": [1.5, 3],
        "failure_rate": 0.1,
        "stop_rate": 0.25,
        "time_scale": 1.0,
    },
    interval=0.5,
    latency_ms=20.0,
    delays=(0.0, 0.05, 0.2),
)
QUICK = Sizes(
    jobs=6,
    lifecycle={
        "starting": [0.4, 0.8],
        "in_progress": [0.3, 0.6],
        "stopping": [0.1, 0.2],
        "failure_rate": 0.1,
        "stop_rate": 0.25,
        "time_scale": 1.0,
    },
    interval=0.05,
    latency_ms=0.0,
    delays=(0.0, 0.005, 0.02),
)

COLUMNS = [
    Column("p50_s", "detection p50 s", ".2f"),
    Column("p95_s", "p95 s", ".2f"),
    Column("changes_detected", "transitions seen", ",.0f"),
    Column("true_changes", "true transitions", ",.0f"),
    Column("missed_terminal", "terminal missed", ",.0f"),
    Column("delivered_p95_s", "delivered p95 s", ".2f"),
    Column("calls", "describes", ",.0f"),
    Column("wall_s", "time s", ".1f"),
]
RATIO_COLUMNS = [
    Column("watch_p95_s", "watch() p95 s", ".2f"),
    Column("poller_p95_s", "Poller.watch p95 s", ".2f"),
    Column("p95_ratio", "watch() / Poller.watch p95", ".2f"),
    Column("seen_ratio", "watch() / Poller.watch transitions seen", ".2f"),
]


def _ms(delay: float) -> str:
    return f"{delay * 1000:g} ms"


def _delivery(
    received: list[tuple[str, str, float]], truth: dict[str, list[tuple[str, float]]]
) -> float:
    """p95 of consumer receipt time minus true transition time, after each job's first."""
    latencies: list[float] = []
    started: set[str] = set()
    for name, status, at in received:
        if name not in started:
            started.add(name)
            continue
        times = dict(truth.get(name, []))
        if status in times:
            latencies.append(at - times[status])
    return percentile(latencies, 95)


def _measure(mock: MockServer, api: str, delay: float, sizes: Sizes) -> dict[str, float]:
    """Watch fresh jobs on ``mock`` with a consumer spending ``delay`` s per event."""
    received: list[tuple[str, str, float]] = []

    async def consume(event: Event) -> None:
        if isinstance(event, StatusChange):
            received.append((event.job_name, event.status.value, time.time()))
        await asyncio.sleep(delay)

    fixed = PollPolicy(interval=sizes.interval, max_interval=sizes.interval, backoff=1.0)
    watcher = asyncoptjob_watcher(fixed, api=api, consume=consume)
    mock.set_faults(latency_ms=sizes.latency_ms)
    meter = Meter(mock.cpu_seconds)
    log = watcher(
        mock.url,
        lambda: mock.seed(sizes.jobs, prefix="s7", lifecycle=sizes.lifecycle),
        sizes.interval,
        CONCURRENCY,
        meter,
    )
    span = meter.span
    assert span is not None
    calls = sum(mock.settled_describe_counts().values())
    truth = mock.transitions()
    found = detection(log, truth)
    return {
        "p50_s": found["p50_s"],
        "p95_s": found["p95_s"],
        "p99_s": found["p99_s"],
        "terminal_p95_s": found["terminal_p95_s"],
        "changes_detected": found["changes_detected"],
        # Every transition after each job's initial status: the same for both APIs (same
        # seed), so a job first seen late counts its unseen early transitions as missed.
        "true_changes": sum(len(transitions) - 1 for transitions in truth.values()),
        "skipped": found["skipped"],
        "missed_terminal": found["missed_terminal"],
        "gave_up": len(log.gave_up),
        "delivered_p95_s": _delivery(received, truth),
        "calls": calls,
        "wall_s": span.wall,
        "cpu_s": span.cpu,
    }


def measure_one(api: str, delay: float, seed: int) -> dict[str, float]:
    """One full-size run against its own mock (called in a child process).

    The same seed for both APIs: both watch jobs with exactly the same schedules.
    """
    with MockServer(seed=seed) as mock:
        return _measure(mock, api, delay, FULL)


def _measure_batch(
    ctx: RunContext, sizes: Sizes, batch: list[tuple[str, float]], seed: int
) -> list[dict[str, float]]:
    if ctx.quick:
        # A smoke run: one mock in this process, reset between runs, keeps --quick short
        # (a process pair per speed costs seconds of start-up on a busy machine).
        results = []
        with ctx.mock(seed=seed) as mock:
            for api, delay in batch:
                mock.reset()
                results.append(_measure(mock, api, delay, sizes))
        return results
    # Both APIs at one speed side by side, each in its own process against its own mock:
    # machine noise hits the pair alike, and two repeats fit in about four minutes.
    return run_side_by_side(
        [
            (f"{__name__}:measure_one", {"api": api, "delay": delay, "seed": seed})
            for api, delay in batch
        ]
    )


@scenario("s7", TITLE)
def run(ctx: RunContext) -> ScenarioResult:
    sizes = QUICK if ctx.quick else FULL
    repeats = ctx.repeats_or(2)
    pairs = [(api, delay) for delay in sizes.delays for api in APIS]
    samples: dict[tuple[str, float], list[dict[str, float]]] = {pair: [] for pair in pairs}
    ratios: dict[float, list[dict[str, float]]] = {delay: [] for delay in sizes.delays}
    for repeat in range(repeats):
        # The speeds' order rotates per repeat, and which API starts first alternates.
        shift = repeat % len(sizes.delays)
        delays = sizes.delays[shift:] + sizes.delays[:shift]
        apis = list(APIS) if repeat % 2 == 0 else list(reversed(APIS))
        for delay in delays:
            batch = [(api, delay) for api in apis]
            results = _measure_batch(ctx, sizes, batch, seed=repeat + 1)
            for (api, _), values in zip(batch, results, strict=True):
                samples[api, delay].append(values)
                ctx.log(
                    f"  repeat {repeat + 1}/{repeats} {APIS[api]:<12} consumer "
                    f"{_ms(delay):>6}: p95 {values['p95_s']:.2f} s, seen "
                    f"{values['changes_detected']:.0f}/{values['true_changes']:.0f}, "
                    f"{values['missed_terminal']:.0f} terminal missed, {values['wall_s']:.1f} s"
                )
            mine, theirs = samples["watch", delay][-1], samples["poller", delay][-1]
            ratios[delay].append(
                {
                    "watch_p95_s": mine["p95_s"],
                    "poller_p95_s": theirs["p95_s"],
                    "p95_ratio": ratio(mine["p95_s"], theirs["p95_s"]),
                    "seen_ratio": ratio(mine["changes_detected"], theirs["changes_detected"]),
                }
            )

    key = contender("asyncoptjob").key
    rows = [
        Row(
            key,
            f"{APIS[api]}, consumer {_ms(delay)}",
            dict(medians(samples[api, delay])),
            repeats=samples[api, delay],
        )
        for api, delay in pairs
    ]
    ratio_rows = [
        Row(key, f"consumer {_ms(delay)}", dict(medians(ratios[delay])), repeats=ratios[delay])
        for delay in sizes.delays
    ]
    by_delay = dict(zip(sizes.delays, ratio_rows, strict=True))
    p95_ratios = [row.values.get("p95_ratio") for row in ratio_rows]
    speeds = " / ".join(_ms(delay) for delay in sizes.delays)
    measured = " / ".join(fmt(value, ".2f") for value in p95_ratios)
    targets = [
        Target(
            "s7_watch_vs_poller_p95",
            f"S7: watch() p95 detection within {TARGET_RATIO - 1:.0%} of Poller.watch at "
            "every consumer speed",
            f"{measured} at {speeds}",
            all(value is not None and value <= TARGET_RATIO for value in p95_ratios),
            "; ".join(
                f"{_ms(delay)}: {fmt(row.values.get('watch_p95_s'), '.2f')} s vs "
                f"{fmt(row.values.get('poller_p95_s'), '.2f')} s"
                for delay, row in by_delay.items()
            ),
        )
    ]
    return ScenarioResult(
        key="s7",
        name="s7_consumer",
        title=TITLE,
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "jobs": sizes.jobs,
            "interval_s": sizes.interval,
            "latency_ms": sizes.latency_ms,
            "concurrency": CONCURRENCY,
            "consumer_delays_ms": [delay * 1000 for delay in sizes.delays],
            **{f"lifecycle.{k}": v for k, v in sizes.lifecycle.items()},
        },
        tables=[
            Table(
                "consumer",
                f"{sizes.jobs:,} jobs, poll interval {sizes.interval:g} s (fixed), mock "
                f"latency {sizes.latency_ms:g} ms, strategy describe",
                COLUMNS,
                rows,
                "transitions seen = status changes seen after each job's first observation; "
                "true transitions = the mock's transitions after each job's initial status (a "
                "job first seen late, or a short STOPPING between two polls, is a transition "
                "not seen). delivered = when the consumer got the event, minus the true "
                "transition time.",
            ),
            Table(
                "ratio",
                "watch() against Poller.watch, per consumer speed",
                RATIO_COLUMNS,
                ratio_rows,
                f"Ratios taken within each repeat (the pair ran side by side), then the "
                f"median. Target: p95 ratio <= {TARGET_RATIO:.2f} at every speed.",
            ),
        ],
        targets=targets,
        headline=[
            Headline(
                f"S7 watch() / Poller.watch detection p95 (consumer {speeds})",
                {key: measured},
            ),
        ],
        plots=[Plot("consumer", "p95_s", "S7 detection latency p95, s (lower is better)")],
        notes=[
            f"Every (API, consumer speed) pair watches a fresh set of {sizes.jobs} jobs on its "
            "own mock process, seeded alike, so both APIs see the same schedules.",
        ],
        run={"repeats": repeats},
    )
