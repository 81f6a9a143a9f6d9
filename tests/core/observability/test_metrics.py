"""OpenTelemetry metrics, read with the SDK's in-memory reader, against the mock's ground truth."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from asyncoptjob import Poller, StatusChange, SweepPolicy
from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.helpers import DESCRIBE, FOREVER, quick_retry_opts, wait_until

LIST = "ListOptimizationJobs"
#: Slow enough that a job is first seen before it ends, so later changes are observed.
LIFE = Lifecycle(starting=(0.3, 0.5), in_progress=(0.3, 0.8), stopping=(0.05, 0.1))


def read(reader: InMemoryMetricReader) -> dict[str, dict[frozenset[tuple[str, Any]], Any]]:
    """``{instrument: {attributes: value}}``; a histogram point's value is the point itself."""
    found: dict[str, dict[frozenset[tuple[str, Any]], Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    key = frozenset((point.attributes or {}).items())
                    points[key] = point if isinstance(point, HistogramDataPoint) else point.value
    return found


def requests(metrics: dict[str, Any], operation: str, outcome: str) -> int:
    value: int = metrics["asyncoptjob.requests"][
        frozenset({("operation", operation), ("outcome", outcome)})
    ]
    return value


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> MeterProvider:
    return MeterProvider(metric_readers=[reader])


async def test_counts_equal_the_mocks_ground_truth_under_throttling(
    aio_session: Any, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    async with MockSageMaker(seed=7, lifecycle=LIFE) as mock:
        events: list[StatusChange] = []
        options = quick_retry_opts(mock, aio_session, meter_provider=provider, strategy="describe")
        async with Poller(**options) as poller:
            # Created once the Poller is open (opening is slow on a busy machine): each
            # job is first seen before it ends, so its later changes are observed.
            names = mock.seed_jobs(8, outcome="COMPLETED")
            # Every describe throttled until a few were, then a share of them.
            mock.set_faults(throttle_rate=1.0)
            async with poller.watch(names) as watched:
                await wait_until(
                    lambda: mock.stats().count(DESCRIBE, "ThrottlingException") >= 3,
                    what="throttles",
                )
                mock.set_faults(throttle_rate=0.3)
                async for event in watched:
                    assert isinstance(event, StatusChange)
                    events.append(event)
            while_open = read(reader)
            stats = poller.stats
        truth = mock.stats()
    after_close = read(reader)
    throttled = truth.count(DESCRIBE, "ThrottlingException")
    assert throttled >= 3
    for metrics in (while_open, after_close):
        assert requests(metrics, DESCRIBE, "ok") == truth.count(DESCRIBE, "ok")
        assert requests(metrics, DESCRIBE, "throttled") == throttled
        assert requests(metrics, DESCRIBE, "error") == 0
        assert requests(metrics, LIST, "ok") == 0
        retries = metrics["asyncoptjob.retries"]
        assert retries[frozenset({("operation", DESCRIBE)})] == stats.retries > 0
        delivered = Counter(event.status.value for event in events)
        assert {
            dict(key)["status"]: value for key, value in metrics["asyncoptjob.events"].items()
        } == delivered
        # Every change after a job's first observation, once (one subscriber per job here).
        changes = sum(1 for event in events if event.previous_status is not None)
        lags = metrics["asyncoptjob.detection_lag"]
        assert sum(point.count for point in lags.values()) == changes > 0
        assert {dict(key)["status"] for key in lags} <= {"INPROGRESS", "COMPLETED"}
        assert all(point.min >= 0 for point in lags.values())
    assert while_open["asyncoptjob.jobs.active"][frozenset()] == 0
    # After a throttle the adaptive limiter has a rate to report.
    assert while_open["asyncoptjob.rate_limit"][frozenset({("operation", DESCRIBE)})] > 0
    # A closed Poller's jobs leave the gauges; its counts stay in the counters.
    assert "asyncoptjob.rate_limit" not in after_close or not after_close["asyncoptjob.rate_limit"]


async def test_the_lag_is_recorded_once_per_change_not_per_subscriber(
    aio_session: Any, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    async with MockSageMaker(seed=142, lifecycle=LIFE) as mock:
        options = quick_retry_opts(mock, aio_session, meter_provider=provider)
        async with Poller(**options) as poller:
            (name,) = mock.seed_jobs(1, outcome="COMPLETED")
            first = poller.watch(name)
            second = poller.watch(name)
            async with first as a, second as b:
                seen_a = [event async for event in a]
                seen_b = [event async for event in b]
    assert [e.status for e in seen_a] == [e.status for e in seen_b]
    changes = sum(1 for event in seen_a if event.previous_status is not None)
    metrics = read(reader)
    lags = metrics["asyncoptjob.detection_lag"]
    assert sum(point.count for point in lags.values()) == changes
    # Events are counted per delivery: both subscribers got every one.
    assert sum(metrics["asyncoptjob.events"].values()) == len(seen_a) + len(seen_b)


async def test_counters_never_go_down_across_pollers(
    aio_session: Any, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    async with MockSageMaker(seed=143, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(3)
        totals = []
        for _ in range(2):
            options = quick_retry_opts(mock, aio_session, meter_provider=provider)
            async with Poller(**options) as poller, poller.watch(names) as events:
                async for _event in events:
                    if poller.stats.jobs_active == len(names) and poller.health().ready:
                        break
                metrics = read(reader)
                assert metrics["asyncoptjob.jobs.active"][frozenset()] == len(names)
            totals.append(requests(read(reader), DESCRIBE, "ok"))
        assert totals[1] > totals[0] > 0
        # A describe on the wire when a Poller closes is answered (and counted) by the
        # mock, never by the Poller: at most one per job.
        assert 0 <= mock.stats().count(DESCRIBE, "ok") - totals[1] <= 2 * len(names)
        assert read(reader)["asyncoptjob.jobs.active"][frozenset()] == 0


async def test_list_sweeps_are_counted_under_their_own_operation(
    aio_session: Any, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    async with MockSageMaker(seed=144, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(2)
        sweep = SweepPolicy(interval=0.05, max_rate=50)
        options = quick_retry_opts(
            mock, aio_session, meter_provider=provider, strategy="sweep", sweep=sweep
        )
        async with Poller(**options) as poller, poller.watch(names):
            await wait_until(lambda: poller.stats.sweeps >= 2, what="two sweeps")
            metrics = read(reader)
            assert requests(metrics, LIST, "ok") >= 2
            rates = metrics["asyncoptjob.rate_limit"]
            assert rates[frozenset({("operation", LIST)})] == pytest.approx(50)


def test_a_meter_provider_must_be_one() -> None:
    with pytest.raises(ValueError, match="meter_provider must be an OpenTelemetry MeterProvider"):
        Poller(meter_provider=object())  # type: ignore[typeddict-item]
