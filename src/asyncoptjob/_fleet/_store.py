"""The fleet's Redis calls, in one class: keys, registered Lua scripts, pipelines.

The coordinator (``_coordinator.py``) decides *what* to do (who polls which job, when to
renew, what to tell the hub); this store only knows *how* to ask Redis. The key layout
and the scripts are documented in ``_fleet/__init__`` and ``_scripts.py``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import _errors
from .._errors import TransportError
from . import _scripts
from ._codec import encode

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from .._events import Description

__all__ = [
    "CHUNK",
    "ERROR",
    "HINT",
    "LIST",
    "RELIST",
    "FleetKeys",
    "FleetStore",
    "Snapshot",
    "chunks",
    "decode_error",
    "error_fields",
    "stream_entries",
]

#: Entries the events stream keeps (approximately: ``XADD ... MAXLEN ~``).
STREAM_MAXLEN = 10_000
#: How long a job's last status stays in Redis after its last change (seconds).
JOB_TTL = 7 * 24 * 3600
#: Keys per Lua call or pipeline: long enough to amortise a round trip, short enough
#: not to block Redis for long, nor the event loop while redis-py parses the replies.
CHUNK = 100
#: How long a definitive job error (not found, invalid) stays for late watchers (s).
ERROR_TTL = 3600
#: Stream entry kinds (field ``k``); a status change has none (older entries neither).
HINT = "hint"
ERROR = "error"
#: A page of List entries a sweep (``r=1``: a re-list) found, as JSON (``e``).
LIST = "list"
#: A re-list begins (``p=begin``) or is done (``p=done``).
RELIST = "relist"


@dataclass(frozen=True, slots=True)
class FleetKeys:
    """The key layout of one fleet (every key starts with ``prefix``)."""

    prefix: str

    @property
    def budget(self) -> str:
        return f"{self.prefix}:budget"

    @property
    def list_budget(self) -> str:
        return f"{self.prefix}:budget:list"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def members(self) -> str:
        return f"{self.prefix}:members"

    @property
    def load(self) -> str:
        return f"{self.prefix}:load"

    @property
    def sweep(self) -> str:
        return f"{self.prefix}:sweep"

    @property
    def watermark(self) -> str:
        return f"{self.prefix}:sweep:watermark"

    @property
    def oldest(self) -> str:
        return f"{self.prefix}:sweep:oldest"

    def error(self, name: str) -> str:
        return f"{self.prefix}:error:{name}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    def job(self, name: str) -> str:
        return f"{self.prefix}:job:{name}"


class FleetStore:
    """Every Redis call of one fleet member (``owner`` is its id)."""

    def __init__(self, redis: Redis, keys: FleetKeys, owner: str) -> None:
        self.redis = redis
        self.keys = keys
        self.owner = owner
        self.take: AsyncScript = redis.register_script(_scripts.TAKE)
        self.cut: AsyncScript = redis.register_script(_scripts.CUT)
        self._claim: AsyncScript = redis.register_script(_scripts.CLAIM)
        self._release: AsyncScript = redis.register_script(_scripts.RELEASE)
        self._publish: AsyncScript = redis.register_script(_scripts.PUBLISH)
        self._look: AsyncScript = redis.register_script(_scripts.LOOK)
        self._advance: AsyncScript = redis.register_script(_scripts.ADVANCE)

    async def ping(self) -> None:
        await self.redis.ping()

    async def last_event_id(self) -> str:
        last = await self.redis.xrevrange(self.keys.events, count=1)
        return str(last[0][0]) if last else "0-0"

    async def heartbeat(self, ttl: float, owned: int) -> tuple[int, int]:
        """Say this member is alive and how many leases it holds.

        Returns:
            ``(live members, leases held by live members)``.
        """
        now = time.time()
        keys = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.members, {self.owner: now + ttl})
        pipe.zremrangebyscore(keys.members, "-inf", now)
        pipe.zrangebyscore(keys.members, now, "+inf")
        pipe.hset(keys.load, self.owner, owned)
        pipe.hgetall(keys.load)
        reply = await pipe.execute()
        live = {str(member) for member in reply[2]}
        load = {str(k): int(v) for k, v in (reply[4] or {}).items()}
        gone = [member for member in load if member not in live]
        if gone:
            await self.redis.hdel(keys.load, *gone)
        return max(1, len(live)), sum(n for member, n in load.items() if member in live)

    async def leave(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(self.keys.members, self.owner)
        pipe.hdel(self.keys.load, self.owner)
        pipe.hdel(self.keys.oldest, self.owner)
        await pipe.execute()

    async def claim(
        self, names: Sequence[str], ttl: float, room: int = -1, owned: Collection[str] = ()
    ) -> list[int]:
        """Renew this member's leases of ``names`` and take free ones.

        Args:
            room: how many free leases to take at most (-1: all of them).
            owned: the leases this member holds already (renewing them takes no room).

        Returns:
            Per name: 1 held by this member now, 0 held by another, 2 free but not taken.
        """
        ttl_ms = max(1, math.ceil(ttl * 1000))
        out: list[int] = []
        for chunk in chunks(names):
            reply = await self._claim(
                keys=[self.keys.lease(name) for name in chunk], args=[self.owner, ttl_ms, room]
            )
            flags = [int(flag) for flag in reply]
            if room > 0:
                taken = sum(
                    1 for n, f in zip(chunk, flags, strict=True) if f == 1 and n not in owned
                )
                room = max(0, room - taken)
            out.extend(flags)
        return out

    async def release(self, names: Iterable[str]) -> None:
        for chunk in chunks(names):
            await self._release(keys=[self.keys.lease(name) for name in chunk], args=[self.owner])

    async def claim_sweep(self, ttl: float) -> bool:
        """Take or renew the fleet's sweep lease; True if this member holds it."""
        reply = await self._claim(
            keys=[self.keys.sweep], args=[self.owner, max(1, math.ceil(ttl * 1000)), -1]
        )
        return int(reply[0]) == 1

    async def release_sweep(self) -> None:
        await self._release(keys=[self.keys.sweep], args=[self.owner])

    async def sweep_watermark(self) -> float | None:
        """The fleet's sweep watermark (epoch seconds), if its sweeps have one."""
        value = await self.redis.get(self.keys.watermark)
        return None if value is None else float(value)

    async def advance_sweep_watermark(self, watermark: float) -> None:
        """Move the fleet's sweep watermark forward to ``watermark``."""
        await self._advance(keys=[self.keys.watermark], args=[repr(watermark), JOB_TTL])

    async def note_oldest(self, oldest: float | None) -> None:
        """Record the oldest CreationTime of this member's jobs (None: none known)."""
        if oldest is None:
            await self.redis.hdel(self.keys.oldest, self.owner)
        else:
            await self.redis.hset(self.keys.oldest, self.owner, repr(oldest))

    async def fleet_oldest(self) -> float | None:
        """The oldest CreationTime any live member's jobs have (None: none known)."""
        keys = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrangebyscore(keys.members, time.time(), "+inf")
        pipe.hgetall(keys.oldest)
        live, oldest = await pipe.execute()
        members = {str(member) for member in live}
        values = [float(v) for k, v in (oldest or {}).items() if str(k) in members]
        return min(values, default=None)

    async def snapshot(self, names: Sequence[str]) -> list[Snapshot]:
        """Each job's last status and description as the fleet knows them, and how long
        ago (seconds, by Redis's clock) the fleet last described it."""
        out: list[Snapshot] = []
        for chunk in chunks(names):
            pipe = self.redis.pipeline(transaction=False)
            pipe.time()
            for name in chunk:
                pipe.hmget(self.keys.job(name), ["s", "d", "t"])
            now, *rows = await pipe.execute()
            out.extend(Snapshot(s, d, _age(_seconds(now), t)) for s, d, t in rows)
        return out

    async def look(self, ages: Mapping[str, float]) -> None:
        """Record describe answers that changed nothing: job -> seconds since the answer."""
        names = list(ages)
        for chunk in chunks(names):
            await self._look(
                keys=[self.keys.job(name) for name in chunk],
                args=[repr(max(0.0, ages[name])) for name in chunk],
            )

    async def errors(self, names: Sequence[str]) -> list[str | None]:
        """Each job's definitive error, if a process gave it up with one (JSON)."""
        out: list[str | None] = []
        for chunk in chunks(names):
            values = await self.redis.mget([self.keys.error(name) for name in chunk])
            out.extend(None if value is None else str(value) for value in values)
        return out

    async def statuses(self, names: Sequence[str]) -> list[str | None]:
        """Each job's last status as the fleet knows it (cheaper than a snapshot)."""
        out: list[str | None] = []
        for chunk in chunks(names):
            pipe = self.redis.pipeline(transaction=False)
            for name in chunk:
                pipe.hget(self.keys.job(name), "s")
            out.extend(await pipe.execute())
        return out

    async def publish(self, name: str, status: str, description: Description) -> bool:
        """Compare-and-set the job's status; True if this call published the change."""
        done = await self._publish(
            keys=[self.keys.job(name), self.keys.events],
            args=[name, status, encode(description), self.owner, STREAM_MAXLEN, JOB_TTL],
        )
        return bool(int(done))

    async def add_entries(self, entries: Sequence[dict[str, str]]) -> None:
        """Append hint or error entries (fields ``k``, ``j``, ...) to the events stream."""
        for start in range(0, len(entries), CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for fields in entries[start : start + CHUNK]:
                if fields.get("k") == ERROR and fields.get("r"):
                    # Definitive: a process that starts watching the job later hears it too.
                    pipe.set(self.keys.error(fields["j"]), fields["e"], ex=ERROR_TTL)
                entry: dict[Any, Any] = {**fields, "o": self.owner}
                pipe.xadd(
                    self.keys.events,
                    entry,
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
            await pipe.execute()

    async def read(self, after: str, block_ms: int) -> Any:
        return await self.redis.xread({self.keys.events: after}, count=CHUNK, block=block_ms)


class Snapshot(NamedTuple):
    """A job as the fleet knows it: status, description (JSON), seconds since its last
    describe anywhere in the fleet (None if unknown)."""

    status: str | None
    description: str | None
    age: float | None


def _seconds(time_reply: Any) -> float:
    """Redis ``TIME`` (seconds, microseconds) as float seconds."""
    seconds, micros = time_reply
    return int(seconds) + int(micros) / 1_000_000


def _age(now: float, looked_at: str | None) -> float | None:
    return None if looked_at is None else max(0.0, now - float(looked_at))


def error_fields(name: str, error: TransportError) -> dict[str, str]:
    """A job's final error as a stream entry (``r``: kept for late watchers too)."""
    text = json.dumps(
        {
            "type": type(error).__name__,
            "message": str(error),
            "code": error.code,
            "operation": error.operation,
            "http_status": error.http_status,
        }
    )
    fields = {"k": ERROR, "j": name, "e": text}
    if isinstance(error, (_errors.JobNotFoundError, _errors.InvalidRequestError)):
        fields["r"] = "1"
    return fields


def decode_error(name: str, text: str) -> TransportError:
    """The error :func:`error_fields` stored (its class if the library has it)."""
    data = json.loads(text)
    cls = getattr(_errors, str(data.get("type")), TransportError)
    if not (isinstance(cls, type) and issubclass(cls, TransportError)):
        cls = TransportError
    return cls(
        str(data.get("message", "")),
        code=str(data.get("code", "")),
        operation=str(data.get("operation", "")),
        job_name=name,
        http_status=data.get("http_status"),
    )


def chunks(names: Sequence[str] | Iterable[str]) -> Iterable[Sequence[str]]:
    items = list(names)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def stream_entries(reply: Any) -> Iterable[tuple[str, dict[str, str]]]:
    """``(id, fields)`` of an XREAD reply, whichever RESP version shaped it."""
    if not reply:
        return
    streams = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
    for entries in streams:
        for entry_id, fields in entries:
            yield str(entry_id), dict(fields or {})
