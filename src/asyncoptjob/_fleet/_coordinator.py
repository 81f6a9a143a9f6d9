"""The fleet coordinator: leases, shared statuses, the event stream, Redis outages."""

from __future__ import annotations

import math
import os
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from .._clock import Clock
from .._events import JobStatus
from .._log import get_logger
from .._stats import FleetStats
from . import _scripts
from ._budget import FleetRateLimiter
from ._codec import decode, encode

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from .._events import Description
    from ._host import FleetHost

__all__ = ["Fleet", "FleetKeys"]

log = get_logger()


#: Entries the events stream keeps (approximately: ``XADD ... MAXLEN ~``).
STREAM_MAXLEN = 10_000
#: How long a job's last status stays in Redis after its last change (seconds).
JOB_TTL = 7 * 24 * 3600
#: Keys per Lua call or pipeline: long enough to amortise a round trip, short enough
#: not to block Redis for long.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class FleetKeys:
    """The key layout of one fleet (every key starts with ``prefix``)."""

    prefix: str

    @property
    def budget(self) -> str:
        return f"{self.prefix}:budget"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def members(self) -> str:
        return f"{self.prefix}:members"

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    def job(self, name: str) -> str:
        return f"{self.prefix}:job:{name}"


class _Scripts:
    """The registered Lua scripts (EVALSHA, reloaded by redis-py after a Redis restart)."""

    def __init__(self, redis: Redis) -> None:
        self.take: AsyncScript = redis.register_script(_scripts.TAKE)
        self.cut: AsyncScript = redis.register_script(_scripts.CUT)
        self.claim: AsyncScript = redis.register_script(_scripts.CLAIM)
        self.release: AsyncScript = redis.register_script(_scripts.RELEASE)
        self.publish: AsyncScript = redis.register_script(_scripts.PUBLISH)


