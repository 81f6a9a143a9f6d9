"""Measuring: wall and CPU time of a span, a process's CPU and memory, robust statistics,
event-loop lag."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "FullCollections",
    "LagMeter",
    "LagProbe",
    "Meter",
    "Span",
    "cpu_seconds",
    "median",
    "medians",
    "percentile",
    "ratio",
    "rss_mib",
]


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) process ``pid`` used so far; this process's by default.

    Another process's comes from ``/proc/PID/stat`` (Linux); NaN where that is missing.
    """
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        # Fields 14 and 15 of proc(5) (utime, stime); index from after the command name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return math.nan


def rss_mib(pid: int | None = None) -> float:
    """Resident set size of process ``pid`` in MiB, now; this process's by default.

    From ``/proc/PID/statm`` (Linux). Elsewhere: this process's peak (``getrusage``),
    NaN for another process.
    """
    try:
        with open(f"/proc/{pid or 'self'}/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        if pid is not None:
            return math.nan
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 if sys.platform != "darwin" else peak / 2**20


@dataclass(frozen=True, slots=True)
class Span:
    """What one measured span cost.

    Attributes:
        wall: elapsed seconds (``perf_counter``).
        cpu: CPU seconds of this process, all threads (``process_time``).
        mock_cpu: CPU seconds the mock endpoint's process spent meanwhile.
    """

    wall: float
    cpu: float
    mock_cpu: float

    @property
    def mock_busy(self) -> float:
        """Fraction of one core the mock used: near 1.0 means the mock was the bottleneck."""
        return self.mock_cpu / self.wall if self.wall > 0 else 0.0


class Meter:
    """Start/stop around the measured part of a run (setup and warm-up stay outside).

    Args:
        mock_cpu: returns the mock process's CPU seconds so far (0 if there is no mock).
    """

    __slots__ = ("_mock_cpu", "_start", "span")

    def __init__(self, mock_cpu: Callable[[], float] = lambda: 0.0) -> None:
        self._mock_cpu = mock_cpu
        self._start: tuple[float, float, float] | None = None
        self.span: Span | None = None

    def start(self) -> None:
        """Begin the measured span."""
        self._start = (time.perf_counter(), time.process_time(), self._mock_cpu())

    def stop(self) -> Span:
        """End the measured span and return it."""
        wall, cpu, mock = time.perf_counter(), time.process_time(), self._mock_cpu()
        if self._start is None:
            raise RuntimeError("Meter.stop() before Meter.start()")
        wall0, cpu0, mock0 = self._start
        self.span = Span(wall - wall0, cpu - cpu0, mock - mock0)
        return self.span

    def __enter__(self) -> Meter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def median(values: Iterable[float]) -> float:
    """The median, ignoring NaNs (NaN when nothing is left)."""
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0 or NaN."""
    if not denominator or math.isnan(denominator):
        return math.nan
    return numerator / denominator


class LagProbe:
    """A ticker task measuring event-loop lag: how late each short sleep wakes up.

    A callback that holds the loop for 40 ms makes the next tick ~40 ms late, so the
    worst lag is the longest time the loop was unavailable to other tasks.

    Example::

        async with LagProbe() as probe:
            ...                                   # the work under test
            probe.reset()                         # start a fresh window
            ...
            await probe.settle()                  # count a block that just ended
        print(probe.worst, probe.p99)

    Args:
        interval: seconds each tick sleeps.

    Attributes:
        lags: each tick's lag in seconds, since the last :meth:`reset`.
        woke: the loop time each of those ticks woke up.
        due: the loop time each of those ticks was due (the lag is ``woke - due``).
        cpu: the loop thread's CPU time (``time.thread_time()``) as each tick woke up.
            Between two ticks it is what the loop's own work took: a lag much longer
            than that was the machine running another process (a noisy neighbour), not
            the loop being held.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self.woke: list[float] = []
        self.due: list[float] = []
        self.cpu: list[float] = []
        self._cpu_before = time.thread_time()
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []

    async def _tick(self, due: float) -> None:
        # The first tick is due when the probe started, so a block right after start()
        # (before the task first ran) is counted too.
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self.lags.append(max(0.0, now - due))
            self.woke.append(now)
            self.due.append(due)
            self.cpu.append(time.thread_time())
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            due = now + self.interval
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Start ticking on the running loop (what ``async with`` does; callable from a
        callback or any synchronous code on the loop)."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._tick(loop.time()))

    def stop(self) -> None:
        """Stop ticking; the lags seen so far are kept."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    def reset(self) -> None:
        """Forget the lags seen so far."""
        # The first tick after a reset was due before it: its CPU counts from the tick before.
        self._cpu_before = self.cpu[-1] if self.cpu else time.thread_time()
        self.lags = []
        self.woke = []
        self.due = []
        self.cpu = []

    async def settle(self) -> None:
        """Wait for the next tick, so that a block which has just ended is counted.

        Without it, a window read right after its last step misses that step's lag:
        the ticker has not woken up yet to see it.
        """
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def cpu_since(self, i: int) -> float:
        """The loop thread's CPU seconds from the tick before tick ``i`` to tick ``i``."""
        return self.cpu[i] - (self.cpu[i - 1] if i > 0 else self._cpu_before)

    @property
    def worst(self) -> float:
        """The worst lag in seconds (0 if no tick completed)."""
        return max(self.lags, default=0.0)

    @property
    def p99(self) -> float:
        """The 99th-percentile lag in seconds."""
        return percentile(self.lags, 99) if self.lags else 0.0

    async def __aenter__(self) -> LagProbe:
        self.start()
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class FullCollections:
    """Python's full (generation-2) garbage collections in this process, timed.

    A full collection walks every tracked object of the process, in whichever thread
    triggered it, holding the GIL (and so the event loop) meanwhile: its length is set by
    the whole heap (imported modules, botocore's service model, the host's objects), not
    by the work that happened to trigger it. Recording when each ran lets a loop-lag
    probe tell the ticks a full collection held apart from the others. The times are
    ``time.monotonic()``, the asyncio loop's clock.
    """

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.monotonic()
        else:
            self.spans.append((self._started, time.monotonic()))

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)

    def within(self, start: float, end: float) -> list[tuple[float, float]]:
        """The collections that overlapped ``[start, end]``."""
        return [(a, b) for a, b in self.spans if a < end and b > start]


class LagMeter(Meter):
    """A :class:`Meter` whose span also runs a :class:`LagProbe` on the running loop.

    For code that takes a ``Meter`` and enters it inside its own coroutine (the
    watchers of :mod:`benchmarks.watchers`): the lag of that code's loop over the span.
    The probe's first tick is due at :meth:`start`, so a block right after it counts.

    Args:
        mock_cpu: as for :class:`Meter`.
        interval: the probe's tick, in seconds.
    """

    __slots__ = ("probe",)

    def __init__(
        self, mock_cpu: Callable[[], float] = lambda: 0.0, interval: float = 0.001
    ) -> None:
        super().__init__(mock_cpu)
        self.probe = LagProbe(interval)

    def start(self) -> None:
        """Begin the span and the probe (call it on the loop)."""
        self.probe.reset()
        self.probe.start()
        super().start()

    def stop(self) -> Span:
        """End the span and the probe (the probe's lags stay readable)."""
        span = super().stop()
        self.probe.stop()
        return span


def medians(samples: Sequence[dict[str, float]]) -> dict[str, float]:
    """The per-key median of several repeats' values."""
    keys: dict[str, None] = {}
    for sample in samples:
        keys.update(dict.fromkeys(sample))
    return {key: median(s.get(key, math.nan) for s in samples) for key in keys}
