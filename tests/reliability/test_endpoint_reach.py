"""An endpoint that never answered fails fast; one that answered before is an outage.

Everything here stays on this machine: a closed port on 127.0.0.1, and a name under the
reserved ``.invalid`` TLD that the local resolver refuses without asking anyone.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from asyncoptjob import (
    AioBotocoreTransport,
    JobErrorEvent,
    JobNotFoundError,
    Poller,
    RetryPolicy,
    TransientError,
    TransportError,
    client_config,
    wait_until_done,
)
from asyncoptjob._errors import ConnectError
from asyncoptjob._transport import classify_client_error
from asyncoptjob.mock import MockSageMaker
from tests.helpers import FAST, FOREVER, opts


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        (f"http://127.0.0.1:{closed_port()}", "refused"),
        ("http://sagemaker.example.invalid:8080", "does not resolve"),
    ],
)
async def test_a_never_reachable_endpoint_fails_fast_naming_it(
    aio_session: Any, url: str, cause: str
) -> None:
    with pytest.raises(TransportError) as info:
        await wait_until_done(
            "job-a",
            endpoint_url=url,
            session=aio_session,
            region_name="us-east-1",
            first_answer_timeout=1.0,
        )
    error = info.value
    assert not isinstance(error, TransientError)  # not retried for RetryPolicy.max_elapsed
    assert error.code == "EndpointUnreachable"
    assert url in str(error)
    assert cause in str(error)
    assert error.job_name == "job-a"


async def test_the_transport_names_the_endpoint_and_why_it_could_not_connect(
    aio_session: Any,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    config = client_config(max_concurrency=1)
    async with aio_session.create_client(
        "sagemaker", endpoint_url=url, region_name="us-east-1", config=config
    ) as client:
        with pytest.raises(ConnectError) as info:
            await AioBotocoreTransport(client).describe("job-a")
        with pytest.warns(DeprecationWarning, match="first_answer_timeout= to the Poller"):
            AioBotocoreTransport(client, first_answer_timeout=None)
        with pytest.raises(TypeError, match="timeout"):
            AioBotocoreTransport(client, timeout=1)
    error = info.value
    assert isinstance(error, TransientError)  # an outage, unless the pipeline decides otherwise
    assert error.endpoint_url == url
    assert "refused" in error.cause
    assert error.job_name == "job-a"


async def test_an_endpoint_that_answered_then_went_away_is_retried(aio_session: Any) -> None:
    endpoint = MockSageMaker(seed=1, lifecycle=FOREVER)
    await endpoint.__aenter__()
    stopped = False
    try:
        (name,) = endpoint.seed_jobs(1)
        retry = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_elapsed=1.0)
        options = opts(endpoint, aio_session, retry=retry, first_answer_timeout=0.05)
        async with Poller(**options) as poller:
            async with poller.watch([name]) as events:
                first = await anext(events)
                assert not isinstance(first, JobErrorEvent)
                await endpoint.__aexit__(None, None, None)
                stopped = True
                last = await anext(events)
            stats = poller.stats
    finally:
        if not stopped:
            await endpoint.__aexit__(None, None, None)
    # An outage: retried for the whole RetryPolicy budget, then a transient JobErrorEvent.
    assert isinstance(last, JobErrorEvent)
    assert isinstance(last.error, TransientError)
    assert last.error.code != "EndpointUnreachable"
    assert stats.retries > 1


async def test_validation_exception_could_not_find_is_not_found(aio_session: Any) -> None:
    async with MockSageMaker(seed=1, lifecycle=FAST) as mock:
        mock.set_faults(not_found_code="ValidationException")
        with pytest.raises(JobNotFoundError) as info:
            await wait_until_done("no-such-job", not_found_grace=0.2, **opts(mock, aio_session))
        assert info.value.code == "ValidationException"
        assert info.value.job_name == "no-such-job"


def test_not_found_variants_are_classified_as_not_found() -> None:
    for code, message in (
        ("ResourceNotFound", "Could not find optimization job 'a'."),
        ("ValidationException", "Could not find optimization job 'a'."),
        ("ValidationException", "could not find job to update"),
    ):
        error = classify_client_error(
            code, message, http_status=400, operation="DescribeOptimizationJob", job_name="a"
        )
        assert isinstance(error, JobNotFoundError), (code, message)
    other = classify_client_error(
        "ValidationException", "1 validation error", http_status=400, operation="X"
    )
    assert not isinstance(other, JobNotFoundError)


async def test_a_missing_region_is_a_configuration_error(
    aio_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(ValueError, match="region_name"):
        await wait_until_done("job-a", session=aio_session, endpoint_url="http://127.0.0.1:9")


def test_first_answer_timeout_is_validated() -> None:
    with pytest.raises(ValueError, match="first_answer_timeout"):
        Poller(first_answer_timeout=0)
