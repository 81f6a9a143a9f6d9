"""Fleet mode: the cursors live in Redis, so a consumer can move to another replica."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from redis.asyncio import Redis

from asyncoptjob import JobStatus, Poller
from asyncoptjob.mock import MockSageMaker
from asyncoptjob.testing import RedisServer
from tests.helpers import opts
from tests.state.test_durable import STOPPABLE, check_goes_on, stop_all, until_all_running

pytestmark = pytest.mark.filterwarnings("error")


async def test_a_consumer_carries_on_from_another_replica(
    redis_server: RedisServer, aio_session: Any, mock: MockSageMaker, aio_client: Any
) -> None:
    prefix = f"t{secrets.token_hex(4)}"
    mock.lifecycle = STOPPABLE
    names = mock.seed_jobs(3, prefix="fl")
    fleet = opts(mock, aio_session, redis_url=redis_server.url, redis_prefix=prefix)
    # Replica A handles events until every job is INPROGRESS, then goes away.
    async with Poller(**fleet) as a, a.watch(names, consumer="deployer") as events:
        await until_all_running(events, names)
    await stop_all(aio_client, names)
    # Replica B (another Poller, same Redis) goes on from A's cursors.
    async with Poller(**fleet) as b:
        assert await b.unfinished(consumer="deployer") == sorted(names)
        rest = [e async for e in b.watch(names, consumer="deployer")]
        assert await b.unfinished(consumer="deployer") == []
        # Another consumer of the same fleet starts from nothing.
        other = [e async for e in b.watch(names, consumer="auditor")]
        # A finished job is answered from Redis, without a describe.
        before = mock.stats().count("DescribeOptimizationJob")
        finals = await b.wait_until_done(names, consumer="deployer")
        assert mock.stats().count("DescribeOptimizationJob") == before
    check_goes_on(rest, names, JobStatus.INPROGRESS)
    for name in names:
        assert finals[name]["OptimizationJobStatus"] == "STOPPED"
    assert {e.job_name for e in other if e.is_terminal} == set(names)
    assert all(e.previous_status is None for e in other)
    # The key layout the docs give: one hash per consumer.
    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert sorted(await client.hkeys(f"{prefix}:cursors:deployer")) == sorted(names)
    finally:
        await client.aclose()
