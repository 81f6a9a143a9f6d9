"""The job table adds no object per job for the garbage collector to walk.

A full (generation-2) collection walks every tracked object in the process and holds
the event loop meanwhile; an object per job would also start such collections while
100,000 jobs are added. Counted in tracked objects, never in time.
"""

from __future__ import annotations

import gc
from typing import Any

import anyio

from asyncoptjob import JobStatus, Poller, PollPolicy
from asyncoptjob._job import JobTable
from asyncoptjob._subscription import Subscription
from asyncoptjob.testing import FakeRequest, FakeTransport

JOBS = 50_000


def tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_a_full_table_holds_no_tracked_object_per_job() -> None:
    table = JobTable()
    sub = Subscription(f"job-{i}" for i in range(JOBS))
    before = tracked()
    for i, name in enumerate(sub.names):
        job = table.add(name, now=float(i))
        job.add(sub)
        job.status = JobStatus.INPROGRESS
        job.created = 1_000.0 + i
    del job
    assert len(table) == JOBS
    assert tracked() - before < 10  # the table's dicts, not one object per job
    assert not gc.is_tracked(table._records)
    first = table.get("job-0")
    assert first is not None
    assert (first.status, first.created, first.pending) == (JobStatus.INPROGRESS, 1_000.0, sub)


async def test_a_poller_watching_many_jobs_holds_no_tracked_object_per_job() -> None:
    # Every describe hangs: the jobs stay in the table, a few describes on the wire.
    async def hang(request: FakeRequest) -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    names = [f"job-{i}" for i in range(JOBS)]
    async with Poller(transport=FakeTransport(hang), poll_interval=PollPolicy(interval=60)) as p:
        before = tracked()
        async with p.watch(names):
            assert p.stats.jobs_active == JOBS
            grown = tracked() - before
        assert grown < JOBS // 20, f"{grown} tracked objects for {JOBS} jobs"
