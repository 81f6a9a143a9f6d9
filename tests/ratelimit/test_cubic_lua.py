"""The fleet's Lua computes the CUBIC rate exactly as ``_ratelimit.cubic_rate`` does.

Against a real ``redis-server`` (skipped only where none is installed): the Lua function
(``_scripts._CUBIC``, evaluated alone by ``CUBIC_RATE``) agrees with the Python function
for any inputs, and ``TAKE``, the script the fleet's budget runs, reports that rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncoptjob._fleet._budget import BUDGET_TTL_MS, RESERVE_HORIZON
from asyncoptjob._fleet._scripts import CUBIC_RATE, TAKE
from asyncoptjob._ratelimit import BETA, MIN_RATE, SCALE, SLOW_START_DOUBLING, cubic_k, cubic_rate
from asyncoptjob._ratelimit._phases import MIN_PROBE
from asyncoptjob.testing import RedisServer

#: Lua's ``tostring`` keeps this many significant digits (``TAKE`` answers with it).
LUA_DIGITS = 14


@pytest.fixture(scope="module")
def client() -> Iterator[redis.Redis]:
    try:
        server = RedisServer()
    except RuntimeError as exc:  # redis-server is not installed
        pytest.skip(str(exc))
    with server, redis.Redis.from_url(server.url, decode_responses=True) as connection:
        yield connection


@settings(deadline=None, max_examples=150)
@given(
    since_cut=st.floats(0, 600),
    w_max=st.floats(MIN_RATE, 100_000),
    beta=st.floats(0.05, 0.99),
    scale=st.floats(0.01, 10),
    probe=st.one_of(st.just(1.0), st.floats(MIN_PROBE, 1)),
)
def test_the_lua_and_the_python_cubic_rate_agree(
    client: redis.Redis, since_cut: float, w_max: float, beta: float, scale: float, probe: float
) -> None:
    lua = float(client.eval(CUBIC_RATE, 0, since_cut, w_max, beta, scale, probe))
    python = cubic_rate(since_cut, w_max, beta=beta, scale=scale, probe=probe)
    assert math.isclose(lua, python, rel_tol=1e-9), (lua, python)


@pytest.mark.parametrize("plateaus", [0.25, 1.0, 3.0])
def test_take_reports_the_cubic_rate_since_the_last_cut(
    client: redis.Redis, plateaus: float
) -> None:
    """The fleet's own script, at ``plateaus`` times K after a cut at ``w_max``."""
    key, w_max = f"cubic-take-{plateaus}", 80.0
    seconds, micros = client.time()
    last_cut = seconds + micros / 1e6 - plateaus * cubic_k(w_max)
    client.hset(key, mapping={"w_max": repr(w_max), "last_cut": repr(last_cut)})
    # No max_rate, no burst, one token, no successes, no slow start: as FleetRateLimiter.
    args = [-1, -1, 1, MIN_RATE, SCALE, 0, BUDGET_TTL_MS, RESERVE_HORIZON, -1]
    reply = client.register_script(TAKE)(keys=[key], args=[*args, SLOW_START_DOUBLING, BETA])
    rate, server_now = float(reply[2]), float(reply[3])
    # The server's time comes back rounded to LUA_DIGITS digits; the rate only grows with
    # time, so it lies between the curve's values at either end of that rounding.
    slack = 10.0 ** (math.floor(math.log10(server_now)) + 1 - LUA_DIGITS)
    since_cut = server_now - last_cut
    low = cubic_rate(since_cut - slack, w_max)
    high = cubic_rate(since_cut + slack, w_max)
    rounding = 10.0 ** (1 - LUA_DIGITS)
    assert low * (1 - rounding) <= rate <= high * (1 + rounding), (low, rate, high)
