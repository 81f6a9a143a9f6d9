"""Helpers shared by the whole test suite (fixtures live in ``conftest.py``).

* constants and clients: the repository root, region, dummy credentials, a boto3 client;
* fast lifecycles and options pointing the library at the mock endpoint;
* small fakes: a virtual clock for the limiter tests, a ``DueQueue`` entry, a rate budget
  that notes what it was told, a transport that records every call a real one makes;
* the mock's ground truth for the testing kit's event checks (``check_against_mock``);
* the reliability checks: request rates, leaked tasks and connections, fault windows.

The reliability invariants, checked against the mock endpoint's ground truth:

* per job, events in order, no status repeated, exactly one terminal outcome, last
  (``asyncoptjob.testing``'s ``check_events``);
* the status a job really ended in (the mock's transitions) is its final event's status,
  and the statuses a watcher saw are the job's true statuses, in the true order;
* the request rate the endpoint saw never exceeded ``max_rate`` plus the burst;
* after the watch: no pending task, no open connection, no asyncio error report.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from botocore.config import Config

from asyncoptjob import (
    Event,
    JobErrorEvent,
    PollPolicy,
    RateBudget,
    RateLimiterStatistics,
    RetryPolicy,
)
from asyncoptjob._ratelimit import MIN_BURST
from asyncoptjob.mock import Lifecycle, MockSageMaker
from asyncoptjob.testing import (
    FakeRequest,
    FakeTransport,
    check_against_truth,
    check_events,
)

#: The repository's root folder (README, examples, benchmarks).
ROOT = Path(__file__).resolve().parents[1]

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: botocore's own retries off, so every error reaches the test (or the library) once.
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@contextmanager
def sync_sagemaker_client(url: str) -> Iterator[Any]:
    """A synchronous boto3 SageMaker client to ``url``: dummy credentials, no retries."""
    import boto3  # not at module level: the fleet worker processes import this module too

    client = boto3.session.Session().client(
        "sagemaker",
        region_name=REGION,
        endpoint_url=url,
        config=NO_RETRIES,
        **DUMMY_CREDENTIALS,
    )
    try:
        yield client
    finally:
        client.close()


# Sub-second lifecycles and polls: tests finish quickly but still poll several times.
FAST = Lifecycle(starting=(0.05, 0.15), in_progress=(0.1, 0.4), stopping=(0.05, 0.1))
FAST_POLL = PollPolicy(interval=0.03, max_interval=0.1, jitter=0.2)
FOREVER = Lifecycle(starting=(0.01, 0.01), in_progress=(float("inf"), float("inf")))


def opts(mock: MockSageMaker, session: Any, **extra: Any) -> dict[str, Any]:
    """Options pointing the library at ``mock`` with fast polls; ``extra`` on top.

    No slow start (``initial_rate=None``): the tests' sub-second lifecycles need their
    fast polls from the first second; the cold start has tests of its own.
    """
    return {
        "endpoint_url": mock.url,
        "session": session,
        "region_name": "us-east-1",
        "poll_interval": FAST_POLL,
        "initial_rate": None,
        **extra,
    }


class QueueItem:
    """A minimal key for ``DueQueue``, hashed by identity (the hub queues job names)."""

    __slots__ = ("name",)

    def __init__(self, name: int) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"QueueItem({self.name})"


class RecordingBudget:
    """A rate budget of one's own: a real one behind it, and what the library asked and told.

    ``acquired`` counts the tokens taken; ``successes`` and ``throttles`` list the send
    time reported with each answer, in order.
    """

    def __init__(self, inner: RateBudget) -> None:
        self.inner = inner
        self.acquired = 0
        self.successes: list[float | None] = []
        self.throttles: list[float | None] = []

    @property
    def rate(self) -> float | None:
        return self.inner.rate

    def statistics(self) -> RateLimiterStatistics:
        return self.inner.statistics()

    async def acquire(self) -> None:
        self.acquired += 1
        await self.inner.acquire()

    def on_success(self, sent_at: float | None = None) -> None:
        self.successes.append(sent_at)
        self.inner.on_success(sent_at)

    def on_throttle(self, sent_at: float | None = None) -> None:
        self.throttles.append(sent_at)
        self.inner.on_throttle(sent_at)


async def _pending_tasks(
    keep: Callable[[asyncio.Task[Any]], bool], max_rounds: int = 200
) -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    others: set[asyncio.Task[Any]] = set()
    for _ in range(max_rounds):
        others = {t for t in asyncio.all_tasks() if t is not current and not t.done() and keep(t)}
        if not others:
            break
        await asyncio.sleep(0)
    return others


async def settle_tasks(max_rounds: int = 200) -> set[asyncio.Task[Any]]:
    """Let finalizers run; return the tasks other than the current one still pending."""
    return await _pending_tasks(lambda _: True, max_rounds)


# -- reliability: rates, ground truth, leaks, fault windows --------------------------

DESCRIBE = "DescribeOptimizationJob"
LIST = "ListOptimizationJobs"
#: Fast retries that still give up eventually (never within a scenario's fault window).
QUICK_RETRY = RetryPolicy(initial_wait=0.01, max_wait=0.1, max_elapsed=30)
#: Seconds windows the endpoint's request rate is checked over.
RATE_WINDOWS = (0.25, 0.5, 1.0, 2.0)
#: How much sending and arriving may differ (seconds): see ``check_rate``. Measured on
#: two busy cores: the first requests' connection set-up alone bunches arrivals by up to
#: 60 ms (and a stalled process by more) while the library's own send times stay within
#: ``max_rate * w + burst``.
ARRIVAL_JITTER = 0.2


def quick_retry_opts(mock: MockSageMaker, session: Any, **extra: Any) -> dict[str, Any]:
    """``opts`` plus fast retries (``QUICK_RETRY``): for scenarios with injected faults."""
    return opts(mock, session, **{"retry": QUICK_RETRY, **extra})


def limiter_burst(max_rate: float) -> float:
    """The default bucket capacity of ``AdaptiveRateLimiter(max_rate=...)``."""
    return max(MIN_BURST, max_rate * 0.05)


def check_rate(mock: MockSageMaker, max_rate: float) -> dict[float, int]:
    """Assert no window saw more requests (any outcome) than ``max_rate`` plus the burst.

    The limiter spaces requests when it *sends* them; the endpoint stamps them when
    its handler *runs*. Connection set-up (a dropped connection is replaced, the first
    requests open the pool) and the event loop, shared with the in-process endpoint,
    can bunch arrivals that left evenly spaced, by up to ``ARRIVAL_JITTER`` seconds.
    Without the limiter the same scenarios send hundreds of requests per second.
    ``check_send_rate`` checks the strict bound on the library's own send times.
    """
    seen = {w: mock.max_requests_in_window(DESCRIBE, w, outcome=None) for w in RATE_WINDOWS}
    for window, count in seen.items():
        bound = max_rate * (window + ARRIVAL_JITTER) + limiter_burst(max_rate) + 1
        assert count <= bound, f"{count} requests within {window}s > {bound} (max_rate {max_rate})"
    return seen


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most of ``times`` within any closed interval of ``window`` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def check_send_rate(sent: Sequence[float], max_rate: float) -> None:
    """Assert the library *sent* at most ``max_rate * w + burst`` requests in any ``w``."""
    for window in RATE_WINDOWS:
        count = max_in_window(sent, window)
        bound = max_rate * window + limiter_burst(max_rate) + 1e-6
        assert count <= bound, f"sent {count} within {window}s > {bound} (max_rate {max_rate})"


def describer_changes(
    sent_by: Mapping[str, Mapping[str, Sequence[float]]],
) -> list[tuple[str, str, str, float]]:
    """Every change of the process describing a job: ``(job, from, to, seconds between)``.

    Args:
        sent_by: per process, per job, the send times of its describes (one clock).
    """
    sends = sorted(
        (at, job, process)
        for process, jobs in sent_by.items()
        for job, times in jobs.items()
        for at in times
    )
    last: dict[str, tuple[float, str]] = {}
    changes = []
    for at, job, process in sends:
        before = last.get(job)
        if before is not None and before[1] != process:
            changes.append((job, before[1], process, at - before[0]))
        last[job] = (at, process)
    return changes


def check_handovers(
    sent_by: Mapping[str, Mapping[str, Sequence[float]]], policy: PollPolicy
) -> list[tuple[str, str, str, float]]:
    """Assert a job's lease changing hands cost no extra describe; returns the changes.

    Whichever process describes a job next, it does so no sooner after the last describe
    than the poll policy allows (the shortest jittered interval): a new lease holder
    goes on from the fleet's last describe of the job instead of describing it at once.
    A lower bound only, so a slow machine (later describes) can never break it.
    """
    shortest = policy.interval * (1 - policy.jitter)
    changes = describer_changes(sent_by)
    early = [change for change in changes if change[3] < shortest]
    timelines = {
        job: sorted(
            (round(at, 4), process) for process, jobs in sent_by.items() for at in jobs.get(job, ())
        )
        for job in {change[0] for change in early}
    }
    assert not early, (
        f"described again within {shortest:g} s by a new lease holder: {early}; "
        f"each job's describes (send time, process): {timelines}"
    )
    return changes


async def _forward(inner: Any, request: FakeRequest) -> Any:
    if request.operation == DESCRIBE:
        return await inner.describe(request.job_name)
    return await inner.list_jobs(**request.params)


class RecordingTransport(FakeTransport):
    """A real transport behind the testing kit's ``FakeTransport``: every call recorded.

    ``requests`` (``FakeTransport``'s) lists every call, and ``sent[i]`` is when
    ``requests[i]`` left, read before anything is awaited (``time.monotonic()``: one
    clock for every process of the machine).
    """

    def __init__(self, inner: Any) -> None:
        super().__init__(partial(_forward, inner))
        self.sent: list[float] = []
        #: Describes per job (a test may clear it to count from a point on).
        self.describes: Counter[str] = Counter()

    async def describe(self, name: str) -> Any:
        self.sent.append(time.monotonic())
        self.describes[name] += 1
        return await super().describe(name)

    async def list_jobs(self, **params: Any) -> Any:
        self.sent.append(time.monotonic())
        return await super().list_jobs(**params)

    def sent_by_job(self) -> dict[str, list[float]]:
        """Each job's describe send times, in order."""
        by_job: dict[str, list[float]] = {}
        for at, request in zip(self.sent, self.requests, strict=True):
            if request.job_name is not None:
                by_job.setdefault(request.job_name, []).append(at)
        return by_job


def check_ground_truth(mock: MockSageMaker, by_job: Mapping[str, Sequence[Event]]) -> None:
    """Assert each job's events agree with ``mock``'s true transitions (``check_against_truth``).

    A job deleted from the endpoint has no truth left to compare with and is skipped.
    """
    truth = {
        name: [status for status, _ in items]
        for name, items in mock.transitions(list(by_job)).items()
    }
    check_against_truth({name: e for name, e in by_job.items() if name in truth}, truth)


def check_against_mock(
    mock: MockSageMaker, events: Sequence[Event], names: Iterable[str], *, errors_ok: bool = False
) -> dict[str, list[Event]]:
    """The per-job invariants plus the ground truth; no JobErrorEvent unless ``errors_ok``."""
    by_job = check_events(events, names)
    if not errors_ok:
        errors = [e for e in events if isinstance(e, JobErrorEvent)]
        assert not errors, errors
    check_ground_truth(mock, by_job)
    return by_job


async def wait_until(predicate: Any, *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate()`` until true (state that changes without an event to wait on).

    Raises:
        AssertionError: still false after ``timeout`` seconds (a hang guard, naming ``what``).
    """
    with anyio.move_on_after(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
        return
    raise AssertionError(f"still waiting for {what} after {timeout:g} s")


def _is_endpoint_task(task: asyncio.Task[Any]) -> bool:
    # The in-process mock's own request handlers (aiohttp's server side) may still be
    # finishing a slow answer the client gave up on: they are the endpoint's, not ours.
    return getattr(task.get_coro(), "__qualname__", "").startswith("RequestHandler.")


async def library_tasks(
    allowed: set[asyncio.Task[Any]] | frozenset[asyncio.Task[Any]] = frozenset(),
) -> set[asyncio.Task[Any]]:
    """Pending tasks once finalizers ran, but ``allowed`` ones, the endpoint's and our own."""
    gc.collect()
    return await _pending_tasks(lambda task: task not in allowed and not _is_endpoint_task(task))


async def check_no_leaks(mock: MockSageMaker | None = None) -> None:
    """No task left but the test's own and, if given, no connection left open to ``mock``."""
    leftover = await library_tasks()
    assert leftover == set(), leftover
    if mock is not None:
        # The server notices a closed connection one loop turn or a few later.
        await wait_until(lambda: mock.open_connections() == 0, what="connections closed")


@asynccontextmanager
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Collect what asyncio reports to its exception handler (never retrieved errors...)."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    reports: list[dict[str, Any]] = []

    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reports.append(context)

    loop.set_exception_handler(handler)
    try:
        yield reports
    finally:
        gc.collect()
        await asyncio.sleep(0)
        loop.set_exception_handler(previous)


class OpenMock(Protocol):
    """The reliability suite's ``checked_mock`` fixture: opens an endpoint checked at the end."""

    def __call__(
        self, *, max_rate: float | None = None, **options: Any
    ) -> Awaitable[MockSageMaker]:
        """Open ``MockSageMaker(**options)``; with ``max_rate``, check the rate it saw."""
        ...


async def fault_windows(
    mock: MockSageMaker,
    windows: Sequence[tuple[float, float, Mapping[str, Any]]],
    *,
    min_requests: int = 4,
) -> None:
    """Apply each ``(start, end, faults)`` window (seconds from now), then clear it.

    Windows run one after another in the order given; ``faults`` are set at ``start``
    and reset to their earlier values at ``end``, or later if fewer than
    ``min_requests`` describes reached the endpoint meanwhile (a stalled machine): a
    window stays open up to 2 s longer for them, so the scenario meets its faults.
    """
    clock = anyio.current_time
    origin = clock()
    for start, end, faults in windows:
        await anyio.sleep(max(0.0, origin + start - clock()))
        before = {name: getattr(mock.faults, name) for name in faults}
        opened_with = mock.stats().count(DESCRIBE)
        mock.set_faults(**faults)
        await anyio.sleep(max(0.0, origin + end - clock()))
        with anyio.move_on_after(2):
            while mock.stats().count(DESCRIBE) - opened_with < min_requests:
                await anyio.sleep(0.01)
        mock.set_faults(**before)
