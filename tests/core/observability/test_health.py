"""``poller.health()``: alive, ready once every job was described, failures in a row."""

from __future__ import annotations

from typing import Any

from asyncoptjob import Poller, PollerHealth
from asyncoptjob.mock import MockSageMaker
from asyncoptjob.testing import RedisServer
from tests.helpers import FOREVER, quick_retry_opts, wait_until


async def test_health_follows_the_poller_from_open_to_ready_to_closed(aio_session: Any) -> None:
    async with MockSageMaker(seed=151, lifecycle=FOREVER) as mock:
        names = mock.seed_jobs(4)
        poller = Poller(**quick_retry_opts(mock, aio_session, not_found_grace=60))
        assert poller.health() == PollerHealth(
            alive=False, ready=False, jobs_pending=0, last_success_age=None, consecutive_failures=0
        )
        async with poller:
            idle = poller.health()
            assert idle.alive
            assert idle.ready  # nothing to describe yet
            assert idle.last_success_age is None
            assert idle.fleet_connected is None
            # Every describe throttled: the jobs stay undescribed, failures pile up.
            mock.set_faults(throttle_rate=1.0)
            async with poller.watch(names) as events:
                await wait_until(lambda: poller.health().consecutive_failures >= 3, what="failures")
                throttled = poller.health()
                assert not throttled.ready
                assert throttled.alive
                assert throttled.jobs_pending == len(names)
                mock.set_faults(throttle_rate=0.0)
                seen = set()
                async for event in events:
                    seen.add(event.job_name)
                    if seen == set(names):
                        break
                ready = poller.health()
                assert ready.ready
                assert ready.jobs_pending == 0
                assert ready.consecutive_failures == 0
                assert ready.last_success_age is not None
                assert 0 <= ready.last_success_age < 30
                # A job SageMaker does not know yet (inside its grace) is not described.
                async with poller.watch("no-such-job"):
                    await wait_until(
                        lambda: poller.stats.requests["not_found"] > 0, what="a not-found"
                    )
                    unknown = poller.health()
                    assert not unknown.ready
                    assert unknown.jobs_pending == 1
                    # A not-found is an answer: the endpoint works.
                    assert unknown.consecutive_failures == 0
        closed = poller.health()
        assert not closed.alive
        assert not closed.ready


async def test_health_says_whether_the_fleet_is_connected(
    aio_session: Any, redis_server: RedisServer
) -> None:
    async with MockSageMaker(seed=152, lifecycle=FOREVER) as mock:
        options = quick_retry_opts(mock, aio_session, redis_url=redis_server.url)
        async with Poller(**options) as poller:
            assert poller.health().fleet_connected is True


async def test_health_says_when_the_fleet_is_not_connected(aio_session: Any) -> None:
    url = RedisServer().url  # a free port, nothing started on it
    async with (
        MockSageMaker(seed=153, lifecycle=FOREVER) as mock,
        Poller(**quick_retry_opts(mock, aio_session, redis_url=url)) as poller,
    ):
        health = poller.health()
    assert health.fleet_connected is False
    assert health.alive
