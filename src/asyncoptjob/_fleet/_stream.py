"""The fleet's events stream, both ways: what this process tells the others, what it hears.

Status changes go in through ``PUBLISH`` (exactly once fleet-wide, see ``_scripts.py``);
the List entries a sweep or a re-list found (a page of summaries per entry, each job's
status once for sweeps; all of a re-list's, between its begin and done markers) and
final job errors go in as plain entries, and describe answers that
changed nothing as looks (``LOOK``: when the fleet last described the job), all sent by
one outbox task so the hub never waits on Redis. One reader applies every entry from
another process to the hub, through the :class:`~.._coordination.CoordinationHost`
listener.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ._codec import decode, encode
from ._store import ERROR, HINT, LIST, RELIST, decode_error, error_fields, stream_entries

if TYPE_CHECKING:
    from .._coordination import CoordinationHost
    from .._errors import TransportError
    from .._events import Description, JobSummary
    from ._link import FleetLink

__all__ = ["PAGE", "FleetStream"]

#: List entries per stream entry (a List page's worth).
PAGE = 100


class FleetStream:
    """Sends statuses, hints, errors and looks to the fleet and applies what others sent.

    Attributes:
        last_id: the last stream entry read.
        remote_events: status changes and errors applied from other processes.
        published: status changes this process published (each once fleet-wide).
        backlog: statuses seen while Redis was away, published once it is back
            (:meth:`publish_backlog`; terminal ones included, so nothing is lost).
    """

    def __init__(self, link: FleetLink) -> None:
        self._link = link
        self.last_id = "0-0"
        self.remote_events = 0
        self.published = 0
        self.backlog: dict[str, Description] = {}
        self._statuses: list[tuple[str, Description]] = []
        self._outbox: list[dict[str, str]] = []
        # Describe answers that changed nothing: job -> when (this process's clock).
        self._looks: dict[str, float] = {}
        # Held while the outbox is written: a lease is handed over only after its job's
        # last status and look are in Redis (see ``flush``).
        self._writing = anyio.Lock()
        self._ready = anyio.Event()
        # The status each job was last hinted with: a sweep lists a job again and again
        # while it stays inside the watermark's overlap; the fleet hears it once.
        self._hinted: dict[str, str] = {}

    def share_status(self, name: str, description: Description) -> None:
        """Publish a status this process saw (written by the send loop, never awaited)."""
        if not self._link.connected:
            self.backlog[name] = description
            return
        self._statuses.append((name, description))
        self._ready.set()

    def share_error(self, name: str, error: TransportError) -> None:
        """Tell every process that ``name`` ended with ``error``."""
        self._send(error_fields(name, error))

    def share_listed(self, summaries: Sequence[JobSummary], *, relisted: bool = False) -> None:
        """Tell every process what a sweep listed (each job's status once), or what a
        re-list showed (every entry: each process notes which of its jobs it showed)."""
        if not relisted:
            hinted = self._hinted
            fresh = []
            for summary in summaries:
                name, status = summary["OptimizationJobName"], summary["OptimizationJobStatus"]
                if hinted.get(name) != status:
                    hinted[name] = status
                    fresh.append(summary)
            summaries = fresh
        for start in range(0, len(summaries), PAGE):
            fields = {"k": LIST, "e": encode(list(summaries[start : start + PAGE]))}
            if relisted:
                fields["r"] = "1"
            self._send(fields)

    def share_relist(self, *, done: bool) -> None:
        """Tell every process a re-list begins, or is done."""
        self._send({"k": RELIST, "p": "done" if done else "begin"})

    def share_look(self, name: str) -> None:
        """This process just described ``name`` and its status did not change."""
        self._looks[name] = self._link.clock.now()
        self._ready.set()

    def _send(self, fields: dict[str, str]) -> None:
        self._outbox.append(fields)
        self._ready.set()

    async def send_loop(self) -> None:
        """Write the outbox to Redis whenever something is in it."""
        link = self._link
        while True:
            await self._ready.wait()
            self._ready = anyio.Event()
            if not link.connected:
                # Statuses wait for Redis; hints are hints; an error is found again by
                # whoever polls next; a look lost only makes a later lease holder
                # describe the job a little early.
                statuses, self._statuses = self._statuses, []
                self.backlog.update(statuses)
                self._outbox.clear()
                self._looks.clear()
                continue
            try:
                await self.flush()
            except link.errors as exc:
                link.lost(exc)

    async def flush(self) -> None:
        """Write every status, entry and look noted so far (after a write on its way).

        Raises:
            the fleet's connection errors (the caller decides what a lost Redis means);
            the statuses not written go to :attr:`backlog`.
        """
        store = self._link.store
        async with self._writing:
            statuses, self._statuses = self._statuses, []
            entries, self._outbox = self._outbox, []
            looks, self._looks = self._looks, {}
            done = 0
            try:
                for name, description in statuses:
                    await self._publish(name, description)
                    done += 1
            except self._link.errors:
                self.backlog.update(statuses[done:])
                raise
            if entries:
                await store.add_entries(entries)
            if looks:
                now = self._link.clock.now()
                await store.look({name: now - at for name, at in looks.items()})

    async def publish_backlog(self) -> None:
        """Publish what was seen while Redis was away (kept if Redis fails again)."""
        backlog, self.backlog = self.backlog, {}
        try:
            for name, description in backlog.items():
                await self._publish(name, description)
        except self._link.errors:
            self.backlog = {**backlog, **self.backlog}
            raise

    async def _publish(self, name: str, description: Description) -> None:
        status = description["OptimizationJobStatus"]
        if await self._link.store.publish(name, status, description):
            self.published += 1

    async def read_loop(self, host: CoordinationHost) -> None:
        """Apply other processes' entries to ``host`` until cancelled."""
        link = self._link
        while True:
            if not link.connected:
                await link.clock.sleep(0.1)
                continue
            try:
                reply = await link.store.read(self.last_id, 1000)
            except link.errors as exc:
                link.lost(exc)
                continue
            for entry_id, fields in stream_entries(reply):
                self.last_id = entry_id
                if fields.get("o") == link.id:
                    continue
                kind = fields.get("k")
                if kind == LIST:
                    self._listed(host, fields)
                    await anyio.lowlevel.checkpoint()
                elif kind == RELIST:
                    await self._relist(host, fields.get("p"))
                elif (name := fields.get("j", "")) in host.watched():
                    self._apply(host, name, kind, fields)
            await anyio.lowlevel.checkpoint()

    def _apply(
        self, host: CoordinationHost, name: str, kind: str | None, fields: dict[str, str]
    ) -> None:
        if kind == HINT:  # from a process of an older version: name and status only
            host.hint(name, fields.get("s", ""))
        elif kind == ERROR:
            self.remote_events += 1
            host.apply_remote_error(name, decode_error(name, fields.get("e", "{}")))
        elif host.wants(name, fields["s"]):
            self.remote_events += 1
            host.apply_remote(name, decode(fields["d"]))

    def _listed(self, host: CoordinationHost, fields: dict[str, str]) -> None:
        """The sweep-lease holder's List entries: each watched job's is found here too."""
        watched = host.watched()
        listings = host.listings
        relisted = fields.get("r") == "1"
        summaries: list[JobSummary] = decode(fields.get("e", "[]"))
        for summary in summaries:
            if summary.get("OptimizationJobName") in watched:
                listings.found(summary, relisted=relisted)

    async def _relist(self, host: CoordinationHost, phase: str | None) -> None:
        if phase == "begin":
            host.listings.relist_begin()
        elif phase == "done":
            await host.listings.relist_done()

    async def catch_up(self, host: CoordinationHost, names: Sequence[str]) -> None:
        """Apply the fleet's last status of jobs polled elsewhere (heals a gap in the
        stream, e.g. entries trimmed or missed while Redis was away): status first."""
        store = self._link.store
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
