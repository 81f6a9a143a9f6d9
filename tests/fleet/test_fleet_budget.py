"""The fleet's shared rate budget (Lua token bucket + shared CUBIC) against a real Redis."""

from __future__ import annotations

import bisect
import secrets
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as redis_py

from asyncoptjob import MonotonicClock, Poller
from asyncoptjob._fleet import Fleet
from asyncoptjob._fleet._budget import FLEET_SLOW_START_EXIT
from asyncoptjob._ratelimit import DEFAULT_INITIAL_RATE
from asyncoptjob.mock import MockSageMaker
from asyncoptjob.testing import RedisServer
from tests.fleet.members import make_fleet, two_members
from tests.helpers import FAST, FAST_POLL


@pytest.fixture
def prefix() -> str:
    return f"t-{secrets.token_hex(4)}"


@pytest.fixture
async def pair(redis_server: RedisServer, prefix: str) -> AsyncIterator[tuple[Fleet, Fleet]]:
    async with two_members(redis_server, prefix, 40.0) as members:
        yield members


def most_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(bisect.bisect_right(times, t + window) - i for i, t in enumerate(times))


async def test_two_processes_share_one_budget(pair: tuple[Fleet, Fleet]) -> None:
    stamps: list[float] = []
    clock = MonotonicClock()

    async def spender(fleet: Fleet) -> None:
        while True:
            await fleet.budget.acquire()
            stamps.append(clock.now())
            fleet.budget.on_success()

    with anyio.move_on_after(1.5):
        async with anyio.create_task_group() as tg:
            for fleet in pair:
                for _ in range(6):
                    tg.start_soon(spender, fleet)
    # rate 40/s, burst max(1, 40 * 0.05) = 2: never more than 40 t + 2 in a window t,
    # give or take 0.1 s: each process places its tokens on its own clock after Redis
    # answers, so a stalled process can bunch its slots against the other's. Two
    # separate 40/s budgets would put about 80 t in a window.
    assert most_in_window(stamps, 0.5) <= 40 * (0.5 + 0.1) + 2 + 1
    assert most_in_window(stamps, 1.0) <= 40 * (1.0 + 0.1) + 2 + 1
    # ... and the two together still use most of it (not 2 x 40, not 40 / 2).
    assert 40 * 1.5 * 0.7 <= len(stamps) <= 40 * (1.5 + 0.1) + 3
    a, b = pair
    assert a.budget.statistics().acquired > 5
    assert b.budget.statistics().acquired > 5
    # Batches: fewer round trips than requests (a few workers wait at once).
    assert a.budget.round_trips + b.budget.round_trips <= len(stamps) + 10


async def test_a_throttle_in_one_process_slows_every_process(pair: tuple[Fleet, Fleet]) -> None:
    a, b = pair
    await a.budget.acquire()
    await b.budget.acquire()
    assert a.budget.rate == b.budget.rate == 40.0
    a.budget.on_throttle(MonotonicClock().now())
    await a.budget.acquire()  # the cut is applied with the next refill
    for _ in range(3):  # past any tokens b still holds
        await anyio.sleep(0.03)
        await b.budget.acquire()
    assert b.budget.rate is not None
    assert b.budget.rate < 40.0 * 0.75, "b did not see the cut made by a"
    assert a.budget.statistics().cuts == 1


async def test_throttles_from_before_the_cut_do_not_cut_again(pair: tuple[Fleet, Fleet]) -> None:
    a, b = pair
    clock = MonotonicClock()
    sent = clock.now()
    await a.budget.acquire()
    a.budget.on_throttle(sent)
    await a.budget.acquire()
    rate_after_one = a.budget.rate
    # Answers to requests sent before that cut, reported by either process: no new cut.
    b.budget.on_throttle(sent)
    await b.budget.acquire()
    a.budget.on_throttle(sent)
    await a.budget.acquire()
    assert a.budget.statistics().cuts + b.budget.statistics().cuts == 1
    assert rate_after_one is not None
    assert a.budget.rate is not None
    assert a.budget.rate >= rate_after_one * 0.99


async def test_no_max_rate_and_no_initial_rate_is_unlimited_until_the_first_throttle(
    redis_server: RedisServer, prefix: str
) -> None:
    a = make_fleet(redis_server, prefix, None, initial_rate=None)
    b = make_fleet(redis_server, prefix, None, initial_rate=None)
    await a.open()
    await b.open()
    try:
        for _ in range(50):
            await a.budget.acquire()
            a.budget.on_success()
        assert a.budget.rate is None
        assert a.budget.round_trips <= 3, "unlimited mode should not ask Redis per request"
        a.budget.on_throttle(MonotonicClock().now())
        await a.budget.acquire()
        assert a.budget.rate is not None
        await anyio.sleep(0.25)  # b re-asks at least this often while unlimited
        await b.budget.acquire()
        assert b.budget.rate is not None
    finally:
        await a.aclose()
        await b.aclose()


