"""Job leases: which process polls which job, balanced across the live processes.

A process claims every job a subscriber adds (so it is polled at once); each renewal
then evens the load out. Every process tells the fleet how many leases it holds (the
``P:load`` hash, beside the heartbeat), so each knows the even share, ``leases held /
live processes``; one above it by more than ``BALANCE_SLACK`` hands the surplus back,
one below takes free leases only up to it. A free lease left for others that is still
free at the next renewal is taken whatever the balance: nobody else watches that job.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ._link import FleetLink
    from ._stream import FleetStream

__all__ = ["BALANCE_SLACK", "JobLeases"]

#: Leases a process may hold beyond an even share before it hands the rest back.
BALANCE_SLACK = 0.1


class JobLeases:
    """The leases this process holds, and the balancing rounds that renew them.

    Args:
        link: the fleet's connection.
        stream: where this process's last looks wait to be written; a lease is handed
            back only after its job's last look is in Redis.
    """

    def __init__(self, link: FleetLink, stream: FleetStream) -> None:
        self._link = link
        self._stream = stream
        self.owned: set[str] = set()
        self.released: set[str] = set()
        #: Leases the fleet holds in all (live processes), at the last heartbeat.
        self.fleet_leases = 0
        # Free leases left for others at the last renewal.
        self._left: set[str] = set()
        #: Held by whatever claims or hands leases back (renewal, attach, close), one at
        #: a time. A claim racing a release of the same lease would find it still this
        #: process's, then the release would free it for another process while this
        #: one went on polling the job: two pollers of one job.
        self.lock = anyio.Lock()

    async def heartbeat(self) -> None:
        """Tell the fleet this process lives and how many leases it holds; learn the
        fleet's size and its leases in all."""
        link = self._link
        link.members, self.fleet_leases = await link.store.heartbeat(
            link.lease_ttl, len(self.owned)
        )

    def forget(self, name: str) -> None:
        """``name`` left the hub: hand its lease back on the next renewal."""
        if name in self.owned:
            self.owned.discard(name)
            self.released.add(name)
        self._left.discard(name)

    async def release(self) -> None:
        """Hand back the leases of jobs gone from this process (and shed ones).

        Their last looks go to Redis first, so whoever takes a lease over schedules
        the job from this process's last describe of it, not from an older one.
        Called with :attr:`lock` held.
        """
        names = list(self.released)
        if names:
            await self._stream.flush()
        await self._link.store.release(names)
        self.released.difference_update(names)

    def fair_share(self) -> int:
        """An even share of the leases the live processes hold (at least one)."""
        return max(1, math.ceil(self.fleet_leases / self._link.members))

    def shed(self, in_flight: Callable[[str], bool]) -> int:
        """Give up leases beyond an even share (handed back by :meth:`release`).

        Returns how many. A job with a describe under way (``in_flight``) is kept: its
        answer would reach Redis after the next holder had scheduled it from the look
        before.
        """
        if self._link.members <= 1:
            return 0
        excess = len(self.owned) - math.ceil(self.fair_share() * (1 + BALANCE_SLACK))
        if excess <= 0:
            return 0
        idle = (name for name in self.owned if not in_flight(name))
        shed = list(itertools.islice(idle, excess))
        self.owned.difference_update(shed)
        # Free once released (this round): this round's claim leaves them for others (no
        # room), and if nobody takes them they come back on the round after.
        self.released.update(shed)
        return len(shed)

    async def renew(self, watched: Collection[str]) -> tuple[list[str], list[str]]:
        """Renew this process's leases of ``watched`` and take free ones up to its share.

        Returns:
            ``(gained, lost)``: jobs whose lease became this process's, and jobs whose
            lease another process holds now.
        """
        link = self._link
        names = list(watched)
        room = -1 if link.members <= 1 else max(0, self.fair_share() - len(self.owned))
        flags = await link.store.claim(names, link.lease_ttl, room, self.owned)
        left = {name for name, flag in zip(names, flags, strict=True) if flag == 2}
        orphans = [name for name in names if name in left and name in self._left]
        self._left = left - set(orphans)
        mine = {name for name, flag in zip(names, flags, strict=True) if flag == 1}
        if orphans:
            again = await link.store.claim(orphans, link.lease_ttl)
            mine.update(name for name, flag in zip(orphans, again, strict=True) if flag == 1)
        gained = [name for name in names if name in mine and name not in self.owned]
        lost = [name for name in self.owned if name in watched and name not in mine]
        self.owned = {name for name in self.owned if name in mine} | set(gained)
        for name in [name for name in self.owned if name not in watched]:
            self.forget(name)  # left the hub while the claim was on its way
        return [name for name in gained if name in watched], lost
