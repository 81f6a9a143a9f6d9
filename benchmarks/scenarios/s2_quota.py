"""S2 quota: describe 20 s worth of jobs once each under an account-wide rate limit.

The mock lets DescribeOptimizationJob through at R requests/s (a token bucket holding
``burst`` requests, shared by every client, like AWS's per-account limits) and answers
the rest ``ThrottlingException``. Every job is already COMPLETED, so each contender needs
exactly one successful describe per job and stops; everything else is wasted quota.
Goodput is jobs finished per second between the first and the last request the mock
saw (so nobody's client start-up counts); the ideal is jobs / R seconds. Call counts
by outcome come from the mock. At R = 20/s every contender runs, and asyncoptjob twice:
adaptive only (it learns R from the throttles) and told ``max_rate=R``. The cold-start
table repeats the adaptive pair, asyncoptjob adaptive only against botocore's
``adaptive`` retry mode (contender 4), at R = 20, 50 and 200/s, 20 s of work each, every
client starting cold, in a fresh process; its goodput is also given with client creation
counted (from before the client, or the ``Poller``, was created to the last request: the
Poller here builds its own client, as an application's first one does).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from asyncoptjob import PollPolicy

from ..contenders import CONTENDERS, contender
from ..isolation import run_side_by_side
from ..measure import Meter, medians
from ..mockserver import DESCRIBE, MockServer
from ..registry import RunContext, scenario
from ..report import Column, Headline, Plot, Row, ScenarioResult, Table, Target, fmt
from ..watchers import WATCHERS, Watcher, asyncoptjob_watcher

CONCURRENCY = 16
#: Jobs that are COMPLETED from the start: one describe each is all a watcher needs.
DONE = {"starting": [0, 0], "in_progress": [0, 0]}


@dataclass(frozen=True, slots=True)
class Sizes:
    """The quota experiment's size."""

    jobs: int
    rate: float
    burst: float
    latency_ms: float
    interval: float


#: Seconds of work at each limit: jobs = R * WORK_S.
WORK_S = 20
#: The first size runs every contender; the others only the cold-start pair.
FULL = tuple(
    Sizes(jobs=int(rate * WORK_S), rate=rate, burst=rate, latency_ms=20.0, interval=1.0)
    for rate in (20.0, 50.0, 200.0)
)
QUICK = (Sizes(jobs=40, rate=200.0, burst=30.0, latency_ms=0.0, interval=0.2),)
#: The cold-start pair again with a shallow account bucket (a fifth of a second of R): the
#: slow start's measure of the limit assumes the bucket holds what a climb leaves unused.
SHALLOW_FULL = tuple(
    Sizes(jobs=int(rate * WORK_S), rate=rate, burst=rate / 5, latency_ms=20.0, interval=1.0)
    for rate in (20.0, 200.0)
)
SHALLOW_QUICK = (Sizes(jobs=40, rate=100.0, burst=20.0, latency_ms=0.0, interval=0.2),)
#: The cold-start pair: botocore's adaptive mode and asyncoptjob adaptive only.
COLD = ("aiobotocore_gather", "asyncoptjob_adaptive")

COLUMNS = [
    Column("goodput_vs_rate", "goodput / R", ".2f"),
    Column("throttled_share", "calls throttled", ".1%"),
    Column("failed", "jobs failed", ",.0f"),
    Column("wall_s", "time s", ".1f"),
    Column("vs_ideal", "time / ideal", ".2f"),
    Column("calls_per_job", "calls per job", ".2f"),
    Column("cpu_s", "client CPU s", ".2f"),
]


def _variants(sizes: Sizes) -> list[tuple[str, str, str, Watcher | None]]:
    """``(row key, contender key, label, watcher)``; watcher None means n/a."""
    policy = PollPolicy(interval=sizes.interval)
    rows: list[tuple[str, str, str, Watcher | None]] = [
        (c.key, c.key, c.title, WATCHERS.get(c.key)) for c in CONTENDERS if c.number < 6
    ]
    mine = contender("asyncoptjob")
    rows.append(
        (
            "asyncoptjob_adaptive",
            mine.key,
            f"{mine.title} (adaptive only)",
            # Cold: its Poller builds its client from nothing (see the cold-start table).
            asyncoptjob_watcher(policy, warm=False),
        )
    )
    rows.append(
        (
            "asyncoptjob_max_rate",
            mine.key,
            f"{mine.title} (max_rate=R)",
            asyncoptjob_watcher(policy, max_rate=sizes.rate),
        )
    )
    return rows


