"""The deferrable operator that creates an optimization job, and the sensor that waits for one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException

from .._events import JobStatus
from ._payload import SUCCESS, jsonable
from ._trigger import OptimizationJobTrigger

__all__ = ["SageMakerCreateOptimizationJobOperator", "SageMakerOptimizationJobSensor"]

DEFAULT_POLL_INTERVAL = 30.0


def _trigger(task: Any, job_name: str, timeout: float | None) -> OptimizationJobTrigger:
    """The trigger a task defers to: its connection, Region and Poller options."""
    return OptimizationJobTrigger(
        job_name=job_name,
        aws_conn_id=task.aws_conn_id,
        region_name=task.region_name,
        timeout=timeout,
        poller_options={"poll_interval": task.poll_interval, **(task.poller_options or {})},
    )


def _complete(event: dict[str, Any] | None) -> dict[str, Any]:
    """The final description in a trigger's event; raise if the job did not complete."""
    if not event or "status" not in event:
        raise AirflowException(f"optimization job trigger sent no usable event: {event!r}")
    if event["status"] != SUCCESS:
        raise AirflowException(event.get("message") or f"optimization job failed: {event!r}")
    description: dict[str, Any] = event["description"]
    return description


class SageMakerCreateOptimizationJobOperator(AwsBaseOperator[SageMakerHook]):
    """Create an Amazon SageMaker optimization job (CreateOptimizationJob) and wait for it.

    Deferrable by default: while the job runs the task waits in the triggerer, as an
    :class:`OptimizationJobTrigger` on the triggerer's shared Poller.

    Returns (XCom): the final DescribeOptimizationJob answer (datetimes as ISO
    strings); with ``wait_for_completion=False``, the job's name and ARN right after
    creation.

    Args:
        config: the CreateOptimizationJob request (``OptimizationJobName``,
            ``ModelSource``, ``DeploymentInstanceType``, ``OptimizationConfigs``,
            ``OutputConfig``, ``RoleArn``, ``StoppingCondition``, ...). Templated.
        wait_for_completion: wait until the job is terminal (default True).
        deferrable: wait in the triggerer (default True); False waits in the worker.
        poll_interval: seconds between describes of the job (default 30).
        max_wait: seconds to wait at most (None: no limit).
        poller_options: other JSON-able :class:`~asyncoptjob.PollerOptions` for the
            shared Poller (``max_rate``, ``not_found_grace``, ...).
        **kwargs: those of every AWS operator (``aws_conn_id``, ``region_name``,
            ``verify``, ``botocore_config``) and of ``BaseOperator``.

    Raises:
        AirflowException: the job ended FAILED or STOPPED (with its failure reason), or
            could not be watched.
    """

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = aws_template_fields("config")
    template_fields_renderers = {"config": "json"}  # noqa: RUF012 - Airflow's convention

    def __init__(
        self,
        *,
        config: dict[str, Any],
        wait_for_completion: bool = True,
        deferrable: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_wait: float | None = None,
        poller_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.poller_options = poller_options

    def execute(self, context: Any) -> dict[str, Any]:
        name = self.config["OptimizationJobName"]
        response = self.hook.conn.create_optimization_job(**self.config)
        self.log.info("Created optimization job %s", name)
        if not self.wait_for_completion:
            return {
                "OptimizationJobName": name,
                "OptimizationJobArn": response["OptimizationJobArn"],
            }
        trigger = _trigger(self, name, self.max_wait)
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete")
        return self.execute_complete(context, asyncio.run(trigger.wait()))

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return the final description, or raise with the failure reason."""
        return _complete(event)


class SageMakerOptimizationJobSensor(AwsBaseSensor[SageMakerHook]):
    """Wait for an Amazon SageMaker optimization job created elsewhere.

    Deferrable by default (an :class:`OptimizationJobTrigger` in the triggerer); with
    ``deferrable=False`` it pokes DescribeOptimizationJob from the worker.

    Returns (XCom): the final DescribeOptimizationJob answer (datetimes as ISO strings).

    Args:
        job_name: the optimization job's name. Templated.
        deferrable: wait in the triggerer (default True).
        poll_interval: seconds between describes of the job (default 30; also the
            poke interval when not deferrable).
        poller_options: other JSON-able :class:`~asyncoptjob.PollerOptions` for the
            shared Poller.
        **kwargs: those of every AWS sensor (``aws_conn_id``, ``region_name``,
            ``verify``, ``botocore_config``) and of ``BaseSensorOperator``.

    Raises:
        AirflowException: the job ended FAILED or STOPPED (with its failure reason), or
            could not be watched.
    """

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = aws_template_fields("job_name")

    def __init__(
        self,
        *,
        job_name: str,
        deferrable: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        poller_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.job_name = job_name
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.poller_options = poller_options
        self._description: dict[str, Any] | None = None

    def execute(self, context: Any) -> dict[str, Any] | None:
        if not self.deferrable:
            super().execute(context)
            return self._description
        self.defer(
            trigger=_trigger(self, self.job_name, self.timeout), method_name="execute_complete"
        )
        return None  # not reached: defer() raises TaskDeferred

    def poke(self, context: Any) -> bool:
        description = self.hook.conn.describe_optimization_job(OptimizationJobName=self.job_name)
        status = JobStatus(description["OptimizationJobStatus"])
        self.log.info("Optimization job %s is %s", self.job_name, status)
        if not status.is_terminal:
            return False
        if status != JobStatus.COMPLETED:
            reason = description.get("FailureReason")
            raise AirflowException(
                f"optimization job {self.job_name} ended {status}"
                + (f": {reason}" if reason else "")
            )
        self._description = jsonable(description)
        return True

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return the final description, or raise with the failure reason."""
        return _complete(event)
