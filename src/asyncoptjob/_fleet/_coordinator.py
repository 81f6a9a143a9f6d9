"""The fleet coordinator: leases (jobs and sweeps), shared statuses, the stream, outages."""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import anyio

from .._clock import Clock
from .._errors import TransportError
from .._events import JobStatus
from .._log import get_logger
from .._stats import FleetStats
from ._budget import FleetRateLimiter
from ._codec import decode
from ._leases import JobLeases
from ._store import FleetKeys, FleetStore, decode_error
from ._stream import FleetStream

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .._events import Description
    from ._host import FleetHost
    from ._store import Snapshot

__all__ = ["Fleet", "FleetKeys"]

log = get_logger()


class Fleet:
    """One process's membership in a fleet of Pollers sharing a Redis.

    Internal: ``Poller(redis_url=...)`` opens one. The hub asks it whether this process
    polls a job (:meth:`owns`), hands it every describe answer (:meth:`publish`) and
    every job's final error (:meth:`share_error`), and tells it which jobs are added
    (:meth:`attach`) and gone (:meth:`forget`); the sweep driver asks it for the sweep
    lease (:meth:`sweep_turn`) and hands it what sweeps found (:meth:`share_hints`).
    The fleet sees the hub only as a :class:`FleetHost` and feeds other processes'
    findings back through it. Redis calls live in :class:`FleetStore`.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        max_rate: float | None,
        lease_ttl: float,
        clock: Clock,
        list_max_rate: float | None = None,
        initial_rate: float | None = None,
    ) -> None:
        self.url = url
        self.keys = FleetKeys(prefix)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.renew_every = lease_ttl / 3
        self.log = log.bind(fleet=prefix)
        self.connected = False
        self.ever_connected = False
        self.leases = JobLeases(self)
        self.stream = FleetStream(self)
        self.members = 1
        self.errors: tuple[type[BaseException], ...] = (OSError,)
        # Describes slow-start fleet-wide (Poller option ``initial_rate``); List calls do
        # not, as a single Poller's sweeps do not.
        self.budget = FleetRateLimiter(
            self, max_rate=max_rate, initial_rate=initial_rate, clock=clock
        )
        #: The fleet's List budget (sweeps), shared like the describe budget.
        self.list_budget = FleetRateLimiter(
            self, max_rate=list_max_rate, clock=clock, key=self.keys.list_budget
        )
        self.host: FleetHost | None = None
        self.outages = 0
        self.published = 0
        self.holds_sweep = False
        # The sweep watermark this process last wrote to Redis.
        self._watermark: float | None = None
        self._store: FleetStore | None = None
        self._redis: Redis | None = None
        self._unsynced: set[str] = set()
        # Statuses seen while Redis was away, published once it is back (terminal first
        # of all: a late subscriber must never poll a job the fleet already finished).
        self._backlog: dict[str, Description] = {}
        self._renewed_at = -math.inf

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def owned(self) -> set[str]:
        """The jobs this process polls for the fleet."""
        return self.leases.owned

    @property
    def remote_events(self) -> int:
        """Status changes and errors applied from other processes."""
        return self.stream.remote_events

    @property
    def store(self) -> FleetStore:
        assert self._store is not None, "the fleet is not open"
        return self._store

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
        self._store = FleetStore(self._redis, self.keys, self.id)
        try:
            await self._connect()
            self.stream.last_id = await self.store.last_event_id()
        except self.errors as exc:
            self.connected = True  # so that ``lost`` logs and switches over once
            self.lost(exc)
        else:
            self.connected = True
            self.ever_connected = True

    async def aclose(self) -> None:
        """Give every lease back and leave the fleet (best effort, at most 2 s).

        Shielded: a Poller closed by its caller's cancellation (a service shutting down)
        still hands its leases over at once, rather than after their TTL.
        """
        redis, self._redis = self._redis, None
        if redis is None:
            return
        try:
            if self.connected:
                with anyio.move_on_after(2.0, shield=True):
                    async with self.leases.lock:
                        self.leases.released |= self.owned
                        self.leases.owned = set()
                        await self.leases.release()
                    if self.holds_sweep:
                        await self.store.release_sweep()
                    await self.store.leave()
        except self.errors as exc:
            self.log.info("fleet_close_incomplete", error=repr(exc))
        finally:
            self._store = None
            with anyio.CancelScope(shield=True):
                await redis.aclose()

    async def _connect(self) -> None:
        await self.store.ping()
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        self.members, self.leases.fleet_leases = await self.store.heartbeat(
            self.lease_ttl, len(self.owned)
        )

    def lost(self, exc: BaseException) -> None:
        """Redis failed: poll every watched job locally, on this process's share."""
        if not self.connected:
            return
        self.connected = False
        self.holds_sweep = False
        self.outages += 1
        self.log.warning(
            "fleet_redis_unavailable",
            error=repr(exc),
            members=self.members,
            mode="local",
        )
        # A process that never saw the fleet does not know its size: a conservative share.
        members = self.members if self.ever_connected else None
        self.budget.go_local(members)
        self.list_budget.go_local(members)
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
        self.leases.forget(name)
        self._unsynced.discard(name)

    async def attach(self, host: FleetHost, added: Sequence[str]) -> None:
        """Claim the new jobs' leases and give their subscribers the fleet's last status.

        A job whose lease becomes this process's is described when its poll interval,
        counted from the fleet's last describe of it, runs out: at once if the fleet
        never described it (or long ago), and never twice because a subscriber moved.
        """
        watched = host.watched()
        names = [name for name in added if name in watched]
        if not names:
            return
        if self.connected:
            async with self.leases.lock:
                if await self._claim_attached(host, names, watched):
                    return
        for name in names:  # local mode: every process polls every job it watches
            host.poll_soon(name)

    async def _claim_attached(
        self, host: FleetHost, names: Sequence[str], watched: Collection[str]
    ) -> bool:
        """:meth:`attach`'s Redis part, with the lease lock held; False if Redis is lost."""
        try:
            claimed = await self.store.claim(names, self.lease_ttl)
            snapshot = await self.store.snapshot(names)
            errors = await self.store.errors(names)
        except self.errors as exc:
            self.lost(exc)
            return False
        for name, text in zip(names, errors, strict=True):
            if text:  # another process gave it up for good: the same JobErrorEvent
                host.apply_remote_error(name, decode_error(name, text))
        for name, job in zip(names, snapshot, strict=True):
            _catch_up(host, name, job)
        released = self.leases.released
        for name, flag, job in zip(names, claimed, snapshot, strict=True):
            if flag != 1 or name in self.owned:
                continue  # polled elsewhere, or scheduled here already
            if name not in watched:  # the fleet's status or error just finished it
                released.add(name)
                continue
            # Ours now. A hand-back still pending (the job left the hub, or was shed for
            # balance) is called off: the lock keeps it from being on its way already.
            released.discard(name)
            self.owned.add(name)
            host.lease_gained(name, job.age)
        return True

    async def publish(
        self, name: str, previous: JobStatus | None, description: Description
    ) -> None:
        """Record a describe answer in Redis; a new status goes to the whole fleet once."""
        status = description["OptimizationJobStatus"]
        if not self.connected:
            self._backlog[name] = description
            return
        if previous is not None and previous.value == status and name not in self._unsynced:
            # No news, but a look: whoever takes the lease over knows when it is due.
            self.stream.share_look(name)
            return
        self._unsynced.discard(name)
        try:
            await self._publish(name, status, description)
        except self.errors as exc:
            self.lost(exc)
            self._backlog[name] = description

    async def _publish(self, name: str, status: str, description: Description) -> None:
        if await self.store.publish(name, status, description):
            self.published += 1

    def share_error(self, name: str, error: TransportError) -> None:
        """A job this process polled ended with ``error``: every watcher hears of it."""
        if self.connected and name in self.owned:
            self.stream.share_error(name, error)

    # -- the sweep driver's side (SweepLease) -------------------------------------------

    async def sweep_turn(self, ttl: float) -> bool:
        """Whether this process sweeps now: it holds (or just took) the sweep lease.

        Args:
            ttl: how long the lease lasts unless renewed (a few sweep intervals).
        """
        if not self.connected:
            return True  # local mode: every process sweeps for itself
        try:
            held = await self.store.claim_sweep(ttl)
        except self.errors as exc:
            self.lost(exc)
            return True
        if held != self.holds_sweep:
            self.log.info("fleet_sweep_lease", held=held)
        self.holds_sweep = held
        return held

    async def sweep_watermark(self) -> float | None:
        """Where the fleet's sweeps got to (None: no sweep finished a window, or local)."""
        if not self.connected:
            return None
        try:
            return await self.store.sweep_watermark()
        except self.errors as exc:
            self.lost(exc)
            return None

    async def share_hints(self, hints: Sequence[tuple[str, str]], watermark: float) -> None:
        """Hand what a sweep listed to the other processes (each change once), and how far
        the sweeps have read (so the next holder of the sweep lease goes on from there)."""
        if not self.connected:
            return
        self.stream.share_hints(hints)
        if watermark == self._watermark:
            return
        try:
            await self.store.advance_sweep_watermark(watermark)
        except self.errors as exc:
            self.lost(exc)
        else:
            self._watermark = watermark

    # -- background ---------------------------------------------------------------------

    async def run(self, host: FleetHost) -> None:
        """Renew leases, read the fleet's events and send hints and errors until cancelled."""
        self.host = host
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._lease_loop, host)
            tg.start_soon(self.stream.read_loop, host)
            tg.start_soon(self.stream.send_loop)

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
        watched = host.watched()
        async with self.leases.lock:
            shed = self.leases.shed()
            if shed:
                self.log.info("fleet_leases_shed", jobs=shed, fair_share=self.leases.fair_share())
            await self.leases.release()
            gained, lost = await self.leases.renew(watched)
            for name in lost:
                self.log.info("fleet_lease_lost", job_name=name)
            if gained:
                # Due when the job's poll interval from the fleet's last look runs out: a
                # hand-over costs no describe; a dead holder's stale job is due at once.
                # The fleet's status goes first: the stream may not have brought it here
                # yet, and a job whose status is unknown here would be due at once.
                for name, job in zip(gained, await self.store.snapshot(gained), strict=True):
                    _catch_up(host, name, job)
                    host.lease_gained(name, job.age)
                self.log.info("fleet_leases_taken", jobs=len(gained))
        await self.stream.catch_up(host, [name for name in watched if name not in self.owned])

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
        claimed = await self.store.claim(names, self.lease_ttl)
        self.leases.owned = {name for name, flag in zip(names, claimed, strict=True) if flag == 1}
        self.connected = True
        self.ever_connected = True
        self.log.warning(
            "fleet_redis_reconnected", members=self.members, owned=len(self.owned), jobs=len(names)
        )
        await self.stream.catch_up(host, [name for name in watched if name not in self.owned])

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
            sweep_lease=self.holds_sweep,
        )

    def __repr__(self) -> str:
        state = "connected" if self.connected else "local"
        return f"<Fleet {self.keys.prefix!r} {state} owned={len(self.owned)}>"


def _catch_up(host: FleetHost, name: str, job: Snapshot) -> None:
    """Give ``name``'s subscribers the fleet's last status of it, if that is news here."""
    if job.status and job.description and host.wants(name, job.status):
        host.apply_remote(name, decode(job.description))
