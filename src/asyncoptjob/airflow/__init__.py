"""Apache Airflow integration: a deferrable operator, a sensor and a trigger.

Every :class:`OptimizationJobTrigger` in one triggerer process shares one
:class:`~asyncoptjob.Poller` per (connection, Region, options): one aiobotocore client
and one rate budget for every deferred task, instead of a client and a polling loop
per task. Install with the ``airflow`` extra (Airflow 3 and the Amazon provider)::

    pip install "asyncoptjob[airflow]"

See the how-to page "Use with Airflow".
"""

from __future__ import annotations

try:
    import airflow.providers.amazon  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "asyncoptjob.airflow needs Apache Airflow 3 and the Amazon provider: "
        'pip install "asyncoptjob[airflow]"'
    ) from exc

from ._operators import SageMakerCreateOptimizationJobOperator, SageMakerOptimizationJobSensor
from ._registry import PollerRegistry, RegistryStats, registry
from ._trigger import OptimizationJobTrigger

__all__ = [
    "OptimizationJobTrigger",
    "SageMakerCreateOptimizationJobOperator",
    "SageMakerOptimizationJobSensor",
    "PollerRegistry",
    "RegistryStats",
    "registry",
]
