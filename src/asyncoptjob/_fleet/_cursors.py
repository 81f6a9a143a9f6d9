"""Cursors in the fleet's Redis: a consumer can move to another replica and carry on.

One hash per consumer, ``P:cursors:<consumer>`` (``P`` is ``redis_prefix``): field =
job name, value = JSON ``{"s": status or null, "d": final description or null}``
(datetimes tagged as in ``P:job:<job>``). No expiry: a consumer's cursors last until
the application deletes the key. Batches go out as one pipeline; a batch Redis did not
take is kept and sent again with the next (until then a restart re-delivers, never
loses). The learned rate needs no saving here: the fleet's budget already lives in Redis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .._events import JobStatus
from .._log import get_logger
from .._state._store import BatchedStore, Cursor, Key, Row
from ._codec import decode, encode

if TYPE_CHECKING:
    from ._link import FleetLink

__all__ = ["RedisStore"]

log = get_logger()


class RedisStore(BatchedStore):
    """Cursors in the fleet's Redis (internal: ``redis_url=`` opens one with the fleet)."""

    def __init__(self, link: FleetLink) -> None:
        super().__init__()
        self._link = link
        self.where = f"{link.keys.prefix}:cursors:*"

    def _key(self, consumer: str) -> str:
        return f"{self._link.keys.prefix}:cursors:{consumer}"

    async def _write(self, batch: Mapping[Key, Row], settings: Mapping[str, str]) -> None:
        if not batch:
            return
        try:
            async with self._link.store.redis.pipeline(transaction=False) as pipe:
                for (consumer, job), (status, description) in batch.items():
                    pipe.hset(self._key(consumer), job, encode({"s": status, "d": description}))
                await pipe.execute()
        except self._link.errors as exc:
            # Kept by the caller and sent with the next batch; a restart meanwhile re-delivers.
            log.warning("state_commit_failed", where=self.where, error=repr(exc))
            raise _Retry from exc

    async def flush(self) -> None:
        """Write the rows noted so far; if Redis is away, keep them for the next batch."""
        with contextlib.suppress(_Retry):
            await super().flush()

    async def _load(self, consumer: str, names: Sequence[str]) -> dict[str, Cursor]:
        cursors: dict[str, Cursor] = {}
        if not names:
            return cursors
        values = await self._link.store.redis.hmget(self._key(consumer), list(names))
        for name, value in zip(names, values, strict=True):
            if value:
                row = decode(str(value))
                if row["s"] is not None:
                    cursors[name] = Cursor(JobStatus(row["s"]), row["d"])
        return cursors

    async def register(self, consumer: str, names: Sequence[str]) -> None:
        """Record, before they are watched, that ``consumer`` watches ``names``."""
        empty = encode({"s": None, "d": None})
        async with self._link.store.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hsetnx(self._key(consumer), name, empty)
            await pipe.execute()

    async def _unfinished(self, consumer: str) -> list[str]:
        rows = await self._link.store.redis.hgetall(self._key(consumer))
        return sorted(
            str(name) for name, value in rows.items() if not _terminal(decode(str(value))["s"])
        )

    async def _close(self) -> None:
        return None


def _terminal(status: str | None) -> bool:
    return status is not None and JobStatus(status).is_terminal


class _Retry(Exception):
    """A batch Redis did not take (kept for the next one)."""
