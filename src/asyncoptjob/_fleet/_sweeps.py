"""The fleet's sweeps are one sweep: one process at a time holds the sweep lease and lists
for everyone, going on from where the last holder got to. Its findings (the List entries
themselves) reach every process, and so do its re-lists: with ``confirm="terminal"`` the
holder re-lists from the oldest job any live process watches (``P:sweep:oldest``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._events import JobSummary
    from ._link import FleetLink
    from ._store import FleetStore
    from ._stream import FleetStream

__all__ = ["FleetSweeps"]


class FleetSweeps:
    """The sweep lease (``P:sweep``) and the fleet's watermark (``P:sweep:watermark``).

    While Redis is away every process sweeps for itself (local mode).

    Attributes:
        held: this process holds the sweep lease.
    """

    def __init__(self, link: FleetLink, stream: FleetStream) -> None:
        self._link = link
        self._stream = stream
        self.held = False
        # The sweep watermark this process last wrote to Redis.
        self._watermark: float | None = None
        # The oldest CreationTime of this process's jobs last written to Redis.
        self._oldest: float | None = None
        link.listen(self._lost)

    def _lost(self, members: int | None) -> None:
        self.held = False

    async def sweep_turn(self, ttl: float) -> bool:
        """Whether this process sweeps now: it holds (or just took) the sweep lease; in
        local mode every process sweeps for itself.

        Args:
            ttl: how long the lease lasts unless renewed (a few sweep intervals).
        """
        held = await self._link.attempt(lambda store: store.claim_sweep(ttl), None)
        if held is None:
            return True
        if held != self.held:
            self._link.log.info("fleet_sweep_lease", held=held)
        self.held = held
        return held

    async def sweep_watermark(self) -> float | None:
        """Where the fleet's sweeps got to (None: no sweep finished a window, or local)."""
        return await self._link.attempt(lambda store: store.sweep_watermark(), None)

    async def share_listed(
        self, summaries: Sequence[JobSummary], watermark: float | None, *, relisted: bool = False
    ) -> None:
        """Hand what a sweep or a re-list listed to the other processes (a sweep's each
        job's status once), and how far the sweeps have read (None: unchanged; the next
        holder of the sweep lease goes on from there)."""
        if not self._link.connected:
            return
        self._stream.share_listed(summaries, relisted=relisted)
        if watermark is None or watermark == self._watermark:
            return

        async def advance(store: FleetStore) -> float | None:
            await store.advance_sweep_watermark(watermark)
            return watermark

        self._watermark = await self._link.attempt(advance, self._watermark)

    async def share_relist(self, *, done: bool) -> None:
        """Tell the other processes a re-list begins, or is done."""
        if self._link.connected:
            self._stream.share_relist(done=done)

    async def note_oldest(self, oldest: float | None) -> None:
        """Record the oldest CreationTime of this process's jobs for the fleet's re-lists."""
        if oldest == self._oldest or not self._link.connected:
            return

        async def note(store: FleetStore) -> float | None:
            await store.note_oldest(oldest)
            return oldest

        self._oldest = await self._link.attempt(note, self._oldest)

    async def relist_since(self, oldest: float | None) -> float | None:
        """Where the holder's re-list starts: the oldest job of any live process (this
        one's ``oldest`` included); in local mode this process's own."""
        await self.note_oldest(oldest)

        async def read(store: FleetStore) -> float | None:
            fleet = await store.fleet_oldest()
            return oldest if fleet is None else min(fleet, oldest or fleet)

        return await self._link.attempt(read, oldest)

    async def release(self) -> None:
        """Hand the sweep lease back if this process holds it (leaving the fleet)."""
        if self.held:
            await self._link.store.release_sweep()
            self.held = False
