"""The fleet's events stream, both ways: what this process tells the others, what it hears.

Status changes go in through ``PUBLISH`` (exactly once fleet-wide, see ``_scripts.py``);
sweep hints and final job errors go in as plain entries, and describe answers that
changed nothing as looks (``LOOK``: when the fleet last described the job), all sent by
one outbox task so the hub never waits on Redis. One reader applies every entry from
another process to the hub, through the :class:`FleetHost` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ._codec import decode
from ._store import ERROR, HINT, decode_error, error_fields, stream_entries

if TYPE_CHECKING:
    from .._errors import TransportError
    from ._coordinator import Fleet
    from ._host import FleetHost

__all__ = ["FleetStream"]


class FleetStream:
    """Sends hints and errors to the fleet's stream and applies what others sent."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self.last_id = "0-0"
        self.remote_events = 0
        self._outbox: list[dict[str, str]] = []
        # Describe answers that changed nothing: job -> when (this process's clock).
        self._looks: dict[str, float] = {}
        # Held while looks are written: a lease is handed over only after its job's
        # last look is in Redis (see ``flush_looks``).
        self._writing_looks = anyio.Lock()
        self._ready = anyio.Event()
        # The status each job was last hinted with: a sweep lists a job again and again
        # while it stays inside the watermark's overlap; the fleet hears it once.
        self._hinted: dict[str, str] = {}

    def share_error(self, name: str, error: TransportError) -> None:
        """Tell every process that ``name`` ended with ``error``."""
        self._send(error_fields(name, error))

    def share_hints(self, hints: Sequence[tuple[str, str]]) -> None:
        """Tell every process what a sweep listed (each job's status once)."""
        hinted = self._hinted
        for name, status in hints:
            if hinted.get(name) != status:
                hinted[name] = status
                self._send({"k": HINT, "j": name, "s": status})

    def share_look(self, name: str) -> None:
        """This process just described ``name`` and its status did not change."""
        self._looks[name] = self._fleet.clock.now()
        self._ready.set()

    def _send(self, fields: dict[str, str]) -> None:
        self._outbox.append(fields)
        self._ready.set()

    async def send_loop(self) -> None:
        """Write the outbox to Redis whenever something is in it."""
        fleet = self._fleet
        while True:
            await self._ready.wait()
            self._ready = anyio.Event()
            entries, self._outbox = self._outbox, []
            if not fleet.connected:
                # Hints are hints; an error is found again by whoever polls next; a look
                # lost only makes a later lease holder describe the job a little early.
                self._looks.clear()
                continue
            try:
                if entries:
                    await fleet.store.add_entries(entries)
                await self.flush_looks()
            except fleet.errors as exc:
                fleet.lost(exc)

    async def flush_looks(self) -> None:
        """Write every look noted so far (waits for a write already on its way).

        Raises:
            the fleet's connection errors (the caller decides what a lost Redis means).
        """
        async with self._writing_looks:
            looks, self._looks = self._looks, {}
            if looks:
                now = self._fleet.clock.now()
                await self._fleet.store.look({name: now - at for name, at in looks.items()})

    async def read_loop(self, host: FleetHost) -> None:
        """Apply other processes' entries to ``host`` until cancelled."""
        fleet = self._fleet
        while True:
            if not fleet.connected:
                await fleet.clock.sleep(0.1)
                continue
            try:
                reply = await fleet.store.read(self.last_id, 1000)
            except fleet.errors as exc:
                fleet.lost(exc)
                continue
            for entry_id, fields in stream_entries(reply):
                self.last_id = entry_id
                name = fields.get("j", "")
                if fields.get("o") == fleet.id or name not in host.watched():
                    continue
                self._apply(host, name, fields)
            await anyio.lowlevel.checkpoint()

    def _apply(self, host: FleetHost, name: str, fields: dict[str, str]) -> None:
        kind = fields.get("k")
        if kind == HINT:
            host.hint(name, fields.get("s", ""))
        elif kind == ERROR:
            self.remote_events += 1
            host.apply_remote_error(name, decode_error(name, fields.get("e", "{}")))
        elif host.wants(name, fields["s"]):
            self.remote_events += 1
            host.apply_remote(name, decode(fields["d"]))

    async def catch_up(self, host: FleetHost, names: Sequence[str]) -> None:
        """Apply the fleet's last status of jobs polled elsewhere (heals a gap in the
        stream, e.g. entries trimmed or missed while Redis was away): status first."""
        store = self._fleet.store
        statuses = await store.statuses(names)
        stale = [
            name
            for name, status in zip(names, statuses, strict=True)
            if status and host.wants(name, status)
        ]
        if not stale:
            return
        for name, job in zip(stale, await store.snapshot(stale), strict=True):
            text = job.description
            if text:
                self.remote_events += 1
                host.apply_remote(name, decode(text))
