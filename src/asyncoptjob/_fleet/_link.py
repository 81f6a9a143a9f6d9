"""The fleet's link to Redis: the connection, whether it holds, and who hears when it breaks.

Every part of the fleet (budget, leases, stream, cursor store) depends on one
:class:`FleetLink` and on nothing else of the fleet: no part holds a pointer to the
``Fleet`` that assembles them. A part whose Redis call fails reports it with
:meth:`FleetLink.lost`; the link switches to local mode once, logs it, and tells its
listeners (the budgets keep to this process's share; the fleet tells the hub, which
reschedules its own jobs). The fleet's renewal loop reconnects and calls
:meth:`FleetLink.regained`.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from .._log import get_logger
from ._store import FleetKeys, FleetStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .._clock import Clock

__all__ = ["FleetLink", "LostListener"]

log = get_logger()

T = TypeVar("T")

#: Hears that Redis went away: the fleet's size at the last heartbeat (None: this
#: process never reached the fleet, and does not know its size).
LostListener = Callable[[int | None], None]


class FleetLink:
    """One process's connection to its fleet's Redis, shared by every part of the fleet.

    Attributes:
        keys: the fleet's key names.
        id: this process's member id (``host:pid:random``).
        connected: Redis answered the last call (False: local mode).
        members: live processes at the last heartbeat.
        outages: times Redis went away.
        errors: the exceptions that mean Redis is unreachable.
    """

    def __init__(self, url: str, *, prefix: str, lease_ttl: float, clock: Clock) -> None:
        self.url = url
        self.keys = FleetKeys(prefix)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease_ttl = lease_ttl
        self.clock = clock
        self.log = log.bind(fleet=prefix)
        self.connected = False
        self.ever_connected = False
        self.members = 1
        self.outages = 0
        self.errors: tuple[type[BaseException], ...] = (OSError,)
        self._listeners: list[LostListener] = []
        self._redis: Redis | None = None
        self._store: FleetStore | None = None

    @property
    def store(self) -> FleetStore:
        """The fleet's Redis calls."""
        assert self._store is not None, "the fleet is not open"
        return self._store

    @property
    def is_open(self) -> bool:
        """Whether the connection is open (connected or not)."""
        return self._redis is not None

    async def attempt(self, call: Callable[[FleetStore], Awaitable[T]], local: T) -> T:
        """``call(store)`` while Redis is there; ``local`` if it is not, or fails now.

        The one place a part of the fleet decides what a call means in local mode: a
        failure switches to it (:meth:`lost`) and is answered like it.
        """
        if not self.connected:
            return local
        try:
            return await call(self.store)
        except self.errors as exc:
            self.lost(exc)
            return local

    def listen(self, listener: LostListener) -> None:
        """Call ``listener`` each time Redis goes away."""
        self._listeners.append(listener)

    def open(self) -> None:
        """Create the connection (lazily importing redis-py); nothing is sent yet."""
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
        self._store = FleetStore(self._redis, self.keys, self.id)

    def regained(self) -> None:
        """Redis answers again (or for the first time)."""
        self.connected = True
        self.ever_connected = True

    def lost(self, exc: BaseException) -> None:
        """A Redis call failed: local mode, once per outage, and the listeners hear of it."""
        if not self.connected:
            return
        self.connected = False
        self.outages += 1
        self.log.warning(
            "fleet_redis_unavailable", error=repr(exc), members=self.members, mode="local"
        )
        members = self.members if self.ever_connected else None
        for listener in self._listeners:
            listener(members)

    def never_reached(self, exc: BaseException) -> None:
        """Opening found Redis down: local mode from the start (logged like an outage)."""
        self.connected = True  # so that ``lost`` logs and tells the listeners once
        self.lost(exc)

    async def aclose(self) -> None:
        """Close the connection (shielded: a caller's cancellation still closes it)."""
        redis, self._redis = self._redis, None
        self._store = None
        if redis is not None:
            with anyio.CancelScope(shield=True):
                await redis.aclose()
