"""The fleet: the coordination of many processes, assembled from parts that share a link.

:class:`Fleet` implements :class:`~.._coordination.Coordination` for processes sharing a
Redis. It owns no connection state of its own: the :class:`~._link.FleetLink` holds the
connection and the connected/lost state; the budgets (``_budget``), the job leases
(``_leases``), the events stream (``_stream``), the sweep lease (``_sweeps``) and the
cursor store (``_cursors``) each depend on the link alone. The fleet wires them, answers
the hub's questions, and runs the renewal loop that heartbeats, balances and renews
leases, and reconnects after an outage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from .._coordination import Claim
from .._log import get_logger
from .._stats import FleetStats
from ._budget import FleetRateLimiter
from ._codec import decode
from ._cursors import RedisStore
from ._leases import JobLeases
from ._link import FleetLink
from ._store import decode_error
from ._stream import FleetStream
from ._sweeps import FleetSweeps

if TYPE_CHECKING:
    from .._clock import Clock
    from .._coordination import CoordinationHost
    from .._errors import TransportError
    from .._events import Description, JobStatus, JobSummary
    from ._store import FleetStore, Snapshot

__all__ = ["Fleet"]

log = get_logger()


class Fleet:
    """One process's membership in a fleet of Pollers sharing a Redis.

    Internal: ``Poller(redis_url=...)`` opens one. See :mod:`asyncoptjob._fleet` for the
    keys, the scripts and the lease protocol.
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
        self.link = link = FleetLink(url, prefix=prefix, lease_ttl=lease_ttl, clock=clock)
        self.renew_every = lease_ttl / 3
        self.stream = FleetStream(link)
        self.leases = JobLeases(link, self.stream)
        self.sweeps = FleetSweeps(link, self.stream)
        # Describes slow-start fleet-wide (Poller option ``initial_rate``); List calls do
        # not, as a single Poller's sweeps do not.
        self.budget = FleetRateLimiter(
            link, max_rate=max_rate, initial_rate=initial_rate, clock=clock
        )
        #: The fleet's List budget (sweeps), shared like the describe budget.
        self.list_budget = FleetRateLimiter(
            link, max_rate=list_max_rate, clock=clock, key=link.keys.list_budget
        )
        #: Durable consumers' cursors, in the fleet's Redis.
        self.cursors = RedisStore(link)
        # Statuses to publish even if unchanged here: the fleet's record may be behind
        # (after an outage, everything this process watches).
        self._unsynced: set[str] = set()
        self._widened = anyio.Event()
        link.listen(self._lost)
        self._renewed_at = -math.inf

    @property
    def owned(self) -> set[str]:
        """The jobs this process polls for the fleet."""
        return self.leases.owned

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Connect; start in local mode if Redis is down."""
        link = self.link
        link.open()
        try:
            await link.store.ping()
            await self.leases.heartbeat()
            self.stream.last_id = await link.store.last_event_id()
        except link.errors as exc:
            link.never_reached(exc)
        else:
            link.regained()

    async def aclose(self) -> None:
        """Give every lease back and leave the fleet (best effort, at most 2 s).

        Shielded: a Poller closed by its caller's cancellation (a service shutting down)
        still hands its leases over at once, rather than after their TTL.
        """
        link = self.link
        if not link.is_open:
            return
        try:
            if link.connected:
                with anyio.move_on_after(2.0, shield=True):
                    # What this process saw and has not written yet (its send loop is
                    # cancelled by now): a terminal status must reach the fleet.
                    await self.stream.flush()
                    async with self.leases.lock:
                        self.leases.released |= self.owned
                        self.leases.owned = set()
                        await self.leases.release()
                    await self.sweeps.release()
                    await link.store.leave()
        except link.errors as exc:
            link.log.info("fleet_close_incomplete", error=repr(exc))
        finally:
            await link.aclose()

    def _lost(self, members: int | None) -> None:
        # Heard from the link (maybe inside a budget's acquire): the hub is told by the
        # relay task, not from here.
        self._widened.set()

    # -- the hub's side (Coordination) --------------------------------------------------

    def owns(self, name: str) -> bool:
        """Whether this process polls ``name`` (every job, while Redis is away)."""
        return not self.link.connected or name in self.owned

    def forget(self, name: str) -> None:
        """``name`` left the hub: hand its lease back (batched, on the next renewal)."""
        self.leases.forget(name)
        self._unsynced.discard(name)

    async def attach(self, names: Sequence[str]) -> Sequence[Claim]:
        """Claim the new jobs' leases; tell the hub the fleet's last status and errors.

        A job whose lease becomes this process's is described when its poll interval,
        counted from the fleet's last describe of it, runs out: at once if the fleet
        never described it (or long ago), and never twice because a subscriber moved.
        """
        ttl = self.link.lease_ttl

        async def read(store: FleetStore) -> list[Claim]:
            claimed = await store.claim(names, ttl)
            snapshot = await store.snapshot(names)
            errors = await store.errors(names)
            return self._claims(names, claimed, snapshot, errors)

        async with self.leases.lock:
            claims = await self.link.attempt(read, None)
        # Local mode: this process polls them all.
        return claims if claims is not None else [Claim(name) for name in names]

    def _claims(
        self,
        names: Sequence[str],
        claimed: Sequence[int],
        snapshot: Sequence[Snapshot],
        errors: Sequence[str | None],
    ) -> list[Claim]:
        claims = []
        released = self.leases.released
        for name, flag, job, text in zip(names, claimed, snapshot, errors, strict=True):
            gained = flag == 1 and name not in self.owned
            if gained:
                # Ours now. A hand-back still pending (the job left the hub, or was shed
                # for balance) is called off: the lock keeps it from being on its way.
                released.discard(name)
                self.owned.add(name)
            claims.append(
                Claim(
                    name,
                    gained=gained,
                    age=job.age,
                    description=decode(job.description) if job.description else None,
                    error=decode_error(name, text) if text else None,
                )
            )
        return claims

    def publish(self, name: str, previous: JobStatus | None, description: Description) -> None:
        """Record an applied answer in Redis; a new status goes to the whole fleet once."""
        status = description["OptimizationJobStatus"]
        if previous is not None and previous.value == status and name not in self._unsynced:
            # No news, but a look: whoever takes the lease over knows when it is due.
            if self.link.connected:
                self.stream.share_look(name)
            return
        self._unsynced.discard(name)
        self.stream.share_status(name, description)

    def share_error(self, name: str, error: TransportError) -> None:
        """A job this process polled ended with ``error``: every watcher hears of it."""
        if self.link.connected and name in self.owned:
            self.stream.share_error(name, error)

    async def sweep_turn(self, ttl: float) -> bool:
        """Whether this process sweeps now (it holds, or just took, the sweep lease)."""
        return await self.sweeps.sweep_turn(ttl)

    async def sweep_watermark(self) -> float | None:
        """Where the fleet's sweeps got to (None: no window finished yet, or local)."""
        return await self.sweeps.sweep_watermark()

    async def share_listed(
        self, summaries: Sequence[JobSummary], watermark: float | None, *, relisted: bool = False
    ) -> None:
        """Hand a sweep's (or a re-list's) List entries and watermark to the others."""
        await self.sweeps.share_listed(summaries, watermark, relisted=relisted)

    async def share_relist(self, *, done: bool) -> None:
        """A re-list begins (or is done), for the other processes."""
        await self.sweeps.share_relist(done=done)

    async def relist_since(self, oldest: float | None) -> float | None:
        """Where the holder's re-list starts: the oldest job any live process watches."""
        return await self.sweeps.relist_since(oldest)

    # -- background ---------------------------------------------------------------------

    async def run(self, host: CoordinationHost) -> None:
        """Renew leases, read and write the fleet's stream, relay outages, until cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._lease_loop, host)
            tg.start_soon(self.stream.read_loop, host)
            tg.start_soon(self.stream.send_loop)
            tg.start_soon(self._relay_outages, host)

    async def _relay_outages(self, host: CoordinationHost) -> None:
        while True:
            await self._widened.wait()
            self._widened = anyio.Event()
            if not self.link.connected:
                host.ownership_widened()

    async def _lease_loop(self, host: CoordinationHost) -> None:
        link = self.link
        while True:
            if link.connected:
                wait = self._renewed_at + self.renew_every - link.clock.now()
                if wait > 0:
                    await link.clock.sleep(wait)
                    continue
                self._renewed_at = link.clock.now()
                try:
                    await self._renew(host)
                except link.errors as exc:
                    link.lost(exc)
            else:
                try:
                    await self._reconnect(host)
                except link.errors:
                    await link.clock.sleep(min(self.renew_every, 0.5))

    async def _renew(self, host: CoordinationHost) -> None:
        leases = self.leases
        store = self.link.store
        await leases.heartbeat()
        watched = host.watched()
        async with leases.lock:
            shed = leases.shed(host.in_flight)
            if shed:
                log.info("fleet_leases_shed", jobs=shed, fair_share=leases.fair_share())
            await leases.release()
            gained, lost = await leases.renew(watched)
            for name in lost:
                log.info("fleet_lease_lost", job_name=name)
            if gained:
                # Due when the job's poll interval from the fleet's last look runs out: a
                # hand-over costs no describe; a dead holder's stale job is due at once.
                # The fleet's status goes first: the stream may not have brought it here
                # yet, and a job whose status is unknown here would be due at once.
                for name, job in zip(gained, await store.snapshot(gained), strict=True):
                    if job.status and job.description and host.wants(name, job.status):
                        host.apply_remote(name, decode(job.description))
                    host.lease_gained(name, job.age)
                log.info("fleet_leases_taken", jobs=len(gained))
        await self.stream.catch_up(host, [name for name in watched if name not in self.owned])
        listings = host.listings
        if listings.lists_first:
            # Where the sweep-lease holder's re-lists must start to show this process's jobs.
            await self.sweeps.note_oldest(await listings.oldest_created())

    async def _reconnect(self, host: CoordinationHost) -> None:
        link = self.link
        await link.store.ping()
        await self.leases.heartbeat()
        await self.stream.publish_backlog()
        watched = host.watched()
        self._unsynced = set(watched)
        names = list(watched)
        claimed = await link.store.claim(names, link.lease_ttl)
        self.leases.owned = {name for name, flag in zip(names, claimed, strict=True) if flag == 1}
        link.regained()
        link.log.warning(
            "fleet_redis_reconnected", members=link.members, owned=len(self.owned), jobs=len(names)
        )
        await self.stream.catch_up(host, [name for name in watched if name not in self.owned])

    def statistics(self) -> FleetStats:
        """A snapshot of this process's part in the fleet."""
        link = self.link
        return FleetStats(
            connected=link.connected,
            members=link.members,
            leases=len(self.owned) if link.connected else 0,
            published=self.stream.published,
            remote_events=self.stream.remote_events,
            outages=link.outages,
            budget_round_trips=self.budget.round_trips,
            sweep_lease=self.sweeps.held,
        )

    def __repr__(self) -> str:
        state = "connected" if self.link.connected else "local"
        return f"<Fleet {self.link.keys.prefix!r} {state} owned={len(self.owned)}>"
