"""Fleet mode in one event loop: shared statuses, one poller per job, late subscribers."""

from __future__ import annotations

import math
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import anyio
import pytest
import redis.asyncio as redis_py
from structlog.testing import capture_logs

from asyncoptjob import Event, Poller, PollPolicy, StatusChange, SweepPolicy, watch
from asyncoptjob._fleet._budget import UNKNOWN_FLEET_SHARE
from asyncoptjob._fleet._store import FleetKeys
from asyncoptjob._transport import open_transport
from asyncoptjob.mock import Lifecycle, MockSageMaker
from asyncoptjob.testing import RedisServer, check_events
from tests.helpers import (
    FAST,
    FAST_POLL,
    FOREVER,
    LIST,
    RecordingTransport,
    check_handovers,
    check_no_leaks,
    opts,
)


@asynccontextmanager
async def counting(mock: MockSageMaker, session: Any) -> AsyncIterator[RecordingTransport]:
    async with open_transport(
        session=session, endpoint_url=mock.url, region_name="us-east-1", max_concurrency=16
    ) as transport:
        yield RecordingTransport(transport)


def fleet_opts(server: RedisServer, prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "redis_url": server.url,
        "redis_prefix": prefix,
        "poll_interval": FAST_POLL,
        "strategy": "describe",
        "redis_lease_ttl": 1.0,
        "initial_rate": None,  # no slow start: the sub-second lifecycles need fast polls
        **extra,
    }


async def collect(poller: Poller, names: list[str]) -> list[Event]:
    return [event async for event in poller.watch(names, timeout=30)]


async def test_two_pollers_poll_each_job_once_and_both_hear_everything(
    redis_server: RedisServer, aio_session: Any
) -> None:
    prefix = f"t-{secrets.token_hex(4)}"
    async with MockSageMaker(seed=3, lifecycle=FAST) as mock:
        names = mock.seed_jobs(24, outcome="COMPLETED")
        a_names, b_names = names[:16], names[8:]  # 8 jobs watched by both
        results: dict[str, list[Event]] = {}
        async with (
            counting(mock, aio_session) as ta,
            counting(mock, aio_session) as tb,
            Poller(transport=ta, **fleet_opts(redis_server, prefix)) as a,
            Poller(transport=tb, **fleet_opts(redis_server, prefix)) as b,
        ):

            async def run(key: str, poller: Poller, watched: list[str]) -> None:
                results[key] = await collect(poller, watched)

            async with anyio.create_task_group() as tg:
                tg.start_soon(run, "a", a, a_names)
                tg.start_soon(run, "a-half", a, a_names[8:])
                tg.start_soon(run, "b", b, b_names)
        check_events(results["a"], a_names)
        check_events(results["a-half"], a_names[8:])
        check_events(results["b"], b_names)
        # One poller per job at a time: a job moves from one process to the other only
        # with its lease (the first to attach claims all it watches, then hands the
        # surplus over), and the new holder goes on from the old one's last describe.
        check_handovers({"a": ta.sent_by_job(), "b": tb.sent_by_job()}, FAST_POLL)
        assert set(ta.describes) | set(tb.describes) == set(names)


async def wait_until(predicate: Callable[[], object], what: str) -> None:
    """Sync on state, never on elapsed time (the outer ``fail_after`` bounds it)."""
    while not predicate():
        await anyio.sleep(0.02)
    del what


