"""Connecting the command line to SageMaker: session, region, credentials, a first check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import botocore.exceptions as bce
from aiobotocore.config import AioConfig

from .. import AioBotocoreTransport, CredentialsError, TransportError, client_config, new_session
from ._exit import CliError

if TYPE_CHECKING:
    from types_aiobotocore_sagemaker import SageMakerClient

__all__ = ["Connection", "check_reachable", "open_client"]

# Failures that mean "nothing answered at that address", as opposed to an answer we dislike.
_UNREACHABLE_CODES = frozenset({"EndpointConnectionError", "ConnectTimeoutError"})


@dataclass(frozen=True, slots=True)
class Connection:
    """Where and as whom to call SageMaker (the CLI's connection options)."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    max_concurrency: int = 16


def _check_endpoint_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(
            f"--endpoint-url {url!r} is not a URL: give one like http://127.0.0.1:8080"
            " (leave it out to use the Region's SageMaker endpoint)"
        )


@asynccontextmanager
async def open_client(connection: Connection) -> AsyncIterator[SageMakerClient]:
    """Yield a SageMaker client for ``connection``, closed on exit.

    Checks what can be checked without a request (profile, region, credentials) and
    raises :class:`CliError` saying what to set. The client has botocore's retries off
    (the library retries itself) and a connection pool sized to ``max_concurrency``.
    """
    if connection.endpoint_url is not None:
        _check_endpoint_url(connection.endpoint_url)
    try:
        # The library's own kind of session, its files read in a worker thread.
        session = await anyio.to_thread.run_sync(new_session, connection.profile)
        region = connection.region or session.get_config_variable("region")
        credentials = await session.get_credentials()
    except bce.ProfileNotFound:
        raise CliError(
            f"AWS profile {connection.profile!r} was not found: check --profile/AWS_PROFILE "
            "against ~/.aws/config and ~/.aws/credentials"
        ) from None
    except bce.BotoCoreError as exc:
        raise CliError(f"could not load AWS credentials: {exc}") from None
    if not region:
        raise CliError(
            "no AWS region: pass --region, or set AWS_DEFAULT_REGION (or region in your profile)"
        )
    if credentials is None:
        raise CliError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or pass --profile / set AWS_PROFILE"
        )
    config = client_config(connection.max_concurrency, AioConfig(connect_timeout=10))
    kwargs: dict[str, Any] = {"region_name": region, "config": config}
    if connection.endpoint_url is not None:
        kwargs["endpoint_url"] = connection.endpoint_url
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(session.create_client("sagemaker", **kwargs))
        try:
            yield client
        finally:
            # Close the connections even when the run was cancelled (Ctrl-C).
            with anyio.CancelScope(shield=True):
                await stack.aclose()


async def check_reachable(client: SageMakerClient, name: str, *, attempts: int = 3) -> None:
    """Describe ``name`` once, to fail fast on an unreachable endpoint or bad credentials.

    Without this, the library would (rightly) keep retrying connection errors for
    minutes; a person at a terminal wants to hear about a typo in ``--endpoint-url`` now.
    Any other answer (found, not found, throttled) is the poller's business.

    Raises:
        CliError: nothing answers at the endpoint, or the credentials are refused.
    """
    # Its own quick attempts below, straight on the transport: one attempt per call.
    transport = AioBotocoreTransport(client)
    for attempt in range(1, attempts + 1):
        error = await _probe(transport, name)
        if error is None or error.code not in _UNREACHABLE_CODES:
            return  # any answer means something is there: the poller takes over
        if attempt == attempts:
            raise CliError(
                f"cannot reach the SageMaker endpoint {client.meta.endpoint_url} ({error.code}): "
                "check --endpoint-url, --region and the network"
            )
        await anyio.sleep(0.25 * attempt)


async def _probe(transport: AioBotocoreTransport, name: str) -> TransportError | None:
    try:
        await transport.describe(name)
    except CredentialsError as exc:
        raise CliError(str(exc)) from None
    except TransportError as exc:
        return exc
    return None
