"""Careless input, everywhere it can enter: a clear error at once, never a hang.

``tests/core/test_public_api.py`` covers the common cases (invalid names for ``watch``,
the main option values for ``Poller`` and ``watch``); this file covers the rest: every
entry point, every option and strategy parameter, odd types, and clients or sessions
that are closed or of the wrong kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio
import boto3
import botocore.session
import pytest

from asyncoptjob import (
    AdaptiveRateLimiter,
    JobErrorEvent,
    Poller,
    PollPolicy,
    RetryPolicy,
    TransportError,
    wait_until_done,
    watch,
)
from asyncoptjob.mock import MockSageMaker
from tests.helpers import DESCRIBE, FAST_POLL, FOREVER, OpenMock, quick_retry_opts

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing may ever be sent there

# -- names ---------------------------------------------------------------------------------


def test_name_length_boundaries() -> None:
    watch(["a", "a" * 63, "a-b", "a--b", "A1"], endpoint_url=NOWHERE)
    with pytest.raises(ValueError, match="1-63"):
        watch(["a" * 64], endpoint_url=NOWHERE)


@pytest.mark.parametrize("bad", [[1], [None], [b"job-a"], [["job-a"]], [3.5], ["ok", object()]])
def test_a_name_that_is_not_a_string_is_listed(bad: list[object]) -> None:
    with pytest.raises(ValueError, match="not valid"):
        watch(bad, endpoint_url=NOWHERE)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [None, 42, b"job-a", bytearray(b"job-a"), 3.5])
def test_names_of_the_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError, match="str or an iterable of str"):
        watch(bad, endpoint_url=NOWHERE)  # type: ignore[arg-type]


def test_a_huge_or_hostile_name_is_not_echoed_in_full() -> None:
    with pytest.raises(ValueError, match="not valid") as info:
        watch(["x" * 1_000_000, "line\nbreak\r\x1b[31m"], endpoint_url=NOWHERE)
    message = str(info.value)
    assert len(message) < 1_000
    assert "1000000 characters" in message
    # repr escapes control characters: the message cannot forge log lines or colours.
    assert "\n" not in message
    assert "\x1b" not in message


def test_ten_thousand_bad_names_make_a_short_message() -> None:
    with pytest.raises(ValueError, match="10000 job names are not valid") as info:
        watch([f"bad_{i}" for i in range(10_000)], endpoint_url=NOWHERE)
    assert "and 9980 more" in str(info.value)
    assert len(str(info.value)) < 2_000


def test_names_from_a_generator_are_read_once() -> None:
    names = (f"job-{i}" for i in range(3))
    assert "3 job(s): job-0, job-1, job-2" in repr(watch(names, endpoint_url=NOWHERE))


async def test_every_entry_point_validates_before_any_request(aio_session: Any) -> None:
    async with (
        MockSageMaker(seed=401) as mock,
        Poller(**quick_retry_opts(mock, aio_session)) as poller,
    ):
        bad = ["ok-name", "$(reboot)"]
        with pytest.raises(ValueError, match="not valid"):
            watch(bad, **quick_retry_opts(mock, aio_session))
        with pytest.raises(ValueError, match="not valid"):
            await wait_until_done(bad, **quick_retry_opts(mock, aio_session))
        with pytest.raises(ValueError, match="not valid"):
            poller.watch(bad)
        with pytest.raises(ValueError, match="not valid"):
            await poller.wait_until_done(bad)
        assert mock.stats().counters == {}


async def test_names_are_validated_even_on_a_poller_that_is_not_open() -> None:
    poller = Poller(endpoint_url=NOWHERE)
    with pytest.raises(ValueError, match="not valid"):
        poller.watch(["a_b"])
    with pytest.raises(ValueError, match="not valid"):
        await poller.wait_until_done(["a_b"])


async def test_duplicates_collapse_everywhere(aio_session: Any) -> None:
    async with MockSageMaker(seed=402, lifecycle=FOREVER) as mock:
        (name,) = mock.seed_jobs(1)
        async with Poller(**quick_retry_opts(mock, aio_session)) as poller:
            with pytest.raises(TimeoutError):
                async for event in poller.watch([name, name, name], timeout=0.2):
                    assert event.job_name == name
                    assert event.previous_status is None  # one first event, not three
            assert poller.stats.jobs_watched == 1
        slow = PollPolicy(interval=60, jitter=0)
        before = mock.stats().count(DESCRIBE)
        with pytest.raises(TimeoutError) as info:
            await wait_until_done(
                [name] * 5, timeout=2, **quick_retry_opts(mock, aio_session, poll_interval=slow)
            )
        assert list(info.value.pending) == [name]  # type: ignore[attr-defined]
        # One describe at the start and one at the deadline: not five of each.
        assert mock.stats().count(DESCRIBE) - before == 2


# -- options -------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf

BAD_OPTIONS = (
    [("max_concurrency", value) for value in (0, -1, 2.5, True, "4", None, NAN)]
    + [("max_rate", value) for value in (0, -0.5, NAN, INF, "5", True)]
    + [("poll_interval", value) for value in (0, -1, NAN, INF, "5", True)]
    + [("not_found_grace", value) for value in (-1, NAN, "5", True)]
    + [("timeout", value) for value in (0, -1, NAN, INF, "5", True)]
    + [("retry", value) for value in ("fast", {"max_attempts": 3}, 3)]
)


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS)
async def test_bad_option_values_name_the_option_at_every_entry_point(
    option: str, value: object
) -> None:
    bad: dict[str, Any] = {option: value, "endpoint_url": NOWHERE}
    with pytest.raises(ValueError, match=option):
        Poller(**bad)
    with pytest.raises(ValueError, match=option):
        watch(["job-a"], **bad)
    with pytest.raises(ValueError, match=option):
        await wait_until_done(["job-a"], **bad)
    with pytest.raises(ValueError, match=option):
        await wait_until_done("job-a", **bad)  # the one-name form too


@pytest.mark.parametrize("value", [0, -1, NAN, INF, "5", True])
async def test_bad_per_call_timeouts_name_the_option(aio_session: Any, value: object) -> None:
    async with (
        MockSageMaker(seed=403) as mock,
        Poller(**quick_retry_opts(mock, aio_session)) as poller,
    ):
        with pytest.raises(ValueError, match="timeout"):
            poller.watch(["job-a"], timeout=value)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout"):
            await poller.wait_until_done(["job-a"], timeout=value)  # type: ignore[arg-type]
        assert mock.stats().counters == {}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"interval": NAN}, "interval"),
        ({"interval": INF}, "interval"),
        ({"interval": -1}, "interval"),
        ({"interval": "1"}, "interval"),
        ({"interval": 1, "max_interval": 0}, "max_interval"),
        ({"interval": 1, "max_interval": NAN}, "max_interval"),
        ({"backoff": NAN}, "backoff"),
        ({"backoff": 101}, "backoff"),
        ({"backoff": True}, "backoff"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": NAN}, "jitter"),
        ({"status_intervals": {"COMPLETED": 0}}, "status_intervals"),
        ({"status_intervals": {"STARTING": NAN}}, "status_intervals"),
        ({"status_intervals": {42: 1}}, "status_intervals"),
        ({"not_found_interval": -1}, "not_found_interval"),
        ({"not_found_interval": NAN}, "not_found_interval"),
        ({"not_found_interval": INF}, "not_found_interval"),
    ],
)
def test_poll_policy_rejects_every_bad_parameter(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        PollPolicy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"initial_wait": -1}, "initial_wait"),
        ({"initial_wait": NAN}, "initial_wait"),
        ({"max_wait": 0}, "max_wait"),
        ({"max_wait": INF}, "max_wait"),
        ({"max_elapsed": 0}, "max_elapsed"),
        ({"max_elapsed": -5}, "max_elapsed"),
        ({"max_elapsed": INF}, "max_elapsed"),
        ({"max_attempts": -1}, "max_attempts"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_attempts": "3"}, "max_attempts"),
    ],
)
def test_retry_policy_rejects_every_bad_parameter(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_rate": NAN}, "max_rate"),
        ({"max_rate": INF}, "max_rate"),
        ({"max_rate": -1}, "max_rate"),
        ({"burst": 0}, "burst"),
        ({"burst": NAN}, "burst"),
        ({"min_rate": 0}, "min_rate"),
        ({"min_rate": NAN}, "min_rate"),
        ({"beta": 0}, "beta"),
        ({"beta": 1}, "beta"),
        ({"beta": NAN}, "beta"),
        ({"scale": -1}, "scale"),
        ({"scale": NAN}, "scale"),
    ],
)
def test_rate_limiter_rejects_every_bad_parameter(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AdaptiveRateLimiter(**kwargs)


# -- clients, sessions and connection settings ------------------------------------------------


async def _first_outcome(**options: Any) -> Any:
    """What a caller gets: wait_until_done's result or error, within a hard bound."""
    with anyio.fail_after(10):  # a clear error, never a hang
        try:
            return await wait_until_done(["job-00000"], poll_interval=FAST_POLL, **options)
        except Exception as exc:
            return exc


