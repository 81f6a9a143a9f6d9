"""``OptimizationJobTrigger``: waits for one optimization job on the process's shared Poller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from ._payload import error_payload, payload_of
from ._registry import registry

__all__ = ["OptimizationJobTrigger"]


class OptimizationJobTrigger(BaseTrigger):
    """Fires once an Amazon SageMaker optimization job is COMPLETED, FAILED or STOPPED.

    Every trigger of a triggerer process with the same connection, Region and
    ``poller_options`` shares one :class:`~asyncoptjob.Poller` (one client, one rate
    budget, describes batched by the hub): the first one opens it off the event loop,
    the last one out closes it. A cancelled trigger detaches only its own job; a trigger
    rebuilt in another triggerer starts from a fresh describe.

    The event's payload: ``status`` (``"success"`` when the job COMPLETED, else
    ``"error"``), ``job_name``, ``job_status`` (the terminal ``OptimizationJobStatus``,
    None if the job could not be watched), ``failure_reason``, ``message`` and
    ``description`` (the final DescribeOptimizationJob answer, datetimes as ISO
    strings). A job that cannot be watched (unknown after the not-found grace period,
    access denied, an endpoint that never answers) ends in an ``"error"`` event.

    Args:
        job_name: the optimization job's name.
        aws_conn_id: the Airflow AWS connection (credentials, ``region_name`` and
            ``endpoint_url`` from its extra, as the Amazon provider's hooks read them; a
            ``redis_url`` extra turns on fleet mode, so several triggerers share one
            budget and poll each job once).
        region_name: overrides the connection's Region.
        timeout: seconds to wait at most (None: no limit; Airflow's own ``timeout`` on
            ``defer`` works too).
        poller_options: JSON-able :class:`~asyncoptjob.PollerOptions` for the shared
            Poller (for example ``{"poll_interval": 60, "max_rate": 10}``); triggers with
            different options get different Pollers.
    """

    def __init__(
        self,
        job_name: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        timeout: float | None = None,
        poller_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.job_name = job_name
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.timeout = timeout
        self.poller_options = dict(poller_options or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The classpath and the keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__.rsplit('._', 1)[0]}.{type(self).__qualname__}",
            {
                "job_name": self.job_name,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "timeout": self.timeout,
                "poller_options": self.poller_options,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield one event when the job is terminal (or cannot be watched), then return."""
        yield TriggerEvent(await self.wait())

    async def wait(self) -> dict[str, Any]:
        """The event payload, once the job is terminal or cannot be watched."""
        try:
            async with registry().lease(
                self.aws_conn_id, self.region_name, self.poller_options
            ) as poller:
                description = await poller.wait_until_done(self.job_name, timeout=self.timeout)
        except Exception as exc:  # not found, access denied, timeout, a bad connection
            return error_payload(self.job_name, exc)
        return payload_of(self.job_name, description)
