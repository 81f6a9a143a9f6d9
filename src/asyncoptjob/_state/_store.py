"""What every state store does: cursors in, batched commits out, off the event loop.

A store keeps, per consumer and job, the last status that consumer *committed* (and,
for a terminal status, the final description). Commits are cheap calls on the event
loop that only note the row; :meth:`BatchedStore.run` writes the rows noted so far
in one batch every :data:`COMMIT_INTERVAL` seconds (in a worker thread for SQLite, one
pipeline for Redis). A row that has not reached the store when the process dies was
committed by nobody: its event is delivered again after a restart, never lost.

A consumer waits for the store only when one job has two events in a row still
unwritten (:meth:`BatchedStore.wait_written`), so that a restart re-delivers at most
one event per job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from .._events import JobStatus
from .._log import get_logger

if TYPE_CHECKING:
    from .._events import Description

__all__ = ["COMMIT_INTERVAL", "BatchedStore", "Cursor", "Row"]

log = get_logger()

#: Seconds a commit may wait for the next batch: what a crash can cost in re-delivery.
COMMIT_INTERVAL = 0.05
#: Seconds between writes of the remembered settings (learned rate, sweep watermark).
META_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Cursor:
    """One consumer's committed position on one job.

    Attributes:
        status: the last status committed (``None``: watched, nothing committed yet).
        description: the final description, kept for a terminal status only.
    """

    status: JobStatus | None
    description: Description | None = None


#: A noted commit: (status, terminal description or None).
Row = tuple[str, "Description | None"]
Key = tuple[str, str]


class BatchedStore:
    """The batching shared by the SQLite and Redis stores; subclasses do the I/O.

    Subclasses implement :meth:`_write` (one batch of rows and settings),
    :meth:`load`, :meth:`register`, :meth:`_unfinished` and :meth:`_close`.
    """

    #: Where the store lives, for messages.
    where: str = ""

    def __init__(self) -> None:
        self._pending: dict[Key, Row] = {}
        self._writing: dict[Key, Row] = {}
        self._wake = anyio.Event()
        self._urgent = anyio.Event()
        self._written = anyio.Event()
        self._lock = anyio.Lock()
        #: Settings read at open (learned rate, sweep watermark): key -> JSON text.
        self.settings: dict[str, str] = {}
        self._settings_source: Callable[[], Mapping[str, str]] | None = None
        self._settings_written: dict[str, str] = {}
        self.batches = 0
        self.rows = 0

    # -- the watch layer's side ---------------------------------------------------------

    def commit(
        self, consumer: str, name: str, status: JobStatus, description: Description | None
    ) -> None:
        """Note that ``consumer`` handled ``status`` of ``name``; written with the next batch."""
        self._pending[(consumer, name)] = (
            status.value,
            description if status.is_terminal else None,
        )
        self._wake.set()

    def is_written(self, consumer: str, name: str) -> bool:
        """True unless a commit of ``name`` by ``consumer`` is still on its way to the store."""
        key = (consumer, name)
        return key not in self._pending and key not in self._writing

    async def wait_written(self, consumer: str, name: str) -> None:
        """Wait until the commits of ``name`` by ``consumer`` are written (sooner than due)."""
        while not self.is_written(consumer, name):
            written = self._written
            self._urgent.set()
            await written.wait()

    def remember(self, source: Callable[[], Mapping[str, str]]) -> None:
        """Write ``source()`` (settings: key -> JSON text) with the batches, when it changes."""
        self._settings_source = source

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Write batches until cancelled: every ``COMMIT_INTERVAL`` while commits come in."""
        while True:
            with anyio.move_on_after(META_INTERVAL):
                await self._wake.wait()
            if self._pending:
                # Gather a batch (or write at once when a consumer waits on one job).
                with anyio.move_on_after(COMMIT_INTERVAL):
                    await self._urgent.wait()
            await self.flush()

    async def flush(self) -> None:
        """Write every row noted so far, and the settings if they changed."""
        async with self._lock:
            self._wake = anyio.Event()
            self._urgent = anyio.Event()
            batch, self._pending = self._pending, {}
            settings = self._changed_settings()
            if not batch and not settings:
                return
            self._writing = batch
            try:
                await self._write(batch, settings)
            except BaseException:
                # Not written: keep the rows (a newer commit of the same job wins).
                batch.update(self._pending)
                self._pending = batch
                raise
            finally:
                self._writing = {}
                self._written.set()
                self._written = anyio.Event()
            self._settings_written.update(settings)
            self.batches += 1
            self.rows += len(batch)

    async def aclose(self) -> None:
        """Write what is left (shielded from cancellation), then close."""
        with anyio.CancelScope(shield=True):
            try:
                await self.flush()
            finally:
                await self._close()

    def _changed_settings(self) -> dict[str, str]:
        if self._settings_source is None:
            return {}
        current = self._settings_source()
        return {k: v for k, v in current.items() if self._settings_written.get(k) != v}

    # -- the I/O, per store -------------------------------------------------------------

    async def _write(self, batch: Mapping[Key, Row], settings: Mapping[str, str]) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def load(self, consumer: str, names: Sequence[str]) -> dict[str, Cursor]:
        """The cursors ``consumer`` has on ``names`` (jobs without one are left out).

        Commits noted but not written yet count: they are this process's latest word.
        """
        cursors = await self._load(consumer, names)
        noted = {**self._writing, **self._pending}
        if noted:
            wanted = set(names)
            for (who, name), (status, description) in noted.items():
                if who == consumer and name in wanted:
                    cursors[name] = Cursor(JobStatus(status), description)
        return cursors

    async def _load(self, consumer: str, names: Sequence[str]) -> dict[str, Cursor]:
        raise NotImplementedError

    async def register(self, consumer: str, names: Sequence[str]) -> None:
        """Record, before they are watched, that ``consumer`` watches ``names``."""
        raise NotImplementedError

    async def unfinished(self, consumer: str) -> list[str]:
        """The jobs ``consumer`` watched whose terminal status it has not committed, sorted."""
        names = await self._unfinished(consumer)
        # Commits noted but not written yet count too.
        noted = {**self._writing, **self._pending}
        return [
            name
            for name in names
            if not ((row := noted.get((consumer, name))) and JobStatus(row[0]).is_terminal)
        ]

    async def _unfinished(self, consumer: str) -> list[str]:
        raise NotImplementedError