def measure_one(variant: str, sizes: dict[str, float], seed: int) -> dict[str, float]:
    """Run one variant against its own mock (called in a child process); return its values."""
    size = Sizes(**sizes)  # type: ignore[arg-type]
    watcher = {key: w for key, _, _, w in _variants(size)}[variant]
    assert watcher is not None
    ideal = size.jobs / size.rate
    with MockServer(seed=seed) as mock:
        mock.set_faults(
            describe_rate=size.rate, describe_burst=size.burst, latency_ms=size.latency_ms
        )
        meter = Meter(mock.cpu_seconds)
        # The mock's request log is on the machine's monotonic clock, like this one.
        started = time.monotonic()
        log = watcher(
            mock.url,
            lambda: mock.seed(size.jobs, prefix="s2", lifecycle=DONE, outcome="COMPLETED"),
            size.interval,
            CONCURRENCY,
            meter,
        )
        span = meter.span
        assert span is not None
        counts = mock.describe_counts()
        max_ok = mock.max_requests_in_window(1.0)
        arrivals = [at for at, operation, _ in mock.requests() if operation == DESCRIBE]
    calls = sum(counts.values())
    throttled = counts.get("ThrottlingException", 0)
    finished = len({name for name, _, _ in log.seen})
    # From the first request the mock saw to the last one: client start-up is not counted
    # for anyone, and the ideal (jobs / R) is measured on the same clock.
    elapsed = max(arrivals) - min(arrivals) if len(arrivals) > 1 else span.wall
    # From before the client (or Poller) was created to the last request: start-up counted.
    with_client = max(arrivals) - started if arrivals else span.wall
    return {
        "jobs_finished": finished,
        "failed": size.jobs - finished,
        "wall_s": elapsed,
        "client_wall_s": span.wall,
        "cpu_s": span.cpu,
        "goodput": finished / elapsed,
        "goodput_vs_rate": finished / elapsed / size.rate,
        "with_client_s": with_client,
        "goodput_with_client": finished / with_client / size.rate,
        "calls": calls,
        "ok": counts.get("ok", 0),
        "throttled": throttled,
        "throttled_share": throttled / max(calls, 1),
        "calls_per_job": calls / size.jobs,
        "vs_ideal": elapsed / ideal,
        "max_ok_in_1s": max_ok,
    }


COLD_COLUMNS = [
    Column("R", "R /s", ",.0f"),
    Column("jobs", "jobs", ",.0f"),
    Column("goodput_with_client", "goodput / ideal, client counted", ".2f"),
    Column("goodput_vs_rate", "goodput / ideal", ".2f"),
    Column("throttled_share", "calls throttled", ".1%"),
    Column("failed", "jobs failed", ",.0f"),
    Column("wall_s", "time s", ".1f"),
]


def _measure(
    sizes: Sizes, keys: list[str], repeat: int, repeats: int, ctx: RunContext
) -> list[dict[str, float]]:
    """Each variant of ``keys`` in its own process against its own mock, all at once."""
    results = run_side_by_side(
        [
            (f"{__name__}:measure_one", {"variant": key, "sizes": asdict(sizes), "seed": 1})
            for key in keys
        ]
    )
    for key, values in zip(keys, results, strict=True):
        ctx.log(
            f"  repeat {repeat + 1}/{repeats} R={sizes.rate:g} {key:<22} goodput "
            f"{values['goodput_vs_rate']:.2f} R, {values['throttled_share']:.1%} "
            f"throttled, {values['failed']:.0f} failed, {values['wall_s']:.1f} s"
        )
    return list(results)


