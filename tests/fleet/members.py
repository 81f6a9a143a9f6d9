"""Fleet members opened directly (as two processes would hold them), for unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asyncoptjob import MonotonicClock
from asyncoptjob._fleet import Fleet
from asyncoptjob.testing import RedisServer


def make_fleet(
    server: RedisServer, prefix: str, max_rate: float | None, initial_rate: float | None = None
) -> Fleet:
    return Fleet(
        server.url,
        prefix=prefix,
        max_rate=max_rate,
        lease_ttl=3.0,
        clock=MonotonicClock(),
        initial_rate=initial_rate,
    )


@asynccontextmanager
async def two_members(
    server: RedisServer, prefix: str, max_rate: float | None, initial_rate: float | None = None
) -> AsyncIterator[tuple[Fleet, Fleet]]:
    """Two members of one fleet (as two processes would be), open."""
    a = make_fleet(server, prefix, max_rate, initial_rate)
    b = make_fleet(server, prefix, max_rate, initial_rate)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()
