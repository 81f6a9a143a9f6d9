"""The fleet's sweeps are one sweep: one process at a time holds the sweep lease and lists
for everyone, going on from where the last holder got to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._link import FleetLink
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
        link.listen(self._lost)

    def _lost(self, members: int | None) -> None:
        self.held = False

    async def sweep_turn(self, ttl: float) -> bool:
        """Whether this process sweeps now: it holds (or just took) the sweep lease.

        Args:
            ttl: how long the lease lasts unless renewed (a few sweep intervals).
        """
        link = self._link
        if not link.connected:
            return True  # local mode: every process sweeps for itself
        try:
            held = await link.store.claim_sweep(ttl)
        except link.errors as exc:
            link.lost(exc)
            return True
        if held != self.held:
            link.log.info("fleet_sweep_lease", held=held)
        self.held = held
        return held

    async def sweep_watermark(self) -> float | None:
        """Where the fleet's sweeps got to (None: no sweep finished a window, or local)."""
        link = self._link
        if not link.connected:
            return None
        try:
            return await link.store.sweep_watermark()
        except link.errors as exc:
            link.lost(exc)
            return None

    async def share_hints(self, hints: Sequence[tuple[str, str]], watermark: float) -> None:
        """Hand what a sweep listed to the other processes (each change once), and how far
        the sweeps have read (so the next holder of the sweep lease goes on from there)."""
        link = self._link
        if not link.connected:
            return
        self._stream.share_hints(hints)
        if watermark == self._watermark:
            return
        try:
            await link.store.advance_sweep_watermark(watermark)
        except link.errors as exc:
            link.lost(exc)
        else:
            self._watermark = watermark

    async def release(self) -> None:
        """Hand the sweep lease back if this process holds it (leaving the fleet)."""
        if self.held:
            await self._link.store.release_sweep()
            self.held = False
