"""The one boundary to AWS: something that describes a job and lists jobs.

Everything above this module talks to a :class:`Transport`, never to botocore. The
aiobotocore implementation translates every botocore failure into the library's own
errors (``_errors.py``) here, in one place, the way httpx maps httpcore's exceptions.
It makes one attempt per call and keeps no state between calls: whether a failure is
retried is the request pipeline's decision (``_pipeline.py`` with ``_retry.py``). A
failure to connect at all is told apart as a ``ConnectError`` carrying the endpoint
and the cause, for the pipeline's first-answer rule.
"""

from __future__ import annotations

import socket
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import aiohttp
import anyio.lowlevel
import botocore.client
import botocore.config
import botocore.exceptions as bce
import botocore.session
from aiobotocore.client import AioBaseClient
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from ._breath import take_turn
from ._client import SERVICE, prepare_session
from ._errors import (
    ConnectError,
    CredentialsError,
    InvalidRequestError,
    JobNotFoundError,
    ServiceError,
    ThrottledError,
    TransientError,
    TransportError,
)
from ._operations import DESCRIBE, LIST

if TYPE_CHECKING:
    from types_aiobotocore_sagemaker import SageMakerClient
    from types_aiobotocore_sagemaker.type_defs import ListOptimizationJobsResponseTypeDef

    from ._events import Description

__all__ = [
    "AioBotocoreTransport",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "CREDENTIAL_CODES",
    "Transport",
    "classify_client_error",
    "open_transport",
]

#: Connections kept beyond ``max_concurrency`` for list sweeps (one List call at a time).
SWEEP_CONNECTIONS = 1

# The codes the AWS SDKs treat as throttling (botocore's retryhandler / standard mode).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
    }
)
# Retrying the same signature cannot fix these: credentials must change.
CREDENTIAL_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidClientTokenId",
        "MissingAuthenticationTokenException",
        "SignatureDoesNotMatch",
    }
)
NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException"})
VALIDATION_CODES = frozenset({"ValidationException", "ValidationError"})
#: How other SageMaker Describe calls say a resource is missing: a ValidationException
#: whose message says it "could not find" it (e.g. "Could not find job to update").
NOT_FOUND_MESSAGES = ("could not find",)

_CREDENTIAL_HINT = {
    "AccessDeniedException": "the identity lacks permission (allow"
    " sagemaker:DescribeOptimizationJob and sagemaker:ListOptimizationJobs)",
    "ExpiredTokenException": "the session token has expired: refresh the credentials",
    "UnrecognizedClientException": "the access key is not recognised: check the credentials",
    "InvalidSignatureException": "the request signature is invalid: check the secret key and"
    " the machine's clock",
}


@runtime_checkable
class Transport(Protocol):
    """What the core needs from AWS. Implement it to run the core on anything."""

    async def describe(self, name: str) -> Description:
        """Return the DescribeOptimizationJob response for ``name``.

        Raises:
            TransportError: a subclass saying why the call failed.
        """
        ...

    async def list_jobs(self, **params: Any) -> ListOptimizationJobsResponseTypeDef:
        """Return one ListOptimizationJobs page for ``params``.

        Raises:
            TransportError: a subclass saying why the call failed.
        """
        ...


def classify_client_error(
    code: str,
    message: str,
    *,
    http_status: int | None,
    operation: str,
    job_name: str | None = None,
) -> TransportError:
    """Translate an AWS error code into the library's error."""
    kwargs: dict[str, Any] = {
        "code": code,
        "operation": operation,
        "job_name": job_name,
        "http_status": http_status,
    }
    what = f"{operation}({job_name})" if job_name else operation
    if code in THROTTLING_CODES or http_status == 429:
        return ThrottledError(f"{what} was throttled: {code}: {message}", **kwargs)
    if code in CREDENTIAL_CODES:
        hint = _CREDENTIAL_HINT.get(code, "check the AWS credentials and IAM policy")
        return CredentialsError(f"{what} was refused ({code}: {message}); {hint}", **kwargs)
    if code in NOT_FOUND_CODES:
        return JobNotFoundError(
            f"optimization job {job_name!r} was not found ({code}: {message})", **kwargs
        )
    if code in VALIDATION_CODES and any(m in message.lower() for m in NOT_FOUND_MESSAGES):
        return JobNotFoundError(
            f"optimization job {job_name!r} was not found ({code}: {message})", **kwargs
        )
    if code in VALIDATION_CODES:
        return InvalidRequestError(f"{what} is invalid: {code}: {message}", **kwargs)
    if code in TRANSIENT_CODES or (http_status is not None and http_status >= 500):
        return TransientError(f"{what} failed: {code or http_status}: {message}", **kwargs)
    return ServiceError(f"{what} failed: {code}: {message}", **kwargs)


