"""OptimizationJobTrigger against the mock: one shared Poller, one client, right events."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from asyncoptjob.airflow import OptimizationJobTrigger, PollerRegistry, registry
from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.airflow.conftest import aws_connection
from tests.helpers import ROOT, check_no_leaks, wait_until

#: Jobs that finish within a second or two; a fifth of them FAILED.
QUICK = Lifecycle(starting=(0.1, 0.5), in_progress=(0.2, 1.0), failure_rate=0.2)
#: For 500 jobs at 20 describes/s: they are still running after the first describe of each.
SLOWER = Lifecycle(starting=(0.5, 2.0), in_progress=(1.0, 4.0), failure_rate=0.2)
#: Fast polls for a handful of jobs; no slow start.
FAST = {"poll_interval": 0.1, "initial_rate": None}


@pytest.fixture
async def mock(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MockSageMaker]:
    """The mock, and ``aws_default`` pointing at it through the environment."""
    async with MockSageMaker(seed=23, lifecycle=QUICK) as endpoint:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection(endpoint.url))
        yield endpoint


async def first_event(trigger: OptimizationJobTrigger) -> TriggerEvent:
    """What the triggerer takes from a trigger: its first event."""
    async for event in trigger.run():
        return event
    raise AssertionError(f"{trigger!r} returned without an event")


def rebuilt(trigger: OptimizationJobTrigger) -> OptimizationJobTrigger:
    """The trigger as another triggerer rebuilds it: from its classpath and kwargs."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    rebuilt: OptimizationJobTrigger = cls(**kwargs)
    return rebuilt


def check_event(mock: MockSageMaker, event: TriggerEvent) -> None:
    """The event says what the mock's ground truth says of its job."""
    payload: dict[str, Any] = event.payload
    final = mock.status(payload["job_name"])
    assert payload["job_status"] == final
    assert payload["status"] == ("success" if final == "COMPLETED" else "error")
    assert payload["description"]["OptimizationJobStatus"] == final
    if final == "FAILED":
        assert payload["failure_reason"]
        assert payload["failure_reason"] in payload["message"]
    else:
        assert payload["failure_reason"] is None