def _pair_rows(
    sizes_list: tuple[Sizes, ...], samples: dict[tuple[str, float], list[dict[str, float]]]
) -> list[Row]:
    """The cold-start pair's rows, by limit."""
    labels = {key: label for key, _, label, _ in _variants(sizes_list[0])}
    rows: list[Row] = []
    for sizes in sizes_list:
        for key in COLD:
            runs = samples[(key, sizes.rate)]
            values: dict[str, float | None] = {
                **medians(runs),
                "R": sizes.rate,
                "jobs": sizes.jobs,
                "burst": sizes.burst,
            }
            contender_key = "asyncoptjob" if key.startswith("asyncoptjob") else key
            label = f"{labels[key]}, R = {sizes.rate:g}/s"
            rows.append(Row(contender_key, label, values, repeats=runs))
    return rows


def _cold_table(
    sizes_list: tuple[Sizes, ...], cold: dict[tuple[str, float], list[dict[str, float]]]
) -> tuple[Table, list[Target], list[str]]:
    """The cold-start table (rows by limit), its targets and a line for the notes."""
    rows = _pair_rows(sizes_list, cold)
    targets: list[Target] = []
    for row in rows:
        if row.contender != "asyncoptjob":
            continue
        rate = row.values["R"] or 0.0
        goodput = row.values["goodput_with_client"] or 0.0
        throttled = row.values["throttled_share"] or 0.0
        targets.append(
            Target(
                f"s2_cold_{rate:g}",
                f"S2 cold start at R = {rate:g}/s (adaptive only, client creation counted): "
                "<= 1% throttled, goodput >= 0.97 ideal",
                f"{goodput:.2f} ideal, {throttled:.1%} throttled",
                goodput >= 0.97 and throttled <= 0.01,
            )
        )
    table = Table(
        "cold",
        f"cold start: {WORK_S} s of work at each limit (jobs = {WORK_S} x R, burst = R), "
        "each client starting cold",
        COLD_COLUMNS,
        rows,
        "goodput / ideal = (jobs / time from the first to the last request the mock saw) / R; "
        "client counted: from before the client (or Poller) was created, in a fresh process.",
    )
    notes = [
        "Cold start: asyncoptjob's adaptive limiter starts at 5 requests/s, sends at least "
        "one request per round trip once one is answered and doubles its rate every 12 "
        "round trips of accepted requests (at most every 0.3 s) until the first throttle, "
        "then climbs from "
        "a guess under that to a second throttle, which measures the limit (slow start); "
        "botocore's adaptive mode does not limit until its first throttle."
    ]
    return table, targets, notes


def _shallow_table(
    sizes_list: tuple[Sizes, ...], shallow: dict[tuple[str, float], list[dict[str, float]]]
) -> Table:
    """The cold-start pair against a shallow account bucket: no target, a known weakness."""
    return Table(
        "shallow",
        f"cold start against a shallow bucket: as above, burst = R / 5 ({WORK_S} s of work)",
        [*COLD_COLUMNS[:2], Column("burst", "burst", ",.0f"), *COLD_COLUMNS[2:]],
        _pair_rows(sizes_list, shallow),
        "No target: a bucket that holds less than the slow start's climb leaves unused "
        "overflows, asyncoptjob's measure of the limit then comes out low (the average of a "
        "rising rate), and later measures, taken the same way, stay low.",
    )


