"""Ground truth in-process: counters, transitions, the request log and its window helper."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from asyncoptjob.mock import Lifecycle, MockSageMaker, RequestRecord
from asyncoptjob.mock._ledger import Ledger


async def test_counters_per_operation_and_outcome(aio_client: Any, mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1)
    for _ in range(3):
        await aio_client.describe_optimization_job(OptimizationJobName=name)
    with pytest.raises(ClientError):
        await aio_client.describe_optimization_job(OptimizationJobName="nope")
    mock.set_faults(throttle_rate=1.0)
    with pytest.raises(ClientError):
        await aio_client.list_optimization_jobs()
    stats = mock.stats()
    assert stats.counters == {
        "DescribeOptimizationJob": {"ok": 3, "ResourceNotFound": 1},
        "ListOptimizationJobs": {"ThrottlingException": 1},
    }
    assert stats.count("DescribeOptimizationJob") == 4
    assert stats.count("DescribeOptimizationJob", "ok") == 3
    assert stats.count("StopOptimizationJob") == 0
    assert stats.jobs == 1
    assert stats.requests_logged == 5


async def test_request_log_records_arrival_operation_outcome(
    aio_client: Any, mock: MockSageMaker
) -> None:
    (name,) = mock.seed_jobs(1)
    await aio_client.describe_optimization_job(OptimizationJobName=name)
    await aio_client.list_optimization_jobs()
    log = mock.requests()
    assert [(r.operation, r.outcome) for r in log] == [
        ("DescribeOptimizationJob", "ok"),
        ("ListOptimizationJobs", "ok"),
    ]
    assert all(isinstance(r, RequestRecord) for r in log)
    assert log[0].at <= log[1].at


def test_request_log_is_bounded() -> None:
    ledger = Ledger(log_size=3)
    for i in range(10):
        ledger.record(float(i), "DescribeOptimizationJob", "ok")
    assert [r.at for r in ledger.log] == [7.0, 8.0, 9.0]
    assert ledger.counters["DescribeOptimizationJob"]["ok"] == 10


def test_max_requests_in_window() -> None:
    ledger = Ledger()
    for t in (0.0, 0.1, 0.2, 0.25, 1.0, 1.05):
        ledger.record(t, "DescribeOptimizationJob", "ok")
    ledger.record(0.15, "DescribeOptimizationJob", "ThrottlingException")
    ledger.record(0.15, "ListOptimizationJobs", "ok")
    assert ledger.max_requests_in_window("describe", 0.25) == 4
    assert ledger.max_requests_in_window("DescribeOptimizationJob", 0.1) == 2
    assert ledger.max_requests_in_window("describe", 0.1, outcome=None) == 3
    assert ledger.max_requests_in_window("describe", 10.0, outcome="ThrottlingException") == 1
    assert ledger.max_requests_in_window("list", 1.0) == 1
    assert ledger.max_requests_in_window("stop", 1.0) == 0
    with pytest.raises(ValueError, match="window_s"):
        ledger.max_requests_in_window("describe", -1)


async def test_transitions_are_the_truth(mock: MockSageMaker) -> None:
    names = mock.seed_jobs(3, lifecycle=Lifecycle(starting=(0, 0), in_progress=(0, 0)))
    truth = mock.transitions()
    assert set(truth) == set(names)
    for name in names:
        statuses = [s for s, _ in truth[name]]
        assert statuses[0] == "STARTING"
        assert statuses[-1] == mock.status(name)
        times = [t for _, t in truth[name]]
        assert times == sorted(times)
    assert mock.transitions(["nope", names[0]]) == {names[0]: truth[names[0]]}
    with pytest.raises(KeyError):
        mock.status("nope")


async def test_stats_count_statuses(mock: MockSageMaker) -> None:
    mock.seed_jobs(4, lifecycle=Lifecycle(starting=(float("inf"), float("inf"))))
    mock.seed_jobs(2, lifecycle=Lifecycle(starting=(0, 0), in_progress=(0, 0)), outcome="FAILED")
    statuses = mock.stats().statuses
    assert statuses["STARTING"] == 4
    assert statuses["FAILED"] == 2
    assert sum(statuses.values()) == 6


async def test_reset_forgets_jobs_and_counts_but_keeps_faults(
    aio_client: Any, mock: MockSageMaker
) -> None:
    (name,) = mock.seed_jobs(1)
    await aio_client.describe_optimization_job(OptimizationJobName=name)
    mock.set_faults(latency_ms=1)
    mock.reset()
    stats = mock.stats()
    assert (stats.jobs, stats.counters, stats.requests_logged) == (0, {}, 0)
    assert mock.faults.latency_ms == 1
    assert mock.seed_jobs(1) == ["job-00000"]


def test_thread_mode_ground_truth(boto3_client: Any, threaded_mock: MockSageMaker) -> None:
    names = threaded_mock.seed_jobs(2)
    for name in names:
        boto3_client.describe_optimization_job(OptimizationJobName=name)
    assert threaded_mock.stats().count("DescribeOptimizationJob", "ok") == 2
    assert threaded_mock.max_requests_in_window("describe", 60.0) == 2
    assert set(threaded_mock.transitions()) == set(names)
    assert threaded_mock.job_names() == names
    threaded_mock.reset()
    assert threaded_mock.stats().jobs == 0
