"""Watch many Amazon SageMaker optimization jobs at once, fast and politely.

One asyncio core describes many jobs concurrently through aiobotocore, with bounded
concurrency and one shared, throttling-aware rate budget::

    from asyncoptjob import watch, wait_until_done

    async for event in watch(["job-a", "job-b"], region_name="us-east-1"):
        print(event.job_name, event.previous_status, "->", event.status)

    description = await wait_until_done("job-a", timeout=3600)

See :class:`Poller` for a long-lived hub shared by a service, :mod:`asyncoptjob.mock`
for a local SageMaker endpoint to test against, and :mod:`asyncoptjob.testing` for a
fake transport and a manual clock to unit-test code built on the library.
"""

from __future__ import annotations

import warnings as _warnings
from typing import Any as _Any

from ._api import wait_until_done, watch
from ._client import new_session
from ._clock import Clock, MonotonicClock
from ._errors import (
    AsyncOptJobError,
    CredentialsError,
    InvalidRequestError,
    JobFailedError,
    JobNotFoundError,
    PollerClosedError,
    ServiceError,
    StateError,
    ThrottledError,
    TransientError,
    TransportError,
    WaitTimeoutError,
)
from ._events import (
    Description,
    Event,
    EventSource,
    JobErrorEvent,
    JobStatus,
    JobSummary,
    StatusChange,
)
from ._names import validate_names
from ._options import PollerOptions
from ._policy import PollPolicy
from ._poller import Poller
from ._ratelimit import AdaptiveRateLimiter, RateBudget, RateLimiterStatistics
from ._retry import RetryPolicy
from ._stats import FleetStats, PollerHealth, PollerStats
from ._sweep import SweepPolicy
from ._transport import AioBotocoreTransport, Transport, client_config
from ._watch import Watch

__version__ = "0.1.0"
"""The installed version of asyncoptjob."""

__all__ = [
    # the API
    "watch",
    "wait_until_done",
    "Poller",
    "Watch",
    "PollerOptions",
    "validate_names",
    # events
    "Event",
    "StatusChange",
    "JobErrorEvent",
    "JobStatus",
    "Description",
    "JobSummary",
    "EventSource",
    # strategies
    "PollPolicy",
    "RetryPolicy",
    "SweepPolicy",
    "RateBudget",
    "AdaptiveRateLimiter",
    "RateLimiterStatistics",
    "Clock",
    "MonotonicClock",
    # the AWS boundary
    "Transport",
    "AioBotocoreTransport",
    "client_config",
    "new_session",
    # statistics
    "PollerStats",
    "PollerHealth",
    "FleetStats",
    # errors
    "AsyncOptJobError",
    "TransportError",
    "ThrottledError",
    "TransientError",
    "JobNotFoundError",
    "InvalidRequestError",
    "CredentialsError",
    "ServiceError",
    "JobFailedError",
    "WaitTimeoutError",
    "PollerClosedError",
    "StateError",
    "__version__",
]


def __getattr__(name: str) -> _Any:
    # Deprecated names, kept for one release.
    if name == "JobError":
        _warnings.warn(
            "asyncoptjob.JobError was renamed JobErrorEvent (it is an event, not an exception); "
            "the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return JobErrorEvent
    raise AttributeError(f"module 'asyncoptjob' has no attribute {name!r}")