async def test_a_closed_client_is_a_clear_error_not_a_hang(
    checked_mock: OpenMock,
    make_aio_client: Callable[..., Any],
) -> None:
    mock = await checked_mock(seed=404)
    mock.seed_jobs(2)
    async with make_aio_client(mock.url) as client:
        pass  # closed on leaving the block, then (wrongly) handed to the library
    outcome = await _first_outcome(client=client)
    assert type(outcome) is TransportError  # not a retried TransientError
    assert "client is closed" in str(outcome)
    with anyio.fail_after(10):
        async with Poller(client=client, poll_interval=FAST_POLL) as poller:
            events = [e async for e in poller.watch(["job-00000", "job-00001"])]
    assert {e.job_name for e in events} == {"job-00000", "job-00001"}
    assert all(isinstance(e, JobErrorEvent) and "closed" in str(e.error) for e in events)
    assert mock.stats().counters == {}  # nothing was sent


async def test_a_client_context_that_was_never_entered_is_a_type_error(
    make_aio_client: Callable[..., Any],
) -> None:
    context = make_aio_client(NOWHERE)  # `client=session.create_client(...)`, no `async with`
    outcome = await _first_outcome(client=context)
    assert isinstance(outcome, TypeError)
    assert "async with" in str(outcome)
    async with context:  # the test, unlike the careless caller, cleans up after itself
        pass


