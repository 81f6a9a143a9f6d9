"""S9 metrics overhead: client CPU per describe with an OpenTelemetry SDK installed vs none.

asyncoptjob alone, at saturation exactly as in S1 (mock at 0 ms, 16 describes in flight,
1 ms poll interval, logging left unconfigured), twice per repeat in alternating order:
**none** (no SDK: the library's instruments are the API's no-ops) and **SDK** (an
OpenTelemetry SDK ``MeterProvider`` given as ``meter_provider``, read by an in-memory
reader every second: a scrape far more often than Prometheus' usual 15-60 s, so
collection costs are, if anything, overstated). The counters are observable instruments
read at collection, so the poll loop should not pay for the SDK.
"""

from __future__ import annotations

from functools import partial

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from ..environment import logging_left_unconfigured
from ..measure import Meter, medians, ratio
from ..registry import RunContext, scenario
from ..report import Column, Row, ScenarioResult, Table, Target
from .s1_overhead import CONCURRENCY, FOREVER, FULL, QUICK, Sizes, asyncoptjob

VARIANTS = {
    "none": "asyncoptjob, no OpenTelemetry SDK",
    "sdk": "asyncoptjob + OpenTelemetry SDK (collected every 1 s)",
}
COLUMNS = [
    Column("describes_per_s", "describes/s", ",.0f"),
    Column("cpu_ms", "client CPU ms/describe", ".3f"),
    Column("cpu_vs_none", "CPU/describe x none", ".3f"),
    Column("throughput_vs_none", "throughput x none", ".3f"),
]
#: The issue's target: CPU per poll with an SDK within 5 % of none.
TOLERANCE = 0.05


def _measure(url: str, names: list[str], sizes: Sizes, variant: str) -> dict[str, float]:
    meter = Meter()
    if variant == "sdk":
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        run = partial(asyncoptjob, meter_provider=provider, collect=reader.get_metrics_data)
    else:
        provider = None
        run = asyncoptjob
    try:
        outcome = run(url, names, sizes, meter)
    finally:
        if provider is not None:
            provider.shutdown()
    span = meter.span
    assert span is not None
    return {
        "describes": outcome.ok,
        "describes_per_s": outcome.ok / span.wall,
        "cpu_ms": 1000 * span.cpu / max(outcome.ok, 1),
        "errors": outcome.errors,
    }


@scenario("s9", "S9 metrics overhead: CPU per describe with an OpenTelemetry SDK vs none")
def run(ctx: RunContext) -> ScenarioResult:
    sizes = QUICK if ctx.quick else FULL
    # Many short repeats, alternating which variant goes first: the median of the
    # within-repeat ratios shrugs off other work on a shared machine.
    repeats = ctx.repeats_or(9)
    samples: dict[str, list[dict[str, float]]] = {key: [] for key in VARIANTS}
    with ctx.mock() as mock, logging_left_unconfigured():
        names = mock.seed(sizes.jobs, prefix="s9", lifecycle=FOREVER)
        for repeat in range(repeats):
            order = list(VARIANTS) if repeat % 2 == 0 else list(reversed(VARIANTS))
            values = {key: _measure(mock.url, names, sizes, key) for key in order}
            none = values["none"]
            for key, value in values.items():
                value["cpu_vs_none"] = ratio(value["cpu_ms"], none["cpu_ms"])
                value["throughput_vs_none"] = ratio(
                    value["describes_per_s"], none["describes_per_s"]
                )
                samples[key].append(value)
                ctx.log(
                    f"  repeat {repeat + 1}/{repeats} {key:<5} {value['describes_per_s']:8.0f}/s "
                    f"{value['cpu_ms']:.3f} ms CPU/describe"
                )
    rows = [
        Row("asyncoptjob", label, dict(medians(samples[key])), repeats=samples[key])
        for key, label in VARIANTS.items()
    ]
    sdk = medians(samples["sdk"])
    spread = [r["cpu_vs_none"] for r in samples["sdk"]]
    return ScenarioResult(
        key="s9",
        name="s9_metrics",
        title="S9 metrics overhead: CPU per describe with an OpenTelemetry SDK vs none",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            "concurrency": CONCURRENCY,
            "jobs": sizes.jobs,
            "describes": sizes.describes,
            "warmup": sizes.warmup,
            "latency_ms": 0,
            "collect_every_s": 1.0,
            "logging": "unconfigured",
        },
        tables=[
            Table(
                "sdk_vs_none",
                f"Mock latency 0 ms, {CONCURRENCY} in flight, {sizes.describes:,} describes "
                "measured",
                COLUMNS,
                rows,
                "`x none`: ratio to the no-SDK run of the same repeat, median.",
            )
        ],
        targets=[
            Target(
                "s9_sdk_cpu",
                "S9: client CPU per describe with an OpenTelemetry SDK within 5% of none",
                f"{sdk['cpu_vs_none']:.3f} x",
                abs(sdk["cpu_vs_none"] - 1.0) < TOLERANCE,
                f"median of {len(spread)} repeats (range {min(spread):.3f}-{max(spread):.3f}); "
                f"throughput {sdk['throughput_vs_none']:.3f} x none",
            )
        ],
        run={"repeats": repeats},
    )