@scenario("s2", "S2 quota: describes under an account-wide rate limit, cold start at 3 limits")
def run(ctx: RunContext) -> ScenarioResult:
    sizes_list = QUICK if ctx.quick else FULL
    sizes = sizes_list[0]
    repeats = ctx.repeats_or(3)
    ideal = sizes.jobs / sizes.rate
    variants = _variants(sizes)
    measured = [key for key, _, _, watcher in variants if watcher is not None]
    samples: dict[str, list[dict[str, float]]] = {key: [] for key, *_ in variants}
    cold: dict[tuple[str, float], list[dict[str, float]]] = {
        (key, each.rate): [] for key in COLD for each in sizes_list
    }
    shallow_list = SHALLOW_QUICK if ctx.quick else SHALLOW_FULL
    shallow: dict[tuple[str, float], list[dict[str, float]]] = {
        (key, each.rate): [] for key in COLD for each in shallow_list
    }
    for repeat in range(repeats):
        # Side by side: each variant in its own process, against its own mock and limit.
        for key, values in zip(
            measured, _measure(sizes, measured, repeat, repeats, ctx), strict=True
        ):
            samples[key].append(values)
            if key in COLD:
                cold[(key, sizes.rate)].append(values)
        # The cold-start pair alone at the other limits, and against shallow buckets.
        for others, into in ((sizes_list[1:], cold), (shallow_list, shallow)):
            for other in others:
                for key, values in zip(
                    COLD, _measure(other, list(COLD), repeat, repeats, ctx), strict=True
                ):
                    into[(key, other.rate)].append(values)
    rows = []
    for key, contender_key, label, watcher in variants:
        if watcher is None:
            rows.append(
                Row(
                    contender_key,
                    label,
                    na="n/a (no retries or backoff: it is the transport ceiling, see S1)",
                )
            )
        else:
            rows.append(
                Row(contender_key, label, dict(medians(samples[key])), repeats=samples[key])
            )
    by_key = {key: row for (key, *_), row in zip(variants, rows, strict=True)}
    targets = []
    for key, what in (
        ("asyncoptjob_adaptive", "adaptive only"),
        ("asyncoptjob_max_rate", "max_rate=R"),
    ):
        values = by_key[key].values
        goodput = values["goodput_vs_rate"] or 0.0
        throttled = values["throttled_share"] or 0.0
        failed = values["failed"] or 0.0
        targets.append(
            Target(
                f"s2_{key}",
                f"S2 ({what}): goodput >= 0.95 R, <= 2% throttled, 0 failed",
                f"{goodput:.2f} R, {throttled:.1%} throttled, {failed:.0f} failed",
                goodput >= 0.95 and throttled <= 0.02 and failed == 0,
                f"R = {sizes.rate:g}/s; contender 4: "
                f"{fmt(by_key['aiobotocore_gather'].values.get('goodput_vs_rate'), '.2f')} R, "
                f"{fmt(by_key['aiobotocore_gather'].values.get('throttled_share'), '.1%')} "
                "throttled",
            )
        )

    cold_table, cold_targets, cold_notes = _cold_table(sizes_list, cold)
    targets.extend(cold_targets)

    def cells(column: str, spec: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, contender_key, _, _ in variants:
            row = by_key[key]
            text = "n/a" if row.na else fmt(row.values.get(column), spec)
            if key == "asyncoptjob_max_rate":
                out[contender_key] += f" (max_rate=R: {text})"
            else:
                out[contender_key] = text
        return out

    return ScenarioResult(
        key="s2",
        name="s2_quota",
        title="S2 quota: describes under an account-wide rate limit, cold start at 3 limits",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "jobs": sizes.jobs,
            "R": sizes.rate,
            "burst": sizes.burst,
            "latency_ms": sizes.latency_ms,
            "concurrency": CONCURRENCY,
            "retry_interval_s": sizes.interval,
            "ideal_s": ideal,
            "cold_start_R": [each.rate for each in sizes_list],
            "shallow_R": [each.rate for each in shallow_list],
            "shallow_burst": [each.burst for each in shallow_list],
            "work_s": WORK_S,
        },
        tables=[
            Table(
                "quota",
                f"{sizes.jobs:,} jobs, R = {sizes.rate:g}/s (burst {sizes.burst:g}), "
                f"mock latency {sizes.latency_ms:g} ms, ideal {ideal:.0f} s",
                COLUMNS,
                rows,
                "goodput = jobs finished / time from the first to the last request the mock "
                "saw; failed = jobs given up without a terminal status; calls and throttles "
                "counted by the mock.",
            ),
            cold_table,
            _shallow_table(shallow_list, shallow),
        ],
        targets=targets,
        headline=[
            Headline(f"S2 goodput / R (R = {sizes.rate:g}/s)", cells("goodput_vs_rate", ".2f")),
            Headline("S2 calls throttled", cells("throttled_share", ".1%")),
            Headline(f"S2 jobs failed (of {sizes.jobs:,})", cells("failed", ",.0f")),
        ],
        plots=[
            Plot("quota", "throttled_share", "share of calls throttled (lower is better)"),
            Plot("quota", "failed", "jobs failed (lower is better)"),
        ],
        notes=[
            "Contenders 1 and 3 give a job up when a describe still fails after botocore's "
            "legacy retries (5 attempts), as the SageMaker SDK's wait loop and an Airflow "
            "trigger's waiter do; 2 retries it in the next sweep; 4 catches and retries.",
            *cold_notes,
        ],
        run={"repeats": repeats},
    )