# What an HTTP client failure may wrap and still be worth retrying: network trouble.
_NETWORK_FAILURES: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    aiohttp.http_exceptions.HttpProcessingError,
    OSError,
    TimeoutError,
)


def _endpoint_url(client: object) -> str:
    """The endpoint an aiobotocore client calls ("?" if it does not say)."""
    return str(getattr(getattr(client, "meta", None), "endpoint_url", "?"))


def _client_is_closed(client: object) -> bool:
    """True if an aiobotocore client's HTTP session was closed (or never opened)."""
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    # aiobotocore's AIOHTTPSession keeps ``_sessions`` None outside ``async with``.
    return http is not None and getattr(http, "_sessions", ()) is None


def _translate(
    exc: Exception, operation: str, job_name: str | None, client: object = None
) -> TransportError:
    """The library's error for what a botocore call raised (``client``: the caller's)."""
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        return classify_client_error(
            str(error.get("Code", "")),
            str(error.get("Message", "")),
            http_status=meta.get("HTTPStatusCode"),
            operation=operation,
            job_name=job_name,
        )
    what = f"{operation}({job_name})" if job_name else operation
    kind = type(exc).__name__
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return CredentialsError(
            f"{what}: no AWS credentials found ({kind}); set AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or pass session=/client=",
            code=kind,
            operation=operation,
            job_name=job_name,
        )
    if isinstance(exc, bce.NoRegionError):
        return CredentialsError(
            f"{what}: no AWS region configured; pass region_name= or set AWS_DEFAULT_REGION",
            code=kind,
            operation=operation,
            job_name=job_name,
        )
    wrapped = exc.kwargs.get("error") if type(exc) is bce.HTTPClientError else None
    if wrapped is not None and not isinstance(wrapped, _NETWORK_FAILURES):
        # botocore's catch-all for what the HTTP client raised that is not a network
        # error: a closed client, a closed aiohttp session, a bug. Retrying the same
        # call cannot fix it, so it must not be retried for ``max_elapsed`` seconds.
        if _client_is_closed(client):
            reason = (
                "the aiobotocore client is closed (or was never opened with `async with`);"
                " keep a client passed as client= open while the library uses it, or let"
                " the library create its own (pass session=/region_name=/endpoint_url=)"
            )
        else:
            reason = f"the HTTP client failed locally ({type(wrapped).__name__}: {wrapped})"
        return TransportError(
            f"{what} failed: {reason}", code="ClientError", operation=operation, job_name=job_name
        )
    message = f"{what} failed: {kind}: {exc}"
    cause = _unreachable_cause(exc)
    if cause is not None:
        return ConnectError(
            message,
            endpoint_url=_endpoint_url(client),
            cause=cause,
            code=kind,
            operation=operation,
            job_name=job_name,
        )
    # Dropped connections, read timeouts, and bodies botocore could not parse.
    return TransientError(message, code=kind, operation=operation, job_name=job_name)


_TRANSPORT_FAILURES: tuple[type[Exception], ...] = (
    bce.BotoCoreError,
    bce.ClientError,
    OSError,
    TimeoutError,
)


def _unreachable_cause(exc: BaseException) -> str | None:
    """Why no connection was made (refused, name unknown, timed out), or None if one was."""
    if isinstance(exc, bce.ConnectTimeoutError):
        return "the connection timed out"
    if not isinstance(exc, bce.EndpointConnectionError):
        return None
    seen: BaseException | None = exc.kwargs.get("error") or exc.__cause__ or exc.__context__
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(seen, ConnectionRefusedError):
            return "the connection was refused"
        seen = getattr(seen, "os_error", None) or seen.__cause__ or seen.__context__
    text = str(exc).lower()
    if "name or service not known" in text or "nodename nor servname" in text:
        return "the host name does not resolve"
    return "no connection could be made"


