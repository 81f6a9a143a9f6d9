"""The library's errors, in one place.

Everything the library raises on purpose derives from :class:`AsyncOptJobError`.
AWS failures are translated at the transport boundary (see ``_transport.py``), so
code above it never sees botocore's ``ClientError``::

    AsyncOptJobError
    ├── TransportError                 a call to SageMaker failed (raised as itself when the
    │   │                              HTTP client is unusable, e.g. closed: never retried)
    │   ├── ThrottledError             rate exceeded (ThrottlingException, HTTP 429, ...): retried
    │   ├── TransientError             5xx, timeouts, dropped connections, malformed bodies: retried
    │   │   └── ConnectError           no connection could be made (refused, unknown host,
    │   │                              connect timeout): an outage once the endpoint answered
    │   ├── JobNotFoundError           ResourceNotFound after the not-found grace period
    │   ├── InvalidRequestError        ValidationException: the request itself is wrong
    │   ├── CredentialsError           missing/expired/invalid credentials or access denied:
    │   │                              never retried, raised from watch()/wait_until_done()
    │   └── ServiceError               any other error code AWS returned
    ├── JobFailedError                 wait_until_done(raise_on_failure=True) saw FAILED/STOPPED
    ├── WaitTimeoutError               the caller's timeout ran out (also a builtin TimeoutError)
    ├── PollerClosedError              the Poller was closed while a caller was still waiting
    └── StateError                     a ``state=`` file cannot be used (unwritable, not
                                       SQLite or corrupt, from a newer version, or in use)

A job that cannot be watched does not end the whole watch: it yields a
:class:`~asyncoptjob.JobErrorEvent` carrying one of the ``TransportError`` subclasses.
``CredentialsError`` is the exception: it concerns every job, so it is raised.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._events import JobStatus

__all__ = [
    "AsyncOptJobError",
    "TransportError",
    "ThrottledError",
    "TransientError",
    "ConnectError",
    "JobNotFoundError",
    "InvalidRequestError",
    "CredentialsError",
    "ServiceError",
    "JobFailedError",
    "WaitTimeoutError",
    "PollerClosedError",
    "StateError",
]


class AsyncOptJobError(Exception):
    """Base class of every error the library raises on purpose."""


class TransportError(AsyncOptJobError):
    """A call to SageMaker failed.

    Attributes:
        code: the AWS error code (``"ThrottlingException"``) or a short description of
            the local failure (``"ReadTimeoutError"``).
        operation: the API operation, e.g. ``"DescribeOptimizationJob"``.
        job_name: the job the call was about, when there was one.
        http_status: the HTTP status code, when a response arrived.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        operation: str = "",
        job_name: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation
        self.job_name = job_name
        self.http_status = http_status

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword-only attributes through pickling (multiprocessing, logging handlers).
        return (
            _rebuild_transport_error,
            (type(self), str(self), self.code, self.operation, self.job_name, self.http_status),
        )


def _rebuild_transport_error(
    cls: type[TransportError],
    message: str,
    code: str,
    operation: str,
    job_name: str | None,
    http_status: int | None,
) -> TransportError:
    return cls(message, code=code, operation=operation, job_name=job_name, http_status=http_status)


class ThrottledError(TransportError):
    """SageMaker refused the call because the account's request rate was exceeded."""


class TransientError(TransportError):
    """A failure that may go away on its own: 5xx, timeout, dropped connection, bad body."""


class ConnectError(TransientError):
    """No connection could be made: refused, a host name that does not resolve, a connect timeout.

    Retried like any transient failure once the endpoint has answered (an outage). Until
    then the request pipeline's first-answer rule (``_retry.FirstAnswer``) retries it for
    ``first_answer_timeout`` seconds at most, then ends the call with a
    :class:`TransportError` (code ``EndpointUnreachable``) naming the endpoint.

    Attributes:
        endpoint_url: the endpoint that could not be reached.
        cause: why, in words ("the connection was refused").
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint_url: str = "?",
        cause: str = "no connection could be made",
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.endpoint_url = endpoint_url
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild, args = super().__reduce__()[:2]
        return rebuild, args, {"endpoint_url": self.endpoint_url, "cause": self.cause}


class JobNotFoundError(TransportError):
    """SageMaker does not know the job (``ResourceNotFound``), even after the grace period."""


class InvalidRequestError(TransportError):
    """SageMaker rejected the request as invalid (``ValidationException``)."""


class CredentialsError(TransportError):
    """Credentials are missing, expired or invalid, or the identity lacks permission.

    Retrying with the same signature cannot help: refresh the credentials or fix the
    IAM policy (``sagemaker:DescribeOptimizationJob`` and ``sagemaker:ListOptimizationJobs``).
    """


class ServiceError(TransportError):
    """SageMaker answered with an error code the library has no special handling for."""


class JobFailedError(AsyncOptJobError):
    """Raised by ``wait_until_done(raise_on_failure=True)`` when a job did not complete.

    Attributes:
        descriptions: the final description of every job waited for, by name.
        failed: the names of the jobs that ended FAILED or STOPPED.
    """

    def __init__(self, descriptions: Mapping[str, Mapping[str, Any]], failed: list[str]) -> None:
        reasons = []
        for name in failed:
            desc = descriptions[name]
            reason = desc.get("FailureReason")
            status = desc.get("OptimizationJobStatus")
            reasons.append(f"{name} ({status}: {reason})" if reason else f"{name} ({status})")
        super().__init__(f"{len(failed)} job(s) did not complete: " + ", ".join(reasons))
        self.descriptions = dict(descriptions)
        self.failed = list(failed)


class WaitTimeoutError(AsyncOptJobError, TimeoutError):
    """The caller's ``timeout`` ran out before every job reached a terminal status.

    A last describe of each unfinished job is made at the deadline before this is raised.

    Attributes:
        pending: each unfinished job's last known status (``None`` if never observed).
        done: final descriptions of the jobs that did finish, by name.
    """

    def __init__(
        self,
        timeout: float,
        pending: Mapping[str, JobStatus | None],
        done: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        shown = ", ".join(
            f"{name}={status.value if status is not None else 'unknown'}"
            for name, status in itertools.islice(pending.items(), 10)
        )
        more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
        super().__init__(
            f"timed out after {timeout:g}s with {len(pending)} job(s) unfinished: {shown}{more}"
        )
        self.timeout = timeout
        self.pending = dict(pending)
        self.done = dict(done or {})


class PollerClosedError(AsyncOptJobError):
    """The Poller was closed (or never opened) while a caller used it."""


class StateError(AsyncOptJobError):
    """A ``state=`` file cannot be opened; nothing in it was changed or reset.

    The message names the file and says what to do.

    Attributes:
        path: the state file.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"state file {path!r}: {message}")
        self.path = path