async def test_a_client_closed_mid_watch_ends_every_job_clearly(
    checked_mock: OpenMock,
    make_aio_client: Callable[..., Any],
) -> None:
    mock = await checked_mock(seed=405, lifecycle=FOREVER)
    names = mock.seed_jobs(5)
    events = []
    with anyio.fail_after(10):
        async with make_aio_client(mock.url) as client:
            async for event in watch(names, client=client, poll_interval=FAST_POLL):
                events.append(event)
                if len(events) == 2:
                    await client.close()  # the caller closes its client too early
    by_job: dict[str, list[Any]] = {}
    for event in events:
        by_job.setdefault(event.job_name, []).append(event)
    assert set(by_job) == set(names)
    for seq in by_job.values():
        assert isinstance(seq[-1], JobErrorEvent)
        assert sum(e.is_terminal for e in seq) == 1


async def test_the_wrong_kind_of_client_is_a_type_error(threaded_mock: MockSageMaker) -> None:
    session = botocore.session.get_session()
    sync_client = boto3.client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=threaded_mock.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        for client in (sync_client, object(), "sagemaker"):
            outcome = await _first_outcome(client=client)
            assert isinstance(outcome, TypeError)
            assert "aiobotocore SageMaker client" in str(outcome)
        from aiobotocore.session import get_session

        async with get_session().create_client(
            "s3", region_name="us-east-1", endpoint_url=threaded_mock.url
        ) as s3:
            outcome = await _first_outcome(client=s3)
            assert isinstance(outcome, TypeError)
            assert "got S3" in str(outcome)
    finally:
        sync_client.close()
        del session
    assert threaded_mock.stats().counters == {}  # the sync client was never called


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("session", boto3.Session(), "session must be an aiobotocore AioSession"),
        ("session", botocore.session.get_session(), "synchronous botocore Session"),
        ("session", "default", "session must be an aiobotocore AioSession"),
        ("config", {"read_timeout": 5}, "config must be an aiobotocore AioConfig"),
        ("region_name", 5, "region_name must be a str"),
        ("endpoint_url", 8080, "endpoint_url must be a str"),
    ],
)
async def test_connection_settings_of_the_wrong_type(
    option: str, value: object, match: str
) -> None:
    options: dict[str, Any] = {"endpoint_url": NOWHERE, option: value}
    outcome = await _first_outcome(**options)
    assert isinstance(outcome, TypeError)
    assert match in str(outcome)
    with anyio.fail_after(10), pytest.raises(TypeError, match=match):
        async with Poller(**options):
            pass
    with anyio.fail_after(10), pytest.raises(TypeError, match=match):
        async for _ in watch(["job-a"], **options):
            pass


async def test_an_invalid_endpoint_url_is_a_clear_error() -> None:
    outcome = await _first_outcome(endpoint_url="not a url")
    assert isinstance(outcome, ValueError)
    assert "endpoint" in str(outcome).lower()