#: Constructor arguments of earlier releases: accepted, ignored, with a DeprecationWarning.
_RETIRED_ARGUMENTS = ("first_answer_timeout", "clock")


class AioBotocoreTransport:
    """The :class:`Transport` over an aiobotocore SageMaker client.

    The client is borrowed: this object never closes it. Use :func:`open_transport`
    to have one created and closed for you.

    Each call is one attempt; its failure is translated into the library's errors and
    raised. A call that cannot connect (refused, a host name that does not resolve, a
    connect timeout) raises ``ConnectError``, a :class:`~asyncoptjob.TransientError`
    naming the endpoint and the cause. Whether and how long it is retried
    (``first_answer_timeout`` for an endpoint that never answered) is the request
    pipeline's decision, not the transport's.

    Args:
        client: an open aiobotocore SageMaker client.
        **retired: ``first_answer_timeout=`` and ``clock=`` of earlier releases,
            accepted with a ``DeprecationWarning`` and ignored: pass
            ``first_answer_timeout=`` to the Poller instead.
    """

    __slots__ = ("_client",)

    def __init__(self, client: SageMakerClient, **retired: object) -> None:
        if not hasattr(client, "describe_optimization_job"):
            raise TypeError(
                "client must be an aiobotocore SageMaker client, opened with "
                "`async with session.create_client('sagemaker', ...) as client`, "
                f"got {type(client).__name__}"
            )
        if isinstance(client, botocore.client.BaseClient) and not isinstance(client, AioBaseClient):
            # A boto3/botocore client would block the event loop on every call.
            raise TypeError(
                "client must be an aiobotocore SageMaker client, got a synchronous "
                "boto3/botocore client: create it with "
                "aiobotocore.session.get_session().create_client('sagemaker', ...)"
            )
        if retired:
            _warn_retired(retired)
        # Each call waits for its turn on the loop (``_breath.py``) before botocore builds
        # and signs the request; within a Poller also before it parses the answer.
        self._client = client

    @property
    def endpoint_url(self) -> str:
        """The endpoint the client calls."""
        return _endpoint_url(self._client)

    async def describe(self, name: str) -> Description:
        # Its body is checked where every transport's is (``_answers``): a 200 whose body
        # was not JSON parses as {"ResponseMetadata": ...} alone, a malformed answer.
        response = await self._send(
            DESCRIBE,
            name,
            partial(self._client.describe_optimization_job, OptimizationJobName=name),
        )
        return cast("Description", response)

    async def list_jobs(self, **params: Any) -> ListOptimizationJobsResponseTypeDef:
        response = await self._send(
            LIST, None, partial(self._client.list_optimization_jobs, **params)
        )
        return cast("ListOptimizationJobsResponseTypeDef", response)

    async def _send(
        self, operation: str, job_name: str | None, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Make ``call`` once; raise its failure as the library's error."""
        await take_turn()
        try:
            return await call()
        except _TRANSPORT_FAILURES as exc:
            raise _translate(exc, operation, job_name, self._client) from exc

    def __repr__(self) -> str:
        return f"<AioBotocoreTransport endpoint={self.endpoint_url}>"


def _warn_retired(retired: dict[str, object]) -> None:
    unknown = sorted(set(retired) - set(_RETIRED_ARGUMENTS))
    if unknown:
        raise TypeError(f"AioBotocoreTransport() got an unexpected keyword argument {unknown[0]!r}")
    warnings.warn(
        f"AioBotocoreTransport({', '.join(f'{name}=' for name in retired)}) is deprecated"
        " and ignored: the request pipeline retries, so pass first_answer_timeout= to the"
        " Poller (or watch() / wait_until_done()) instead",
        DeprecationWarning,
        stacklevel=3,
    )


def client_config(max_concurrency: int, config: AioConfig | None = None) -> AioConfig:
    """The client config the library uses: botocore retries off, pool sized to concurrency.

    The pool holds ``max_concurrency`` connections for describes plus one for a sweep's
    List call: with exactly ``max_concurrency``, busy describe workers take every freed
    connection back at once and a List call waits until the describes stop. The caller's
    ``config`` is kept, except that retries are always switched off (the library retries
    itself; leaving botocore's on would retry every failure twice over) and a smaller pool
    is enlarged.

    Raises:
        TypeError: ``config`` is not a botocore ``Config`` (e.g. ``AioConfig``).
    """
    if config is not None and not isinstance(config, botocore.config.Config):
        raise TypeError(
            "config must be an aiobotocore AioConfig (or a botocore Config), "
            f"e.g. AioConfig(read_timeout=10), got {type(config).__name__}"
        )
    pool = max_concurrency + SWEEP_CONNECTIONS
    ours = AioConfig(
        retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=pool
    )
    if config is None:
        return ours
    merged = config.merge(AioConfig(retries={"mode": "standard", "total_max_attempts": 1}))
    if getattr(config, "max_pool_connections", 10) < pool:
        merged = merged.merge(AioConfig(max_pool_connections=pool))
    return merged


def _check_connection_options(session: object, region_name: object, endpoint_url: object) -> None:
    """Raise ``TypeError`` naming the option when a connection setting has the wrong type.

    Caught here, before any client exists, instead of as an AttributeError from deep
    inside botocore (or a synchronous client that would block the event loop).
    """
    if session is not None:
        if isinstance(session, botocore.session.Session) and not isinstance(session, AioSession):
            raise TypeError(
                "session must be an aiobotocore AioSession (aiobotocore.session.get_session()),"
                " got a synchronous botocore Session, whose clients would block the event loop"
            )
        if not callable(getattr(session, "create_client", None)):
            kind = type(session)
            raise TypeError(
                "session must be an aiobotocore AioSession (aiobotocore.session.get_session()),"
                f" got {kind.__module__}.{kind.__qualname__}"
            )
    for name, value in (("region_name", region_name), ("endpoint_url", endpoint_url)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")


@asynccontextmanager
async def open_transport(
    *,
    client: SageMakerClient | None = None,
    session: AioSession | None = None,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: AioConfig | None = None,
    max_concurrency: int = 16,
) -> AsyncIterator[AioBotocoreTransport]:
    """Yield a transport over ``client``, or over a client created (and closed) here.

    Creating one holds the event loop only for what must run on it: the data and config
    files it needs are read in a worker thread first, once per process for the sessions
    created here (``_client.py``), once per session for a ``session`` passed in.

    Raises:
        ValueError: no region is configured (pass ``region_name`` or set
            ``AWS_DEFAULT_REGION``), or conflicting options.
    """
    if client is not None:
        if session is not None or endpoint_url is not None or config is not None:
            raise ValueError(
                "client= cannot be combined with session=, endpoint_url= or config=: "
                "configure the client you pass instead"
            )
        transport = AioBotocoreTransport(client)
        with _parsing_takes_turns(transport, client):
            yield transport
        return
    _check_connection_options(session, region_name, endpoint_url)
    session = await prepare_session(session)
    kwargs: dict[str, Any] = {"config": client_config(max_concurrency, config)}
    if region_name is not None:
        kwargs["region_name"] = region_name
    if endpoint_url is not None:
        kwargs["endpoint_url"] = endpoint_url
    async with AsyncExitStack() as stack:
        try:
            created = await stack.enter_async_context(session.create_client(SERVICE, **kwargs))
        except bce.NoRegionError:
            # Configuration, not credentials: nothing was sent.
            raise ValueError(
                "no AWS region configured: pass region_name= (e.g. 'us-east-1') or set"
                " AWS_DEFAULT_REGION (or region in the AWS profile)"
            ) from None
        # What the caller does next (start its hub) is a step of its own.
        await anyio.lowlevel.checkpoint()
        transport = AioBotocoreTransport(created)
        with _parsing_takes_turns(transport, created):
            yield transport


@contextmanager
def _parsing_takes_turns(transport: AioBotocoreTransport, client: Any) -> Iterator[None]:
    """While the transport is in use, ``client`` waits for its turn on the loop
    (``_breath.py``) before it parses an answer: a 100-job List page is several ms of
    botocore's work, a step of its own. A caller's client gets its handler back out when
    the transport is done (one handler per transport, so that each takes its own out)."""
    event = f"before-parse.{SERVICE}"
    unique_id = f"asyncoptjob-turn-{id(transport)}"
    # aiobotocore awaits a handler that returns an awaitable.
    handler = cast("Callable[..., None]", take_turn)
    client.meta.events.register(event, handler, unique_id=unique_id)
    try:
        yield
    finally:
        client.meta.events.unregister(event, unique_id=unique_id)