class Fleet:
    """One process's membership in a fleet of Pollers sharing a Redis.

    Internal: ``Poller(redis_url=...)`` opens one. The hub asks it whether this process
    polls a job (:meth:`owns`), hands it every describe answer (:meth:`publish`) and tells
    it which jobs are added (:meth:`attach`) and gone (:meth:`forget`); the fleet sees the
    hub only as a :class:`FleetHost` and feeds other processes' status changes back
    through ``host.apply_remote``.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        max_rate: float | None,
        lease_ttl: float,
        clock: Clock,
    ) -> None:
        self.url = url
        self.keys = FleetKeys(prefix)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.renew_every = lease_ttl / 3
        self.log = log.bind(fleet=prefix)
        self.connected = False
        self.owned: set[str] = set()
        self.members = 1
        self.errors: tuple[type[BaseException], ...] = (OSError,)
        self.budget = FleetRateLimiter(self, max_rate=max_rate, clock=clock)
        self.host: FleetHost | None = None
        self.outages = 0
        self.published = 0
        self.remote_events = 0
        self._redis: Redis | None = None
        self._scripts: _Scripts | None = None
        self._released: set[str] = set()
        self._unsynced: set[str] = set()
        # Statuses seen while Redis was away, published once it is back (terminal first
        # of all: a late subscriber must never poll a job the fleet already finished).
        self._backlog: dict[str, Description] = {}
        self._last_id = "0-0"
        self._renewed_at = -math.inf

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def redis(self) -> Redis:
        assert self._redis is not None, "the fleet is not open"
        return self._redis

    @property
    def scripts(self) -> _Scripts:
        assert self._scripts is not None, "the fleet is not open"
        return self._scripts

    async def open(self) -> None:
        """Connect (lazily importing redis-py); start in local mode if Redis is down."""
        try:
            from redis.asyncio import Redis
            from redis.exceptions import RedisError
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("redis_url needs redis-py: pip install 'asyncoptjob[redis]'") from exc
        self.errors = (RedisError, OSError)
        timeout = max(2.0, self.lease_ttl)
        self._redis = Redis.from_url(
            self.url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._scripts = _Scripts(self._redis)
        try:
            await self._connect()
            last = await self.redis.xrevrange(self.keys.events, count=1)
            self._last_id = str(last[0][0]) if last else "0-0"
        except self.errors as exc:
            self.connected = True  # so that ``lost`` logs and switches over once
            self.lost(exc)
        else:
            self.connected = True

    async def aclose(self) -> None:
        """Give every lease back and leave the fleet (best effort)."""
        redis, self._redis = self._redis, None
        if redis is None:
            return
        try:
            if self.connected:
                with anyio.move_on_after(2.0):
                    self._released |= self.owned
                    self.owned = set()
                    self._redis = redis
                    await self._release()
                    await redis.zrem(self.keys.members, self.id)
        except self.errors as exc:
            self.log.info("fleet_close_incomplete", error=repr(exc))
        finally:
            self._redis = None
            await redis.aclose()

    async def _connect(self) -> None:
        await self.redis.ping()
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.keys.members, {self.id: now + self.lease_ttl})
        pipe.zremrangebyscore(self.keys.members, "-inf", now)
        pipe.zcard(self.keys.members)
        reply = await pipe.execute()
        self.members = max(1, int(reply[-1]))

    def lost(self, exc: BaseException) -> None:
        """Redis failed: poll every watched job locally, on this process's share."""
        if not self.connected:
            return
        self.connected = False
        self.outages += 1
        self.log.warning(
            "fleet_redis_unavailable",
            error=repr(exc),
            members=self.members,
            mode="local",
        )
        self.budget.go_local(self.members)
        host = self.host
        if host is not None:
            for name in list(host.watched()):
                if name not in self.owned:
                    host.poll_soon(name)

    # -- the hub's side -----------------------------------------------------------------

    def owns(self, name: str) -> bool:
        """Whether this process polls ``name`` (every job, while Redis is away)."""
        return not self.connected or name in self.owned

    def forget(self, name: str) -> None:
        """``name`` left the hub: hand its lease back (batched, on the next renewal)."""
        if name in self.owned:
            self.owned.discard(name)
            self._released.add(name)
        self._unsynced.discard(name)

    async def attach(self, host: FleetHost, added: Sequence[str]) -> None:
        """Claim the new jobs' leases and give their subscribers the fleet's last status."""
        watched = host.watched()
        names = [name for name in added if name in watched]
        if names and self.connected:
            try:
                claimed = await self._claim(names)
                snapshot = await self._snapshot(names)
            except self.errors as exc:
                self.lost(exc)
            else:
                for name, mine in zip(names, claimed, strict=True):
                    if mine:
                        self.owned.add(name)
                for name, (status, text) in zip(names, snapshot, strict=True):
                    if status and text and host.wants(name, status):
                        host.apply_remote(name, decode(text))
        for name in names:
            if self.owns(name):
                host.poll_soon(name)

    async def publish(
        self, name: str, previous: JobStatus | None, description: Description
    ) -> None:
        """Record a describe answer in Redis; a new status goes to the whole fleet once."""
        status = description["OptimizationJobStatus"]
        if not self.connected:
            self._backlog[name] = description
            return
        if previous is not None and previous.value == status and name not in self._unsynced:
            return
        self._unsynced.discard(name)
        try:
            await self._publish(name, status, description)
        except self.errors as exc:
            self.lost(exc)
            self._backlog[name] = description

    async def _publish(self, name: str, status: str, description: Description) -> None:
        done = await self.scripts.publish(
            keys=[self.keys.job(name), self.keys.events],
            args=[name, status, encode(description), self.id, STREAM_MAXLEN, JOB_TTL],
        )
        if int(done):
            self.published += 1

    # -- background ---------------------------------------------------------------------

    async def run(self, host: FleetHost) -> None:
        """Renew leases and read the fleet's events until cancelled."""
        self.host = host
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._lease_loop, host)
            tg.start_soon(self._read_loop, host)

    async def _lease_loop(self, host: FleetHost) -> None:
        while True:
            if self.connected:
                wait = self._renewed_at + self.renew_every - self.clock.now()
                if wait > 0:
                    await self.clock.sleep(wait)
                    continue
                self._renewed_at = self.clock.now()
                try:
                    await self._renew(host)
                except self.errors as exc:
                    self.lost(exc)
            else:
                try:
                    await self._reconnect(host)
                except self.errors:
                    await self.clock.sleep(min(self.renew_every, 0.5))

    async def _renew(self, host: FleetHost) -> None:
        await self._heartbeat()
        await self._release()
        watched = host.watched()
        names = list(watched)
        claimed = await self._claim(names)
        gained = []
        for name, mine in zip(names, claimed, strict=True):
            if name not in watched:
                if mine:
                    self._released.add(name)
            elif mine:
                if name not in self.owned:
                    self.owned.add(name)
                    gained.append(name)
            elif name in self.owned:
                self.owned.discard(name)
                self.log.info("fleet_lease_lost", job_name=name)
        for name in gained:
            host.poll_soon(name)
        if gained:
            self.log.info("fleet_leases_taken", jobs=len(gained))
        await self._resync(host, [name for name in watched if name not in self.owned])

    async def _reconnect(self, host: FleetHost) -> None:
        await self._connect()
        backlog, self._backlog = self._backlog, {}
        try:
            for name, description in backlog.items():
                await self._publish(name, description["OptimizationJobStatus"], description)
        except self.errors:
            self._backlog = {**backlog, **self._backlog}
            raise
        watched = host.watched()
        self._unsynced = set(watched)
        names = list(watched)
        claimed = await self._claim(names)
        self.owned = {name for name, mine in zip(names, claimed, strict=True) if mine}
        self.connected = True
        self.log.warning(
            "fleet_redis_reconnected", members=self.members, owned=len(self.owned), jobs=len(names)
        )
        await self._resync(host, [name for name in watched if name not in self.owned])

    async def _read_loop(self, host: FleetHost) -> None:
        while True:
            if not self.connected:
                await self.clock.sleep(0.1)
                continue
            try:
                reply = await self.redis.xread(
                    {self.keys.events: self._last_id}, count=CHUNK, block=1000
                )
            except self.errors as exc:
                self.lost(exc)
                continue
            for entry_id, fields in _stream_entries(reply):
                self._last_id = entry_id
                name = fields.get("j", "")
                if fields.get("o") == self.id or name not in host.watched():
                    continue
                if host.wants(name, fields["s"]):
                    self.remote_events += 1
                    host.apply_remote(name, decode(fields["d"]))
            await anyio.lowlevel.checkpoint()

    # -- Redis calls --------------------------------------------------------------------

    async def _claim(self, names: Sequence[str]) -> list[bool]:
        ttl_ms = max(1, math.ceil(self.lease_ttl * 1000))
        out: list[bool] = []
        for chunk in _chunks(names):
            reply = await self.scripts.claim(
                keys=[self.keys.lease(name) for name in chunk], args=[self.id, ttl_ms]
            )
            out.extend(bool(int(flag)) for flag in reply)
        return out

    async def _release(self) -> None:
        names, self._released = list(self._released), set()
        for chunk in _chunks(names):
            await self.scripts.release(
                keys=[self.keys.lease(name) for name in chunk], args=[self.id]
            )

    async def _snapshot(self, names: Sequence[str]) -> list[tuple[str | None, str | None]]:
        out: list[tuple[str | None, str | None]] = []
        for chunk in _chunks(names):
            pipe = self.redis.pipeline(transaction=False)
            for name in chunk:
                pipe.hmget(self.keys.job(name), ["s", "d"])
            out.extend((s, d) for s, d in await pipe.execute())
        return out

    async def _resync(self, host: FleetHost, names: Sequence[str]) -> None:
        """Catch up on jobs polled elsewhere (heals a gap in the stream): status first."""
        stale: list[str] = []
        for chunk in _chunks(names):
            pipe = self.redis.pipeline(transaction=False)
            for name in chunk:
                pipe.hget(self.keys.job(name), "s")
            for name, status in zip(chunk, await pipe.execute(), strict=True):
                if status and host.wants(name, status):
                    stale.append(name)
        if not stale:
            return
        for name, (_status, text) in zip(stale, await self._snapshot(stale), strict=True):
            if text:
                self.remote_events += 1
                host.apply_remote(name, decode(text))

    def statistics(self) -> FleetStats:
        """A snapshot of this process's part in the fleet."""
        return FleetStats(
            connected=self.connected,
            members=self.members,
            leases=len(self.owned) if self.connected else 0,
            published=self.published,
            remote_events=self.remote_events,
            outages=self.outages,
            budget_round_trips=self.budget.round_trips,
        )

    def __repr__(self) -> str:
        state = "connected" if self.connected else "local"
        return f"<Fleet {self.keys.prefix!r} {state} owned={len(self.owned)}>"


def _chunks(names: Sequence[str] | Iterable[str]) -> Iterable[Sequence[str]]:
    items = list(names)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _stream_entries(reply: Any) -> Iterable[tuple[str, dict[str, str]]]:
    """``(id, fields)`` of an XREAD reply, whichever RESP version shaped it."""
    if not reply:
        return
    streams = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
    for entries in streams:
        for entry_id, fields in entries:
            yield str(entry_id), dict(fields or {})
