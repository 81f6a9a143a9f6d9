"""The SQLite state file: one embedded file per process, written off the event loop.

Schema (version 1; ``PRAGMA user_version`` holds the version and ``PRAGMA
application_id`` marks the file as ours)::

    cursors(consumer TEXT, job TEXT, status TEXT NULL, description TEXT NULL,
            updated_at REAL, PRIMARY KEY (consumer, job)) WITHOUT ROWID
    settings(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID

``status`` is NULL for a job a consumer watches but has committed nothing of yet;
``description`` (JSON, datetimes tagged) is kept for terminal statuses only;
``settings`` holds the learned describe rate and the sweep watermark (JSON).

Versioning: a file of an older schema is upgraded in place, in one transaction, by the
steps in :data:`MIGRATIONS` (version *n* to *n + 1*); a file of a newer schema is
refused, never rewritten. Every failure to open is a :class:`StateError` naming the
file and what to do; nothing is ever emptied or reset.

The file is opened in WAL mode with ``locking_mode=EXCLUSIVE``: this process holds it
until it closes (a second process gets a clear error instead of a corrupted cursor),
and writes are durable across a crash of the process (``synchronous=NORMAL``). Every
statement runs in a worker thread (``anyio.to_thread``), one at a time.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread

from .._errors import StateError
from .._events import JobStatus
from .._fleet._codec import decode, encode
from ._store import BatchedStore, Cursor, Key, Row

if TYPE_CHECKING:
    from .._events import Description

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore"]

T = TypeVar("T")

#: ``PRAGMA application_id`` of a state file: "AOJS".
APPLICATION_ID = 0x414F4A53
SCHEMA_VERSION = 1

#: Version n -> the statements that make it version n + 1.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    0: (
        "CREATE TABLE cursors (consumer TEXT NOT NULL, job TEXT NOT NULL, status TEXT,"
        " description TEXT, updated_at REAL NOT NULL, PRIMARY KEY (consumer, job))"
        " WITHOUT ROWID",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    ),
}

_TERMINAL = tuple(status.value for status in JobStatus if status.is_terminal)


class SQLiteStore(BatchedStore):
    """Cursors in a SQLite file. Open with :meth:`open`; internal (``state=`` opens one)."""

    def __init__(self, path: str, connection: sqlite3.Connection) -> None:
        super().__init__()
        self.path = path
        self.where = path
        self._db = connection
        self._io = anyio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SQLiteStore:
        """Open (creating it if missing) and check ``path``; upgrade an older schema.

        Raises:
            StateError: unwritable, not SQLite or corrupt, newer schema, or in use.
        """
        text = os.fspath(path)
        connection = await anyio.to_thread.run_sync(_connect, text)
        store = cls(text, connection)
        rows = await store._run(lambda db: db.execute("SELECT key, value FROM settings").fetchall())
        store.settings = dict(rows)
        store._settings_written = dict(rows)
        return store

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        async with self._io:
            return await anyio.to_thread.run_sync(work, self._db)

    async def _write(self, batch: Mapping[Key, Row], settings: Mapping[str, str]) -> None:
        def write(db: sqlite3.Connection) -> None:
            now = time.time()
            rows = [
                (consumer, job, status, None if d is None else encode(d), now)
                for (consumer, job), (status, d) in batch.items()
            ]
            with _transaction(db):
                db.executemany(
                    "INSERT INTO cursors (consumer, job, status, description, updated_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (consumer, job) DO UPDATE SET"
                    " status = excluded.status, description = excluded.description,"
                    " updated_at = excluded.updated_at",
                    rows,
                )
                db.executemany(
                    "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                    settings.items(),
                )

        await self._run(write)

    async def _load(self, consumer: str, names: Sequence[str]) -> dict[str, Cursor]:

        def read(db: sqlite3.Connection) -> dict[str, Cursor]:
            wanted = set(names)
            cursors: dict[str, Cursor] = {}
            found = db.execute(
                "SELECT job, status, description FROM cursors WHERE consumer = ?", (consumer,)
            )
            for job, status, description in found:
                if job in wanted and status is not None:
                    final: Description | None = None if description is None else decode(description)
                    cursors[job] = Cursor(JobStatus(status), final)
            return cursors

        return await self._run(read)

    async def register(self, consumer: str, names: Sequence[str]) -> None:
        """Record, before they are watched, that ``consumer`` watches ``names``."""

        def write(db: sqlite3.Connection) -> None:
            now = time.time()
            with _transaction(db):
                db.executemany(
                    "INSERT OR IGNORE INTO cursors (consumer, job, status, description,"
                    " updated_at) VALUES (?, ?, NULL, NULL, ?)",
                    ((consumer, name, now) for name in names),
                )

        await self._run(write)

    async def _unfinished(self, consumer: str) -> list[str]:
        placeholders = ", ".join("?" * len(_TERMINAL))

        def read(db: sqlite3.Connection) -> list[str]:
            found = db.execute(
                "SELECT job FROM cursors WHERE consumer = ? AND (status IS NULL OR status NOT IN"
                f" ({placeholders})) ORDER BY job",
                (consumer, *_TERMINAL),
            )
            return [job for (job,) in found]

        return await self._run(read)

    async def _close(self) -> None:
        await self._run(lambda db: db.close())


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction (the connection is in autocommit mode otherwise)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _connect(path: str) -> sqlite3.Connection:
    """Open ``path`` for this process alone and bring its schema up to date."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise StateError(path, "is a directory: give the path of a file (it is created)")
    if not os.path.isdir(folder):
        raise StateError(path, f"its folder {folder!r} does not exist: create it first")
    try:
        db = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StateError(path, f"cannot be opened ({exc}): check the path and permissions") from exc
    try:
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        # Reading the header takes the lock (a file held elsewhere fails here); the file
        # is checked before anything (even the journal mode) is written to it.
        _check_and_migrate(db, path)
    except StateError:
        db.close()
        raise
    except sqlite3.Error as exc:
        db.close()
        raise _explain(path, exc) from exc
    return db


def _explain(path: str, exc: sqlite3.Error) -> StateError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StateError(
            path,
            "is in use by another process: each process needs its own state file "
            "(or share cursors between processes with redis_url=)",
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StateError(
            path,
            f"is not a readable SQLite file ({text}): restore it from a backup, or give "
            "another path to start afresh (the library never overwrites it)",
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StateError(path, f"cannot be written ({text}): check its permissions")
    return StateError(path, f"cannot be used ({text})")


def _check_and_migrate(db: sqlite3.Connection, path: str) -> None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or tables):
        raise StateError(
            path,
            "is a SQLite database, but not an asyncoptjob state file: give another path",
        )
    if version > SCHEMA_VERSION:
        raise StateError(
            path,
            f"was written by a newer asyncoptjob (schema {version}; this version reads up to "
            f"{SCHEMA_VERSION}): upgrade asyncoptjob, or give another path",
        )
    if version:
        problem = db.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise StateError(
                path,
                f"is corrupt ({problem}): restore it from a backup, or give another path "
                "to start afresh (the library never overwrites it)",
            )
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    if version == SCHEMA_VERSION:
        return
    with _transaction(db):
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                db.execute(statement)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