async def test_a_lease_handed_over_costs_no_describe(
    redis_server: RedisServer, aio_session: Any
) -> None:
    prefix = f"t-{secrets.token_hex(4)}"
    policy = PollPolicy(interval=0.3, max_interval=0.3, jitter=0.2)
    options = fleet_opts(redis_server, prefix, poll_interval=policy)
    async with MockSageMaker(seed=7, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(20)
        async with (
            counting(mock, aio_session) as ta,
            counting(mock, aio_session) as tb,
            Poller(transport=ta, **options) as a,
            Poller(transport=tb, **options) as b,
            anyio.create_task_group() as tg,
        ):
            with anyio.fail_after(30):
                # ``a`` watches first and takes every lease; ``b`` joins and balancing
                # hands about half of them over.
                tg.start_soon(collect, a, names)
                await wait_until(lambda: set(ta.describes) == set(names), "a polls all")
                tg.start_soon(collect, b, names)

                def moved() -> bool:
                    fleet = b.stats.fleet
                    return fleet is not None and fleet.leases >= 5 and len(tb.describes) >= 5

                await wait_until(moved, "leases handed over, and described by b")
                # Every job b holds now is described by b at least twice: a steady state.
                await wait_until(
                    lambda: sum(1 for n in tb.describes.values() if n >= 2) >= 5, "b polls"
                )
            tg.cancel_scope.cancel()
        changes = check_handovers({"a": ta.sent_by_job(), "b": tb.sent_by_job()}, policy)
        assert len({job for job, old, new, _ in changes if (old, new) == ("a", "b")}) >= 5


async def test_redis_lost_mid_poll_reschedules_every_job_through_the_listener(
    redis_server: RedisServer, aio_session: Any, make_aio_client: Any
) -> None:
    # Two processes share the jobs' leases; Redis goes away while describes are on the
    # wire. Each process must then poll every job it watches, the other's included (the
    # link tells the fleet, the fleet tells the hub, the hub reschedules its own jobs),
    # and once Redis is back nothing is lost: every job ends once, in order, in both.
    prefix = f"t-{secrets.token_hex(4)}"
    policy = PollPolicy(interval=0.2, max_interval=0.2, jitter=0.2)
    options = fleet_opts(redis_server, prefix, poll_interval=policy)
    # In progress until the test stops them; stopping is quick.
    lifecycle = Lifecycle(
        starting=(0.01, 0.01), in_progress=(math.inf, math.inf), stopping=(0.05, 0.1)
    )
    async with MockSageMaker(seed=11, lifecycle=lifecycle) as mock:
        names = mock.seed_jobs(12)
        results: dict[str, list[Event]] = {}
        async with (
            counting(mock, aio_session) as ta,
            counting(mock, aio_session) as tb,
            Poller(transport=ta, **options) as a,
            Poller(transport=tb, **options) as b,
            anyio.create_task_group() as tg,
        ):

            async def run(key: str, poller: Poller) -> None:
                results[key] = [event async for event in poller.watch(names, timeout=60)]

            def leases(poller: Poller) -> int:
                fleet = poller.stats.fleet
                return fleet.leases if fleet is not None and fleet.connected else 0

            with anyio.fail_after(60):
                tg.start_soon(run, "a", a)
                tg.start_soon(run, "b", b)
                await wait_until(
                    lambda: leases(a) >= 1 and leases(b) >= 1 and leases(a) + leases(b) == 12,
                    "the leases shared",
                )
                redis_server.stop()
                await wait_until(
                    lambda: not a.stats.fleet.connected and not b.stats.fleet.connected,  # type: ignore[union-attr]
                    "both in local mode",
                )
                ta.describes.clear()
                tb.describes.clear()
                await wait_until(
                    lambda: set(ta.describes) == set(names) and set(tb.describes) == set(names),
                    "each polls every job",
                )
                redis_server.start()  # same port, empty: no persistence
                await wait_until(
                    lambda: leases(a) + leases(b) == 12, "reconnected, the leases re-claimed"
                )
                async with make_aio_client(mock.url) as client:
                    for name in names:
                        await client.stop_optimization_job(OptimizationJobName=name)
        for key in ("a", "b"):
            check_events(results[key], names)
            finals = {event.job_name: event for event in results[key] if event.is_terminal}
            assert {name: getattr(finals[name], "status", None) for name in names} == dict.fromkeys(
                names, "STOPPED"
            ), key


async def test_a_new_sweep_holder_goes_on_from_the_fleet_s_watermark(
    redis_server: RedisServer, aio_session: Any
) -> None:
    import redis.asyncio as redis_py

    prefix = f"t-{secrets.token_hex(4)}"
    sweep = SweepPolicy(interval=0.1, overlap=5.0, max_rate=None)
    options = fleet_opts(redis_server, prefix, strategy="sweep", sweep=sweep)
    client = redis_py.Redis.from_url(redis_server.url, decode_responses=True)
    async with (
        client,
        MockSageMaker(seed=8, lifecycle=FOREVER) as mock,
        counting(mock, aio_session) as ta,
        counting(mock, aio_session) as tb,
        anyio.create_task_group() as tg,
    ):
        mock.seed_jobs(3)  # something to list (a hub sweeps whether or not it watches)
        with anyio.fail_after(30):
            async with Poller(transport=ta, **options):
                # ``a`` is alone, so it holds the sweep lease; once it has read a whole
                # window, the fleet's watermark is in Redis.
                watermark_key = f"{prefix}:sweep:watermark"
                await wait_until(lambda: ta.count(LIST) >= 2, "a sweeps")
                while await client.get(watermark_key) is None:
                    await anyio.sleep(0.02)
                b_started = time.time()
                done = anyio.Event()
                await tg.start(run_poller, tb, options, done)
            # ``a`` left (its sweep lease is free): ``b`` takes the lease over.
            watermark = float(await client.get(watermark_key) or "nan")
            await wait_until(lambda: tb.count(LIST) >= 1, "b sweeps")
            done.set()
    # b's own watermark (its start) is later than the fleet's: sweeping from it would
    # miss what changed in between for jobs other processes watch.
    assert watermark < b_started
    first = next(r.params for r in tb.requests if r.operation == LIST)
    assert "NextToken" not in first
    expected = datetime.fromtimestamp(watermark - sweep.overlap, tz=timezone.utc)
    assert first["LastModifiedTimeAfter"] == expected


async def run_poller(
    transport: RecordingTransport, options: dict[str, Any], done: anyio.Event, *, task_status: Any
) -> None:
    """A Poller of its own task (so it may outlive one opened before it) until ``done``."""
    async with Poller(transport=transport, **options):
        task_status.started()
        await done.wait()


async def test_a_restarted_poller_resumes_from_redis_without_a_second_terminal(
    redis_server: RedisServer, aio_session: Any
) -> None:
    prefix = f"t-{secrets.token_hex(4)}"
    async with MockSageMaker(seed=4, lifecycle=FAST) as mock:
        names = mock.seed_jobs(6, outcome="FAILED")
        async with Poller(endpoint_url=mock.url, **fleet_opts(redis_server, prefix)) as first:
            check_events(await collect(first, names), names)
        # A new process (a restart) watching the same, finished jobs: one terminal event
        # each, straight from Redis, and not a single describe.
        async with (
            counting(mock, aio_session) as transport,
            Poller(transport=transport, **fleet_opts(redis_server, prefix)) as again,
        ):
            events = await collect(again, names)
            assert again.stats.requests["ok"] == 0
        by_job = check_events(events, names)
        for seq in by_job.values():
            assert len(seq) == 1
            assert isinstance(seq[0], StatusChange)
            assert seq[0].status == "FAILED"
            assert seq[0].description["FailureReason"]
        assert not transport.describes


async def test_module_level_watch_and_wait_accept_redis_url(redis_server: RedisServer) -> None:
    from asyncoptjob import wait_until_done

    prefix = f"t-{secrets.token_hex(4)}"
    async with MockSageMaker(seed=5, lifecycle=FAST) as mock:
        names = mock.seed_jobs(5, outcome="COMPLETED")
        events = [
            e async for e in watch(names, endpoint_url=mock.url, **fleet_opts(redis_server, prefix))
        ]
        check_events(events, names)
        done = await wait_until_done(
            names, endpoint_url=mock.url, **fleet_opts(redis_server, prefix)
        )
        assert set(done) == set(names)
        # Leaving early still cleans up (the private hub holds no task past the loop).
        more = mock.seed_jobs(3, prefix="more", outcome="COMPLETED")
        async for _event in watch(more, endpoint_url=mock.url, **fleet_opts(redis_server, prefix)):
            break


async def test_unreachable_redis_means_local_mode_with_a_warning() -> None:
    url = RedisServer().url  # a free port, nothing started on it
    async with MockSageMaker(seed=6, lifecycle=FAST) as mock:
        names = mock.seed_jobs(4, outcome="COMPLETED")
        with capture_logs() as logs:
            async with Poller(
                endpoint_url=mock.url,
                redis_url=url,
                poll_interval=FAST_POLL,
                max_rate=50,
                redis_lease_ttl=0.5,
            ) as poller:
                check_events(await collect(poller, names), names)
                # It never saw the fleet, so it cannot know how many share max_rate:
                # a conservative share, not all of it.
                assert poller.stats.rate_limit == pytest.approx(50 * UNKNOWN_FLEET_SHARE)
        assert any(entry["event"] == "fleet_redis_unavailable" for entry in logs)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("redis_url", "localhost:6379"),
        ("redis_prefix", ""),
        ("redis_prefix", "a b"),
        ("redis_lease_ttl", 0),
    ],
)
def test_fleet_options_are_validated(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        Poller(**{option: value})  # type: ignore[misc]


def test_the_default_path_never_imports_redis() -> None:
    code = (
        "import sys, asyncoptjob;"
        "asyncoptjob.Poller(region_name='us-east-1');"
        "import asyncoptjob._poller, asyncoptjob._hub;"
        "assert not any(m == 'redis' or m.startswith('redis.') for m in sys.modules), 'redis'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_a_poller_closed_by_its_caller_s_cancellation_still_leaves_the_fleet(
    redis_server: RedisServer, aio_session: Any
) -> None:
    # A service shutting down cancels the task that holds the Poller: closing it must
    # still hand the leases back and leave the fleet (others take the jobs over at once,
    # not after the lease TTL), and close its connections.
    prefix = f"t-{secrets.token_hex(4)}"
    keys = FleetKeys(prefix)
    async with MockSageMaker(seed=5, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(6)
        options = {**opts(mock, aio_session), **fleet_opts(redis_server, prefix)}
        with anyio.CancelScope() as scope:
            async with Poller(**options) as poller:
                seen: set[str] = set()
                async for event in poller.watch(names):
                    seen.add(event.job_name)
                    if seen == set(names):
                        scope.cancel()  # the Poller closes in a cancelled task
        assert scope.cancelled_caught
        client = redis_py.Redis.from_url(redis_server.url, decode_responses=True)
        try:
            assert await client.exists(*[keys.lease(name) for name in names]) == 0
            assert await client.zcard(keys.members) == 0
        finally:
            await client.aclose()
        await check_no_leaks(mock)
