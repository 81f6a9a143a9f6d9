"""The example DAG end to end with ``dag.test()``, and the operator and sensor's other paths.

``dag.test()`` runs the DAG in this process as Airflow would: the operator creates the
job on the mock (CreateOptimizationJob), defers, the trigger runs (Airflow runs it
under ``asyncio.run``, with ``aws_default`` from ``AIRFLOW_CONN_AWS_DEFAULT``) and
``execute_complete`` ends the task.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, TaskDeferred

from asyncoptjob.airflow import (
    OptimizationJobTrigger,
    SageMakerCreateOptimizationJobOperator,
    SageMakerOptimizationJobSensor,
)
from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.airflow.conftest import DAGS_FOLDER, aws_connection
from tests.helpers import ROOT, sync_sagemaker_client

EXAMPLE = ROOT / "examples" / "airflow_optimization_dag.py"
QUICK = Lifecycle(starting=(0.05, 0.1), in_progress=(0.1, 0.3))
FAILING = Lifecycle(starting=(0.05, 0.1), in_progress=(0.1, 0.3), failure_rate=1.0)


@pytest.fixture(scope="module")
def threaded_mock() -> Iterator[MockSageMaker]:
    """The mock, served from a thread: ``dag.test()`` blocks this one."""
    with MockSageMaker(seed=5, lifecycle=QUICK).run_in_thread() as endpoint:
        yield endpoint


@pytest.fixture
def connection(threaded_mock: MockSageMaker, monkeypatch: pytest.MonkeyPatch) -> MockSageMaker:
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(threaded_mock.url))
    monkeypatch.setenv("OPTIMIZATION_POLL_INTERVAL", "0.1")
    threaded_mock.lifecycle = QUICK
    return threaded_mock


@pytest.fixture(scope="module")
def example_dag() -> Iterator[ModuleType]:
    """The example DAG, in a DAGs folder of its own, with a fresh metadata database."""
    from airflow.utils import db

    shutil.copy(EXAMPLE, DAGS_FOLDER / EXAMPLE.name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTIMIZATION_POLL_INTERVAL", "0.1")
        db.resetdb()
        yield _load(DAGS_FOLDER / EXAMPLE.name)


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("airflow_optimization_dag", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.slow
def test_the_example_dag_creates_defers_and_completes(
    example_dag: ModuleType, connection: MockSageMaker
) -> None:
    logical_date = datetime(2026, 1, 1, tzinfo=timezone.utc)
    run = example_dag.dag.test(logical_date=logical_date)
    assert str(run.state) == "success", _states(run)
    assert _states(run) == {"optimize": "success", "report": "success"}
    name = "llama3-int4-20260101t000000"
    assert connection.status(name) == "COMPLETED"
    assert connection.stats().count("CreateOptimizationJob", "ok") >= 1
    assert connection.stats().count("DescribeOptimizationJob", "ok") >= 1
    # execute_complete's return value (the final description) reached the next task.
    report = run.get_task_instance("report")
    assert report.xcom_pull(task_ids="report") == "s3://my-models/optimized/"
    description = report.xcom_pull(task_ids="optimize")
    assert description["OptimizationJobName"] == name
    assert description["OptimizationJobStatus"] == "COMPLETED"


@pytest.mark.slow
def test_the_example_dag_fails_when_the_job_fails(
    example_dag: ModuleType, connection: MockSageMaker
) -> None:
    connection.lifecycle = FAILING
    run = example_dag.dag.test(logical_date=datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert str(run.state) == "failed"
    assert _states(run) == {"optimize": "failed", "report": "upstream_failed"}
    assert connection.status("llama3-int4-20260102t000000") == "FAILED"


def _config(name: str) -> dict[str, Any]:
    return {
        "OptimizationJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "ModelSource": {"S3": {"S3Uri": "s3://models/llama3-8b/"}},
        "DeploymentInstanceType": "ml.g5.2xlarge",
        "OptimizationConfigs": [{"ModelQuantizationConfig": {"OverrideEnvironment": {}}}],
        "OutputConfig": {"S3OutputLocation": "s3://models/out/"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def _create(mock: MockSageMaker, name: str) -> None:
    with sync_sagemaker_client(mock.url) as client:
        client.create_optimization_job(**_config(name))


def test_the_operator_defers_to_the_trigger_and_completes(connection: MockSageMaker) -> None:
    operator = SageMakerCreateOptimizationJobOperator(
        task_id="optimize", config=_config("op-deferred"), poll_interval=0.1
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, OptimizationJobTrigger)
    assert trigger.serialize()[1]["poller_options"] == {"poll_interval": 0.1}
    assert deferred.value.method_name == "execute_complete"
    event = asyncio.run(trigger.wait())
    description = operator.execute_complete({}, event)
    assert description["OptimizationJobName"] == "op-deferred"
    assert description["OptimizationJobStatus"] == "COMPLETED"
    assert isinstance(description["CreationTime"], str)  # JSON-able for XCom


def test_the_operator_raises_the_failure_reason(connection: MockSageMaker) -> None:
    connection.lifecycle = FAILING
    operator = SageMakerCreateOptimizationJobOperator(
        task_id="optimize", config=_config("op-fails"), deferrable=False, poll_interval=0.1
    )
    with pytest.raises(AirflowException) as raised:
        operator.execute({})
    with sync_sagemaker_client(connection.url) as client:
        reason = client.describe_optimization_job(OptimizationJobName="op-fails")["FailureReason"]
    assert reason
    assert reason in str(raised.value)
    assert "FAILED" in str(raised.value)


def test_the_operator_without_waiting_returns_the_arn(connection: MockSageMaker) -> None:
    operator = SageMakerCreateOptimizationJobOperator(
        task_id="optimize", config=_config("op-no-wait"), wait_for_completion=False
    )
    result = operator.execute({})
    assert result["OptimizationJobName"] == "op-no-wait"
    assert result["OptimizationJobArn"].endswith("optimization-job/op-no-wait")


def test_the_sensor_defers_for_a_job_created_elsewhere(connection: MockSageMaker) -> None:
    _create(connection, "sensed-deferred")
    sensor = SageMakerOptimizationJobSensor(
        task_id="wait", job_name="sensed-deferred", poll_interval=0.1
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    event = asyncio.run(deferred.value.trigger.wait())
    assert sensor.execute_complete({}, event)["OptimizationJobStatus"] == "COMPLETED"


def test_the_sensor_pokes_when_not_deferrable(connection: MockSageMaker) -> None:
    _create(connection, "sensed-poked")
    sensor = SageMakerOptimizationJobSensor(
        task_id="wait", job_name="sensed-poked", deferrable=False, poll_interval=0.05
    )
    description = sensor.execute({})
    assert description["OptimizationJobStatus"] == "COMPLETED"
    connection.lifecycle = FAILING
    _create(connection, "sensed-fails")
    failing = SageMakerOptimizationJobSensor(
        task_id="wait2", job_name="sensed-fails", deferrable=False, poll_interval=0.05
    )
    with pytest.raises(AirflowException, match="FAILED"):
        failing.execute({})


def test_execute_complete_refuses_an_empty_event() -> None:
    operator = SageMakerCreateOptimizationJobOperator(task_id="optimize", config=_config("x"))
    with pytest.raises(AirflowException, match="no usable event"):
        operator.execute_complete({}, None)