def test_serialize_round_trip() -> None:
    trigger = OptimizationJobTrigger(
        "llama3-int4",
        aws_conn_id="sagemaker_prod",
        region_name="eu-west-1",
        timeout=3600,
        poller_options={"poll_interval": 60, "max_rate": 10},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "asyncoptjob.airflow.OptimizationJobTrigger"
    again = rebuilt(trigger)
    assert type(again) is OptimizationJobTrigger
    assert again.serialize() == (classpath, kwargs)
    assert kwargs == {
        "job_name": "llama3-int4",
        "aws_conn_id": "sagemaker_prod",
        "region_name": "eu-west-1",
        "timeout": 3600,
        "poller_options": {"poll_interval": 60, "max_rate": 10},
    }


def test_the_defaults() -> None:
    _, kwargs = OptimizationJobTrigger("job").serialize()
    assert kwargs["aws_conn_id"] == "aws_default"
    assert kwargs["region_name"] is None


@pytest.mark.slow
async def test_500_rebuilt_triggers_share_one_poller_and_one_client(mock: MockSageMaker) -> None:
    mock.set_faults(describe_rate=20, describe_burst=20, list_rate=20, list_burst=20)
    names = mock.seed_jobs(500, lifecycle=SLOWER)
    triggers = [rebuilt(OptimizationJobTrigger(name, poller_options=FAST)) for name in names]
    before = registry().stats()
    tasks = [asyncio.create_task(first_event(trigger)) for trigger in triggers]
    await wait_until(lambda: registry().stats().leases == 500, what="every trigger leased")
    # One Poller, one client and its one connection pool (16 + 1 connections at most).
    assert registry().stats().pollers_open == 1
    events = await asyncio.gather(*tasks)

    assert Counter(event.payload["job_name"] for event in events) == Counter(names)
    for event in events:
        check_event(mock, event)
    statuses = Counter(event.payload["job_status"] for event in events)
    assert statuses["FAILED"] > 0
    assert statuses["COMPLETED"] > 0
    after = registry().stats()
    assert after.pollers_opened - before.pollers_opened == 1
    assert after.clients_created - before.clients_created == 1
    assert after.pollers_open == 0
    assert after.leases == 0
    stats = mock.stats()
    describes = stats.count("DescribeOptimizationJob")
    throttled = stats.count("DescribeOptimizationJob", "ThrottlingException")
    assert throttled <= 0.05 * describes, stats.counters
    await check_no_leaks(mock)


async def test_cancelled_triggers_detach_only_their_jobs(mock: MockSageMaker) -> None:
    forever = Lifecycle(starting=(0.01, 0.01), in_progress=(float("inf"), float("inf")))
    stuck = mock.seed_jobs(5, prefix="stuck", lifecycle=forever)
    names = mock.seed_jobs(10, prefix="ends")
    tasks = {
        name: asyncio.create_task(first_event(OptimizationJobTrigger(name, poller_options=FAST)))
        for name in [*stuck, *names]
    }
    await wait_until(lambda: registry().stats().leases == 15, what="every trigger leased")
    # The stuck jobs' triggers are cancelled (task cleared, timed out, triggerer stopping).
    for name in stuck:
        tasks[name].cancel()
    for name in stuck:
        with pytest.raises(asyncio.CancelledError):
            await tasks[name]
    assert registry().stats().leases == 10
    assert registry().stats().pollers_open == 1
    for name in names:
        check_event(mock, await tasks[name])
    assert registry().stats().pollers_open == 0
    # The stuck jobs were left alone on the endpoint: still running, never stopped.
    assert all(mock.status(name) == "INPROGRESS" for name in stuck)
    assert mock.stats().count("StopOptimizationJob") == 0
    await check_no_leaks(mock)


async def test_a_trigger_cancelled_while_the_poller_opens_leaves_nothing_behind(
    mock: MockSageMaker,
) -> None:
    (name,) = mock.seed_jobs(1)
    task = asyncio.create_task(first_event(OptimizationJobTrigger(name, poller_options=FAST)))
    await asyncio.sleep(0)  # the host task has started resolving the connection
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert registry().stats().pollers_open == 0
    # The next trigger opens a new Poller and gets its event.
    check_event(mock, await first_event(OptimizationJobTrigger(name, poller_options=FAST)))
    await check_no_leaks(mock)


async def test_run_yields_exactly_one_event_and_returns(mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1, outcome="FAILED")
    events = [event async for event in OptimizationJobTrigger(name, poller_options=FAST).run()]
    assert len(events) == 1
    check_event(mock, events[0])
    assert events[0].payload["status"] == "error"
    assert events[0].payload["job_status"] == "FAILED"


async def test_concurrent_first_triggers_share_one_opening(mock: MockSageMaker) -> None:
    names = mock.seed_jobs(20)
    before = registry().stats()
    events = await asyncio.gather(
        *(first_event(OptimizationJobTrigger(name, poller_options=FAST)) for name in names)
    )
    for event in events:
        check_event(mock, event)
    after = registry().stats()
    assert after.pollers_opened - before.pollers_opened == 1
    assert after.clients_created - before.clients_created == 1


async def test_different_options_or_regions_get_different_pollers(mock: MockSageMaker) -> None:
    a, b = mock.seed_jobs(2)
    before = registry().stats()
    await asyncio.gather(
        first_event(OptimizationJobTrigger(a, poller_options=FAST)),
        first_event(OptimizationJobTrigger(b, poller_options={**FAST, "max_concurrency": 4})),
    )
    assert registry().stats().pollers_opened - before.pollers_opened == 2


async def test_a_job_that_does_not_exist_ends_in_an_error_event(mock: MockSageMaker) -> None:
    options = {**FAST, "not_found_grace": 0.2}
    event = await first_event(OptimizationJobTrigger("no-such-job", poller_options=options))
    assert event.payload["status"] == "error"
    assert event.payload["job_name"] == "no-such-job"
    assert event.payload["job_status"] is None
    assert "JobNotFoundError" in event.payload["failure_reason"]


async def test_access_denied_ends_in_an_error_event_not_a_hang(mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1)
    mock.set_faults(error_code="AccessDeniedException", error_code_status=400)
    event = await first_event(OptimizationJobTrigger(name, poller_options=FAST))
    assert event.payload["status"] == "error"
    assert "CredentialsError" in event.payload["failure_reason"]
    assert "AccessDenied" in event.payload["failure_reason"]
    await check_no_leaks(mock)


async def test_a_missing_connection_falls_back_like_the_provider(
    mock: MockSageMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No such connection: the provider's hooks warn and use boto3's own chain (the
    # environment's keys and AWS_ENDPOINT_URL here), and so does the trigger.
    monkeypatch.setenv("AWS_ENDPOINT_URL", mock.url)
    (name,) = mock.seed_jobs(1)
    event = await first_event(
        OptimizationJobTrigger(name, aws_conn_id="no_such_conn", poller_options=FAST)
    )
    check_event(mock, event)


async def test_the_region_argument_overrides_the_connection(mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1)
    async with registry().lease("aws_default", "eu-west-1", FAST) as poller:
        assert "eu-west-1" in repr(poller)
        await poller.wait_until_done(name)


async def test_a_redis_url_extra_turns_on_fleet_mode(
    mock: MockSageMaker, monkeypatch: pytest.MonkeyPatch, redis_server: Any
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_FLEET", aws_connection(mock.url, redis_url=redis_server.url)
    )
    names = mock.seed_jobs(3)
    held: dict[str, Any] = {}

    async def fleet_trigger(name: str) -> TriggerEvent:
        trigger = OptimizationJobTrigger(name, aws_conn_id="aws_fleet", poller_options=FAST)
        async with registry().lease("aws_fleet", None, FAST) as poller:
            held["fleet"] = poller.stats.fleet
            return await first_event(trigger)

    for event in await asyncio.gather(*(fleet_trigger(name) for name in names)):
        check_event(mock, event)
    assert held["fleet"] is not None


async def test_a_failed_opening_reaches_every_waiting_trigger_and_is_retried() -> None:
    calls = 0

    async def broken(aws_conn_id: str | None, region_name: str | None) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("the secrets backend is down")

    own = PollerRegistry(resolve=broken)

    async def use() -> str:
        try:
            async with own.lease("aws_default", None):
                return "opened"
        except RuntimeError as exc:
            return str(exc)

    assert await asyncio.gather(use(), use(), use()) == ["the secrets backend is down"] * 3
    assert calls == 1
    assert own.stats().pollers_open == 0
    assert await use() == "the secrets backend is down"
    assert calls == 2


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def test_importing_asyncoptjob_does_not_import_airflow() -> None:
    result = _python(
        "import sys, asyncoptjob, asyncoptjob.mock\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_airflow_the_subpackage_names_the_extra() -> None:
    result = _python(
        "import sys\n"
        "sys.modules['airflow'] = None\n"
        "try:\n"
        "    import asyncoptjob.airflow\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert 'pip install "asyncoptjob[airflow]"' in result.stdout
