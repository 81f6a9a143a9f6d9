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

from asyncoptjob import Event, JobErrorEvent, JobStatus, PollPolicy, StatusChange
from asyncoptjob.mock import Lifecycle, MockSageMaker
from asyncoptjob.testing import RedisServer, check_events
from tests.helpers import ROOT, check_handovers, sync_sagemaker_client

pytestmark = pytest.mark.slow

WORKER = "tests.fleet.fleet_worker"
PROCESSES = 3
JOBS = 36
RATE = 30.0  # the fleet's budget: far below what 3 x 24 jobs polled every 0.2 s would ask
BURST = 2  # max(1, RATE * 0.05)
#: The workers' poll policy (``poll`` in their config; ``fleet_worker`` builds it so).
POLL = PollPolicy(interval=0.2, max_interval=0.2)
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
        self,
        mock: MockSageMaker,
        redis: RedisServer,
        names: list[str],
        lease_ttl: float,
        *,
        processes: int = PROCESSES,
        extra: dict[str, Any] | None = None,
        watch: Any = None,
    ) -> None:
        self.prefix = prefix = f"t-{secrets.token_hex(4)}"
        self.procs: list[subprocess.Popen[str]] = []
        for i in range(processes):
            mine = (watch or watched_by)(i, names)
            config = {
                "mock_url": mock.url,
                "redis_url": redis.url,
                "prefix": prefix,
                "lease_ttl": lease_ttl,
                "max_rate": RATE,
                "poll": POLL.interval,
                "timeout": 40,
                # Two subscribers per process, overlapping.
                "subs": [mine, mine[: len(mine) // 2]],
                **(extra or {}),
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
            proc = self.procs[i]
            assert proc.stdout is not None
            assert proc.stderr is not None
            # Read through the same buffered file ``wait_ready`` read "ready" from: a
            # worker that finishes at once may have its report in that buffer already,
            # where ``communicate`` (reading the raw pipe) would never see it.
            stdout = proc.stdout.read()
            stderr = proc.stderr.read()
            proc.wait(timeout=50)
            assert proc.returncode == 0, stderr[-3000:]
            assert stdout.strip(), f"worker {i} printed no report: {stderr[-3000:]}"
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
        mock: MockSageMaker,
        redis: RedisServer,
        names: list[str],
        lease_ttl: float = 1.0,
        **kwargs: Any,
    ) -> Fleet:
        fleet = Fleet(mock, redis, names, lease_ttl, **kwargs)
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
            events.append(JobErrorEvent(name, RuntimeError(status)))
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


def check_subscribers(report: dict[str, Any], i: int, names: list[str], watch: Any = None) -> None:
    mine = (watch or watched_by)(i, names)
    for rows, expected in zip(report["events"], [mine, mine[: len(mine) // 2]], strict=True):
        by_job = check_events(as_events(rows), expected)
        for seq in by_job.values():
            assert isinstance(seq[-1], StatusChange), seq
            assert seq[-1].is_terminal


def wait_for(predicate: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def polling_under_way(endpoint: MockSageMaker, names: list[str]) -> None:
    """Wait until the endpoint saw as many more describes as there are jobs."""
    target = describes(endpoint) + len(names)
    wait_for(lambda: describes(endpoint) >= target, f"{len(names)} more describes")


def describes(endpoint: MockSageMaker) -> int:
    return endpoint.stats().count("DescribeOptimizationJob")


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
    # One poller per job at a time: a job is described by the process holding its lease;
    # when balancing hands a lease over (the first process to attach claims every job
    # it watches, then hands the surplus over its even share to the others), the new
    # holder goes on from the old one's last describe: no describe sooner than the
    # poll interval allows, whoever sends it.
    assert set(describers(reports)) == set(names)
    check_handovers({str(i): r["sent"] for i, r in enumerate(reports)}, POLL)
    total = describes(endpoint)
    assert total == sum(sum(r["describes"].values()) for r in reports)
    # Batched budget: fewer Redis round trips than describes.
    assert sum(r["round_trips"] for r in reports) < total


def test_a_killed_process_s_jobs_are_taken_over(
    endpoint: MockSageMaker, redis_server: RedisServer, fleet_factory: Any
) -> None:
    names = endpoint.seed_jobs(JOBS, lifecycle=UNTIL_STOPPED)
    fleet = fleet_factory(endpoint, redis_server, names)
    fleet.wait_ready()
    polling_under_way(endpoint, names)
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
    polling_under_way(endpoint, names)
    redis_server.stop()
    # Without Redis each process polls its own jobs (and notices the outage doing so).
    polling_under_way(endpoint, names)
    redis_server.start()  # same port, empty: no persistence
    stop_all(endpoint, names)
    reports = fleet.reports(list(range(PROCESSES)))
    for i, report in enumerate(reports):
        check_subscribers(report, i, names)
        assert report["outages"] >= 1


# -- sweeps in a fleet: one sweep lease, hints through the stream ----------------------

#: Sweep often (so a short test makes enough List calls to compare) and describe rarely.
SWEEPS = {
    "strategy": "sweep",
    "poll": 5.0,
    "sweep": {"interval": 0.3, "overlap": 5.0, "safety_interval": 60.0, "max_rate": 20.0},
}
MISSING = "no-such-job"
#: Long enough that the jobs are still running when slow-starting workers first look.
SWEPT = Lifecycle(starting=(4.0, 6.0), in_progress=(3.0, 6.0), stopping=(0.2, 0.5))


def everything(i: int, names: list[str]) -> list[str]:
    del i
    return names


def redis_client(redis: RedisServer) -> Any:
    import redis as redis_py

    return redis_py.Redis.from_url(redis.url, decode_responses=True)


def holder_pid(client: Any, key: str) -> int | None:
    holder = client.get(key)
    return int(holder.split(":")[1]) if holder else None


def run_sweeping(
    redis_server: RedisServer, fleet_factory: Any, processes: int, seed: int
) -> tuple[int, list[dict[str, Any]], list[str]]:
    """Watch the same jobs from ``processes`` processes with sweeps; List calls and reports."""
    with MockSageMaker(seed=seed, lifecycle=SWEPT).run_in_thread() as mock:
        names = mock.seed_jobs(JOBS)
        fleet = fleet_factory(
            mock, redis_server, names, 3.0, processes=processes, extra=SWEEPS, watch=everything
        )
        fleet.wait_ready()
        reports = fleet.reports(list(range(processes)))
        lists = mock.stats().count("ListOptimizationJobs")
    return lists, reports, names


def test_a_fleet_sweeps_once_for_everyone(redis_server: RedisServer, fleet_factory: Any) -> None:
    alone, _, _ = run_sweeping(redis_server, fleet_factory, 1, seed=21)
    together, reports, names = run_sweeping(redis_server, fleet_factory, PROCESSES, seed=21)
    # Every subscriber in every process saw every job to its end, from one process's sweeps.
    for i, report in enumerate(reports):
        check_subscribers(report, i, names, everything)
    assert alone > 0
    per_process = [(r["lists"], r["outages"]) for r in reports]
    assert together <= 1.5 * alone, (together, alone, "lists, outages:", per_process)
    assert sum(r["lists"] for r in reports) == together


def test_a_job_error_reaches_every_process(
    endpoint: MockSageMaker, redis_server: RedisServer, fleet_factory: Any
) -> None:
    names = endpoint.seed_jobs(6)
    watch = lambda i, names: [*names, MISSING]  # noqa: E731 - a one-line watch rule
    fleet = fleet_factory(
        endpoint, redis_server, names, 3.0, extra={"not_found_grace": 0.5}, watch=watch
    )
    fleet.wait_ready()
    reports = fleet.reports(list(range(PROCESSES)))
    describers_of_missing = [r for r in reports if MISSING in r["describes"]]
    assert len(describers_of_missing) == 1, "one process polls the missing job"
    for report in reports:
        rows = [row for row in report["events"][0] if row[0] == MISSING]
        assert len(rows) == 1, rows
        assert rows[0][1] == "error", rows
        assert "JobNotFoundError" in rows[0][2]


def test_killing_the_sweep_lease_holder_moves_the_lease(
    endpoint: MockSageMaker, redis_server: RedisServer, fleet_factory: Any
) -> None:
    names = endpoint.seed_jobs(JOBS, lifecycle=UNTIL_STOPPED)
    fleet = fleet_factory(endpoint, redis_server, names, extra=SWEEPS, watch=everything)
    fleet.wait_ready()
    client = redis_client(redis_server)
    key = f"{fleet.prefix}:sweep"
    first = wait_for(lambda: holder_pid(client, key), "a sweep lease holder")
    (victim,) = [i for i, proc in enumerate(fleet.procs) if proc.pid == first]
    fleet.procs[victim].send_signal(signal.SIGKILL)
    fleet.procs[victim].wait()
    second = wait_for(
        lambda: (pid := holder_pid(client, key)) != first and pid, "the lease to move"
    )
    survivors = [i for i in range(PROCESSES) if i != victim]
    assert second in {fleet.procs[i].pid for i in survivors}
    stop_all(endpoint, names)
    for i, report in zip(survivors, fleet.reports(survivors), strict=True):
        check_subscribers(report, i, names, everything)


def test_job_leases_are_spread_across_processes(
    endpoint: MockSageMaker, redis_server: RedisServer, fleet_factory: Any
) -> None:
    names = endpoint.seed_jobs(JOBS, lifecycle=UNTIL_STOPPED)
    fleet = fleet_factory(endpoint, redis_server, names, watch=everything)
    fleet.wait_ready()
    client = redis_client(redis_server)
    pids = {proc.pid for proc in fleet.procs}
    even = JOBS / PROCESSES

    def spread() -> Counter[int] | None:
        held = Counter(holder_pid(client, f"{fleet.prefix}:lease:{name}") for name in names)
        balanced = set(held) == pids and all(0.5 * even <= n <= 1.5 * even for n in held.values())
        return held if balanced else None

    held = wait_for(spread, "leases spread across the processes")
    assert sum(held.values()) == JOBS
    stop_all(endpoint, names)
    for i, report in enumerate(fleet.reports(list(range(PROCESSES)))):
        check_subscribers(report, i, names, everything)