async def test_prefixes_keep_fleets_apart(redis_server: RedisServer) -> None:
    a = make_fleet(redis_server, "fleet-a", 10.0)
    b = make_fleet(redis_server, "fleet-b", 10.0)
    await a.open()
    await b.open()
    try:
        await a.budget.acquire()
        a.budget.on_throttle(MonotonicClock().now())
        await a.budget.acquire()
        await b.budget.acquire()
        assert a.budget.rate is not None
        assert a.budget.rate < 10.0
        assert b.budget.rate == 10.0
    finally:
        await a.aclose()
        await b.aclose()


async def test_redis_gone_falls_back_to_a_local_share(
    redis_server: RedisServer, prefix: str
) -> None:
    a, b = make_fleet(redis_server, prefix, 40.0), make_fleet(redis_server, prefix, 40.0)
    await a.open()
    await b.open()
    try:
        await a.leases.heartbeat()  # both are members now
        assert a.link.members == 2
        redis_server.stop()
        with anyio.fail_after(5):
            await a.budget.acquire()  # fails over, does not hang or raise
        assert not a.link.connected
        assert a.budget.rate == pytest.approx(20.0)
    finally:
        await a.aclose()
        await b.aclose()


# -- the slow start, fleet-wide -------------------------------------------------------


async def budget_hash(fleet: Fleet) -> dict[str, str]:
    values: dict[str, str] = await fleet.link.store.redis.hgetall(fleet.link.keys.budget)
    return values


async def answered(fleet: Fleet, count: int) -> list[float]:
    """Send ``count`` requests one after the other, each accepted; the rate after each."""
    rates = []
    for _ in range(count):
        await fleet.budget.acquire()
        fleet.budget.on_success()
        assert fleet.budget.rate is not None
        rates.append(fleet.budget.rate)
    return rates


@pytest.fixture
async def slow_pair(redis_server: RedisServer, prefix: str) -> AsyncIterator[tuple[Fleet, Fleet]]:
    async with two_members(redis_server, prefix, None, DEFAULT_INITIAL_RATE) as members:
        yield members


async def test_a_cold_fleet_starts_at_the_initial_rate_and_grows_with_answers(
    slow_pair: tuple[Fleet, Fleet],
) -> None:
    a, b = slow_pair
    await a.budget.acquire()
    assert a.budget.rate == DEFAULT_INITIAL_RATE, "a cold fleet starts at initial_rate"
    a.budget.on_success()
    rates = await answered(a, 12)
    # Each answer, while the rate holds requests back, grows the rate (never cuts it).
    assert rates == sorted(rates)
    assert rates[-1] > DEFAULT_INITIAL_RATE
    state = await budget_hash(a)
    assert float(state["slow"]) >= rates[-1]
    assert "w_max" not in state
    # Fleet-wide: b reported no answer of its own, and starts where a's answers got to.
    await b.budget.acquire()
    assert b.budget.rate is not None
    assert b.budget.rate >= rates[-1]


async def test_the_first_throttle_ends_the_fleet_s_slow_start(
    slow_pair: tuple[Fleet, Fleet],
) -> None:
    a, b = slow_pair
    await answered(a, 12)
    slow = float((await budget_hash(a))["slow"])
    assert slow > DEFAULT_INITIAL_RATE
    b.budget.on_throttle(MonotonicClock().now())
    await b.budget.acquire()  # the cut is applied with the next refill
    state = await budget_hash(b)
    assert "slow" not in state
    # As AdaptiveRateLimiter: CUBIC's maximum is a fraction of the slow-start rate.
    w_max = float(state["w_max"])
    assert w_max == pytest.approx(slow * FLEET_SLOW_START_EXIT)
    assert b.budget.statistics().cuts == 1
    # From here on the rate follows CUBIC (from 0.7 x w_max, flat near w_max): answers
    # no longer grow it by doublings, and the slow start does not come back.
    rates = await answered(a, 4)
    assert max(rates) < slow
    assert "slow" not in await budget_hash(a)


async def test_the_poller_s_initial_rate_reaches_the_fleet_budget(
    redis_server: RedisServer, prefix: str
) -> None:
    async with MockSageMaker(seed=9, lifecycle=FAST) as mock:
        names = mock.seed_jobs(3, outcome="COMPLETED")
        for initial_rate, key in ((2.0, f"{prefix}-slow"), (None, f"{prefix}-free")):
            async with Poller(
                endpoint_url=mock.url,
                redis_url=redis_server.url,
                redis_prefix=key,
                poll_interval=FAST_POLL,
                strategy="describe",
                initial_rate=initial_rate,
            ) as poller:
                async for _event in poller.watch(names, timeout=30):
                    pass
                assert poller.stats.fleet is not None
                stats = poller.stats
            async with redis_py.Redis.from_url(redis_server.url, decode_responses=True) as client:
                state = await client.hgetall(f"{key}:budget")
            if initial_rate is None:
                assert "slow" not in state
                assert stats.rate_limit is None
            else:
                assert float(state["slow"]) >= initial_rate
                assert stats.rate_limit is not None
