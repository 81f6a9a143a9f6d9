"""Helpers shared by the core's tests: fast lifecycles, a fake clock, event invariants."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio.lowlevel
import boto3
from botocore.config import Config

from asyncoptjob import Event, JobError, JobStatus, PollPolicy, StatusChange
from asyncoptjob._scheduler import NOT_QUEUED
from asyncoptjob.mock import Lifecycle, MockSageMaker

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: botocore's own retries off, so every error reaches the test (or the library) once.
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@contextmanager
def sync_sagemaker_client(url: str) -> Iterator[Any]:
    """A synchronous boto3 SageMaker client to ``url``: dummy credentials, no retries."""
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
    """Options pointing the library at ``mock`` with fast polls; ``extra`` on top."""
    return {
        "endpoint_url": mock.url,
        "session": session,
        "region_name": "us-east-1",
        "poll_interval": FAST_POLL,
        **extra,
    }


class QueueItem:
    """A minimal entry for ``DueQueue`` (the hub queues its jobs the same way)."""

    __slots__ = ("name", "token")

    def __init__(self, name: int) -> None:
        self.name = name
        self.token = NOT_QUEUED

    def __repr__(self) -> str:
        return f"QueueItem({self.name})"


class FakeClock:
    """Virtual time: ``sleep`` advances the clock instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()

    def advance(self, seconds: float) -> None:
        self.t += seconds


def check_invariants(events: Sequence[Event], names: Iterable[str]) -> dict[str, list[Event]]:
    """Assert the per-job event guarantees; return the events grouped by job.

    Per job: the first StatusChange has previous_status None, each next one's
    previous_status is the status before it, no status repeats back to back, and
    exactly one terminal outcome comes last.
    """
    by_job: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_job[event.job_name].append(event)
    expected = set(names)
    assert set(by_job) == expected, f"events for {set(by_job) ^ expected} unexpected/missing"
    for name, seq in by_job.items():
        previous: JobStatus | None = None
        for i, event in enumerate(seq):
            last = i == len(seq) - 1
            if isinstance(event, JobError):
                assert last, f"{name}: events after a JobError: {seq}"
                continue
            assert isinstance(event, StatusChange)
            assert event.previous_status == previous, f"{name}: out of order: {seq}"
            assert event.status != previous, f"{name}: repeated status: {seq}"
            assert event.is_terminal == last, f"{name}: terminal not last/only once: {seq}"
            assert event.observed_at.tzinfo is not None
            assert event.description["OptimizationJobName"] == name
            previous = event.status
    return dict(by_job)


async def settle_tasks(max_rounds: int = 200) -> set[asyncio.Task[object]]:
    """Let finalizers run; return the tasks other than the current one still pending."""
    current = asyncio.current_task()
    others: set[asyncio.Task[object]] = set()
    for _ in range(max_rounds):
        others = {t for t in asyncio.all_tasks() if t is not current and not t.done()}
        if not others:
            break
        await asyncio.sleep(0)
    return others
