"""OpenTelemetry metrics: the hubs' own counters, read when the application collects.

============================  =================  ======================  ===========================
instrument                    kind               attributes              meaning
============================  =================  ======================  ===========================
``asyncoptjob.requests``      counter            operation, outcome      every call sent
``asyncoptjob.retries``       counter            operation               retries scheduled
``asyncoptjob.events``        counter            status                  status changes delivered
``asyncoptjob.jobs.active``   up-down counter                            jobs being watched
``asyncoptjob.rate_limit``    gauge              operation               allowed requests/s now
``asyncoptjob.detection_lag`` histogram (s)      status                  observed_at minus the
                                                                         description's
                                                                         LastModifiedTime
============================  =================  ======================  ===========================

All but the histogram are *observable* instruments: their callbacks read the
:class:`~._stats.Statistics` each hub and its pipeline keep anyway (``requests``,
``delivered``...) at collection time, so the poll loop pays nothing for them. The
histogram listens to the statistics' changes: once per change a describe observed
after a job's first observation (once per job, not per subscriber; a change another
fleet process observed is that process's).

Counters are per process: the totals of the hubs open now plus those of the hubs
already closed (folded in when a hub closes, so a counter never goes down). Only
``opentelemetry-api`` is used, and only if it is installed: without an SDK installed
by the application it is a no-op, and without the API there is nothing to collect.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._operations import OPERATIONS, OUTCOMES

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Histogram, MeterProvider, Observation

    from ._events import Description, JobStatus
    from ._stats import Statistics

__all__ = ["LAG_BUCKETS", "METER_NAME", "Rates", "register", "warm"]

#: The rate budgets' current rates by operation (None: not limited).
Rates = Callable[[], Mapping[str, "float | None"]]

#: The instrumentation scope of every instrument.
METER_NAME = "asyncoptjob"
#: Histogram bucket bounds of ``detection_lag`` in seconds: around typical poll intervals.
LAG_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class _Instruments:
    """The instruments of one meter provider and the statistics they read."""

    def __init__(self, provider: MeterProvider | None) -> None:
        from opentelemetry import metrics

        meter = metrics.get_meter(METER_NAME, _library_version(), meter_provider=provider)
        self._lock = threading.Lock()
        self._hubs: list[tuple[Statistics, Rates]] = []
        # Totals of closed hubs: a counter must never go down when a Poller closes.
        self._requests = {op: dict.fromkeys(OUTCOMES, 0) for op in OPERATIONS}
        self._retries = dict.fromkeys(OPERATIONS, 0)
        self._events: dict[str, int] = {}
        self._observation = metrics.Observation
        observables = (
            (
                meter.create_observable_counter,
                "asyncoptjob.requests",
                self._observe_requests,
                "{request}",
                "Calls sent to SageMaker, by operation and outcome.",
            ),
            (
                meter.create_observable_counter,
                "asyncoptjob.retries",
                self._observe_retries,
                "{retry}",
                "Retries scheduled after a throttled or transient failure.",
            ),
            (
                meter.create_observable_counter,
                "asyncoptjob.events",
                self._observe_events,
                "{event}",
                "Status changes delivered to subscribers, by status.",
            ),
            (
                meter.create_observable_up_down_counter,
                "asyncoptjob.jobs.active",
                self._observe_jobs,
                "{job}",
                "Jobs being watched.",
            ),
            (
                meter.create_observable_gauge,
                "asyncoptjob.rate_limit",
                self._observe_rate,
                "{request}/s",
                "Requests per second the rate budget allows now, by operation.",
            ),
        )
        for create, name, callback, unit, description in observables:
            create(name, [callback], unit=unit, description=description)
        self.lag: Histogram = meter.create_histogram(
            "asyncoptjob.detection_lag",
            unit="s",
            description="From a job's LastModifiedTime to the observation of its change.",
            explicit_bucket_boundaries_advisory=LAG_BUCKETS,
        )

    def add(self, stats: Statistics, rates: Rates) -> Callable[[], None]:
        entry = (stats, rates)
        with self._lock:
            self._hubs.append(entry)
        stop_listening = stats.listen(self.record_change)

        def retire() -> None:
            stop_listening()
            self._retire(entry)

        return retire

    def _retire(self, entry: tuple[Statistics, Rates]) -> None:
        with self._lock:
            if entry not in self._hubs:
                return
            self._hubs.remove(entry)
            stats = entry[0]
            for operation, counts in stats.requests.items():
                for outcome, count in counts.items():
                    self._requests[operation][outcome] += count
            for operation, count in stats.retried.items():
                self._retries[operation] += count
            for status, count in stats.delivered.copy().items():
                self._events[status] = self._events.get(status, 0) + count

    def record_change(
        self, status: JobStatus, description: Description, observed_at: datetime
    ) -> None:
        """Record the detection lag of one observed change (a statistics listener)."""
        modified: Any = description.get("LastModifiedTime")
        if not isinstance(modified, datetime):
            return
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=timezone.utc)
        lag = (observed_at - modified).total_seconds()
        self.lag.record(max(lag, 0.0), {"status": status.value})

    # -- collection (may run on the exporter's thread) --------------------------------

    def _live(self) -> tuple[tuple[Statistics, Rates], ...]:
        with self._lock:
            return tuple(self._hubs)

    def _observe_requests(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = {op: dict(counts) for op, counts in self._requests.items()}
            hubs = tuple(self._hubs)
        for stats, _ in hubs:
            for operation, counts in stats.requests.items():
                for outcome, count in counts.items():
                    totals[operation][outcome] += count
        observation = self._observation
        return [
            observation(count, {"operation": operation, "outcome": outcome})
            for operation, counts in totals.items()
            for outcome, count in counts.items()
        ]

    def _observe_retries(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = dict(self._retries)
            hubs = tuple(self._hubs)
        for stats, _ in hubs:
            for operation, count in stats.retried.items():
                totals[operation] += count
        observation = self._observation
        return [observation(count, {"operation": op}) for op, count in totals.items()]

    def _observe_events(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = dict(self._events)
            hubs = tuple(self._hubs)
        for stats, _ in hubs:
            # A C-level copy: the event loop may add a status meanwhile.
            for status, count in stats.delivered.copy().items():
                totals[status] = totals.get(status, 0) + count
        observation = self._observation
        return [observation(count, {"status": status}) for status, count in totals.items()]

    def _observe_jobs(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [self._observation(sum(stats.jobs_active for stats, _ in self._live()))]

    def _observe_rate(self, _options: CallbackOptions) -> Iterable[Observation]:
        rates: dict[str, float] = {}
        for _, current in self._live():
            for operation, rate in current().items():
                # None: not limited (no max_rate, and no throttle seen yet).
                if rate is not None:
                    rates[operation] = rates.get(operation, 0.0) + rate
        observation = self._observation
        return [observation(rate, {"operation": op}) for op, rate in rates.items()]


_by_provider: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()
_global: list[_Instruments] = []
_create_lock = threading.Lock()


@functools.cache
def _library_version() -> str:
    from importlib.metadata import version

    return version("asyncoptjob")


def warm() -> None:
    """Import what the first :func:`register` needs and read the library's version
    (reading files, about 10 ms): meant for a worker thread, before the loop needs it."""
    if _otel_installed():
        _library_version()


def _otel_installed() -> bool:
    try:
        import opentelemetry.metrics  # noqa: F401
    except ImportError:
        return False
    return True


def register(
    stats: Statistics, rates: Rates, meter_provider: MeterProvider | None = None
) -> Callable[[], None]:
    """Report a hub's ``stats`` and ``rates`` through the instruments of ``meter_provider``
    (None: the global one).

    Instruments are created once per provider (the first time a hub registers); the
    global provider's are proxies that start reporting once the application installs
    an SDK, whenever that happens.

    Returns:
        A function that retires the hub: its counts stay in the counters' totals, its
        jobs leave the gauges. Call it once the hub is closed.

    Raises:
        ImportError: ``meter_provider`` was given but ``opentelemetry-api`` is missing.
    """
    if meter_provider is None and not _otel_installed():
        return lambda: None
    with _create_lock:
        if meter_provider is None:
            if not _global:
                _global.append(_Instruments(None))
            instruments = _global[0]
        else:
            found = _by_provider.get(meter_provider)
            if found is None:
                found = _by_provider[meter_provider] = _Instruments(meter_provider)
            instruments = found
    return instruments.add(stats, rates)
