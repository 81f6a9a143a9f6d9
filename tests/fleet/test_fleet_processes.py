"""Fleet mode across real processes: one Redis, one mock endpoint, overlapping watches.

Each worker (``fleet_worker.py``) is its own Python process with its own Poller; the
test checks what the mock endpoint saw (the fleet's describe rate stays within the
fleet's budget) and what every subscriber in every process got (each job's complete
event sequence, exactly one terminal event), also when a worker is killed mid-run and
when Redis goes away and comes back.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from math import inf
from typing import Any

import pytest

from asyncoptjob import Event, JobError, JobStatus, StatusChange
from asyncoptjob.mock import Lifecycle, MockSageMaker
from asyncoptjob.testing import RedisServer, check_events
from tests.helpers import ROOT, sync_sagemaker_client

pytestmark = pytest.mark.slow

WORKER = "tests.fleet.fleet_worker"
PROCESSES = 3
JOBS = 36
RATE = 30.0  # the fleet's budget: far below what 3 x 24 jobs polled every 0.2 s would ask
BURST = 2  # max(1, RATE * 0.05)
LIFECYCLE = Lifecycle(starting=(1.0, 2.0), in_progress=(1.5, 3.5), stopping=(0.2, 0.5))
# For the tests that break something mid-run: jobs run until ``stop_all`` stops them,
# so every job is still running when the kill or the outage comes, however long the
# workers (a second or two each, on a busy machine more) take to start.
UNTIL_STOPPED = Lifecycle(starting=(0.5, 1.0), in_progress=(inf, inf), stopping=(0.2, 0.5))


def stop_all(mock: MockSageMaker, names: list[str]) -> None:
    """StopOptimizationJob for every job, through boto3 (the endpoint runs in a thread)."""
    with sync_sagemaker_client(mock.url) as client:
        for name in names:
            client.stop_optimization_job(OptimizationJobName=name)


@pytest.fixture
def endpoint() -> Iterator[MockSageMaker]:
    with MockSageMaker(seed=11, lifecycle=LIFECYCLE).run_in_thread() as mock:
        yield mock


def watched_by(i: int, names: list[str]) -> list[str]:
    # Every job is watched by two of the three processes.
    return [name for j, name in enumerate(names) if j % PROCESSES != i]


class Fleet:
    """The worker processes of one test."""

    def __init__(
        self, mock: MockSageMaker, redis: RedisServer, names: list[str], lease_ttl: float
    ) -> None:
        prefix = f"t-{secrets.token_hex(4)}"
        self.procs: list[subprocess.Popen[str]] = []
        for i in range(PROCESSES):
            mine = watched_by(i, names)
            config = {
                "mock_url": mock.url,
                "redis_url": redis.url,
                "prefix": prefix,
                "lease_ttl": lease_ttl,
                "max_rate": RATE,
                "poll": 0.2,
                "timeout": 40,
                # Two subscribers per process, overlapping.
                "subs": [mine, mine[: len(mine) // 2]],
            }
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", WORKER, json.dumps(config)],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )

    def wait_ready(self) -> None:
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", f"worker did not start: {line!r} {proc.stderr}"

    def reports(self, alive: list[int]) -> list[dict[str, Any]]:
        out = []
        for i in alive:
            stdout, stderr = self.procs[i].communicate(timeout=50)
            assert self.procs[i].returncode == 0, stderr[-3000:]
            out.append(json.loads(stdout.strip().splitlines()[-1]))
        return out

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def fleet_factory() -> Iterator[Any]:
    made: list[Fleet] = []

    def make(
        mock: MockSageMaker, redis: RedisServer, names: list[str], lease_ttl: float = 1.0
    ) -> Fleet:
        fleet = Fleet(mock, redis, names, lease_ttl)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.kill_all()


def as_events(rows: list[list[Any]]) -> list[Event]:
    now = datetime.now(timezone.utc)
    events: list[Event] = []
    for name, prev, status, described in rows:
        if prev == "error":
            events.append(JobError(name, RuntimeError(status)))
        else:
            events.append(
                StatusChange(
                    name,
                    JobStatus(prev) if prev else None,
                    JobStatus(status),
                    {"OptimizationJobName": described},  # type: ignore[typeddict-item]
                    now,
                )
            )
    return events


def check_subscribers(report: dict[str, Any], i: int, names: list[str]) -> None:
    mine = watched_by(i, names)
    for rows, expected in zip(report["events"], [mine, mine[: len(mine) // 2]], strict=True):
        by_job = check_events(as_events(rows), expected)
        for seq in by_job.values():
            assert isinstance(seq[-1], StatusChange), seq
            assert seq[-1].is_terminal


def describers(reports: list[dict[str, Any]]) -> Counter[str]:
    """How many processes described each job."""
    return Counter(name for report in reports for name in report["describes"])


def test_a_fleet_shares_the_budget_and_polls_each_job_once(
    endpoint: MockSageMaker, redis_server: RedisServer, fleet_factory: Any
) -> None:
    names = endpoint.seed_jobs(JOBS)
    # A lease long enough that a process stalled by a busy machine keeps its jobs.
    fleet = fleet_factory(endpoint, redis_server, names, lease_ttl=3.0)
    fleet.wait_ready()
    reports = fleet.reports(list(range(PROCESSES)))
    for i, report in enumerate(reports):
        check_subscribers(report, i, names)
    # The whole fleet stayed within one budget (plus the bucket's burst, and some slack
    # for requests bunched on their way by a busy machine), where 3 independent Pollers
    # would use 3 budgets.
    most = endpoint.max_requests_in_window("describe", 1.0, outcome=None)
    assert most <= RATE * 1.25 + BURST + 2, most
    # One poller per job: about one process's describes per job, not two.
    counts = describers(reports)
    assert set(counts) == set(names)
    shared = [name for name, n in counts.items() if n > 1]
    assert len(shared) <= 2, f"jobs described by several processes: {shared}"
    total = endpoint.stats().count("DescribeOptimizationJob")
    assert total == sum(sum(r["describes"].values()) for r in reports)
    # Batched budget: fewer Redis round trips than describes.
    assert sum(r["round_trips"] for r in reports) < total


def test_a_killed_process_s_jobs_are_taken_over(
    endpoint: MockSageMaker, redis_server: RedisServer, fleet_factory: Any
) -> None:
    names = endpoint.seed_jobs(JOBS, lifecycle=UNTIL_STOPPED)
    fleet = fleet_factory(endpoint, redis_server, names)
    fleet.wait_ready()
    time.sleep(0.5)
    fleet.procs[0].send_signal(signal.SIGKILL)
    fleet.procs[0].wait()
    killed_at = time.time()
    stop_all(endpoint, names)
    reports = fleet.reports([1, 2])
    for i, report in zip([1, 2], reports, strict=True):
        check_subscribers(report, i, names)
    # Every job that was still running when the process died was polled to its end by a
    # survivor, including those whose lease the dead process held (taken over).
    ended_at = {name: steps[-1][1] for name, steps in endpoint.transitions(names).items()}
    still_running = {name for name, at in ended_at.items() if at > killed_at}
    assert still_running, "the kill came too late to test anything"
    assert still_running <= set(describers(reports))


def test_redis_going_away_loses_nothing(
    endpoint: MockSageMaker, redis_server: RedisServer, fleet_factory: Any
) -> None:
    names = endpoint.seed_jobs(JOBS, lifecycle=UNTIL_STOPPED)
    fleet = fleet_factory(endpoint, redis_server, names)
    fleet.wait_ready()
    time.sleep(0.5)
    redis_server.stop()
    time.sleep(1.5)
    redis_server.start()  # same port, empty: no persistence
    stop_all(endpoint, names)
    reports = fleet.reports(list(range(PROCESSES)))
    for i, report in enumerate(reports):
        check_subscribers(report, i, names)
        assert report["outages"] >= 1
