"""Shared fixtures: dummy AWS credentials, the mock SageMaker endpoint, clients to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import structlog
from aiobotocore.session import AioSession, get_session
from botocore.config import Config

from asyncoptjob.mock import MockSageMaker
from asyncoptjob.testing import RedisServer
from tests.helpers import DUMMY_CREDENTIALS, FAST, NO_RETRIES, REGION, sync_sagemaker_client


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point every AWS SDK at dummy credentials and away from the user's AWS config."""
    missing = tmp_path_factory.getbasetemp() / "no-such-aws-file"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _structlog_as_it_was() -> Iterator[None]:
    """Leave structlog as the test found it, unconfigured included.

    ``structlog.configure(**saved)`` alone marks it configured: the library's logs would
    then take structlog's default route (print to stdout) in every later test.
    """
    configured, saved = structlog.is_configured(), structlog.get_config()
    yield
    structlog.reset_defaults()
    if configured:
        structlog.configure(**saved)


@pytest.fixture(scope="session")
def aio_session() -> AioSession:
    """One aiobotocore session for the run: it caches the (large) SageMaker model."""
    return get_session()


@pytest.fixture
async def mock() -> AsyncIterator[MockSageMaker]:
    """A running mock endpoint with a sub-second lifecycle and no faults."""
    async with MockSageMaker(seed=1, lifecycle=FAST) as endpoint:
        yield endpoint


@pytest.fixture
def make_aio_client(
    aio_session: AioSession,
) -> Callable[..., AbstractAsyncContextManager[Any]]:
    """Return ``make(url, config=None)``: an aiobotocore SageMaker client context.

    The client uses dummy credentials and botocore retries off; *config* is
    merged on top (e.g. ``Config(parameter_validation=False)`` to send values
    botocore would reject before they reach the endpoint).
    """

    def make(url: str, config: Config | None = None) -> AbstractAsyncContextManager[Any]:
        merged = NO_RETRIES if config is None else NO_RETRIES.merge(config)
        context: AbstractAsyncContextManager[Any] = aio_session.create_client(
            "sagemaker", region_name=REGION, endpoint_url=url, config=merged, **DUMMY_CREDENTIALS
        )
        return context

    return make


@pytest.fixture
async def aio_client(
    mock: MockSageMaker, make_aio_client: Callable[..., AbstractAsyncContextManager[Any]]
) -> AsyncIterator[Any]:
    """An aiobotocore SageMaker client to `mock`, with botocore retries off."""
    async with make_aio_client(mock.url) as client:
        yield client


@pytest.fixture
def threaded_mock() -> Iterator[MockSageMaker]:
    """A mock endpoint served from a background thread, for synchronous clients."""
    with MockSageMaker(seed=1, lifecycle=FAST).run_in_thread() as endpoint:
        yield endpoint


@pytest.fixture
def boto3_client(threaded_mock: MockSageMaker) -> Iterator[Any]:
    """A boto3 SageMaker client to `threaded_mock`, with botocore retries off."""
    with sync_sagemaker_client(threaded_mock.url) as client:
        yield client


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server on a free loopback port (the fleet tests stop and restart it)."""
    with RedisServer() as server:
        yield server
