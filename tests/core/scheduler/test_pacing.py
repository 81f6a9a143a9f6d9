"""The pacer: when each job is described next, in one place."""

from __future__ import annotations

import random

from asyncoptjob import JobStatus, PollPolicy
from asyncoptjob._job import JobTable
from asyncoptjob._pacing import Pacer
from asyncoptjob._scheduler import URGENT, DueQueue
from asyncoptjob._workers import Workers
from asyncoptjob.testing import ManualClock

EVERY_10 = PollPolicy(interval=10, max_interval=40, backoff=2.0, jitter=0.0)


def pacer(clock: ManualClock) -> tuple[Pacer, Workers[str]]:
    workers: Workers[str] = Workers(DueQueue(), clock, count=1)
    return Pacer(workers, EVERY_10, clock, rng=random.Random(0)), workers


def test_the_next_describe_follows_the_policy_and_backs_off_while_nothing_changes() -> None:
    clock = ManualClock(start=1000)
    pace, workers = pacer(clock)
    job = JobTable().add("a", now=clock.now())
    job.status = JobStatus.INPROGRESS
    pace.next(job)
    assert workers.queue.next_due() == 1010
    job.unchanged = 2
    pace.next(job)  # rescheduled, not queued twice
    assert workers.queue.next_due() == 1040
    assert len(workers.queue) == 1


def test_a_look_elsewhere_counts_from_when_it_was_made() -> None:
    clock = ManualClock(start=1000)
    pace, workers = pacer(clock)
    job = JobTable().add("a", now=clock.now())
    job.status = JobStatus.INPROGRESS
    pace.after_look(job, age=4.0)  # described 4 s ago by another process
    assert workers.queue.next_due() == 1006


def test_a_hint_goes_ahead_of_every_routine_poll() -> None:
    clock = ManualClock(start=1000)
    pace, workers = pacer(clock)
    table = JobTable()
    routine, hinted = table.add("a", now=1000.0), table.add("b", now=1000.0)
    pace.soon(routine)
    pace.urgent(hinted)
    assert workers.queue.next_due() == URGENT
    assert workers.queue.pop_due(clock.now()) == hinted.name
    assert workers.queue.pop_due(clock.now()) == routine.name


def test_a_job_is_idle_until_queued_and_a_removed_job_is_never_queued() -> None:
    clock = ManualClock(start=1000)
    pace, workers = pacer(clock)
    job = JobTable().add("a", now=1000.0)
    assert pace.idle(job)
    pace.soon(job)
    assert not pace.idle(job)
    pace.drop(job)
    assert pace.idle(job)
    job.removed = True
    pace.soon(job)
    assert workers.queue.next_due() is None
