"""The state file: each bad case is a clear error at open, and nothing in it is reset."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from asyncoptjob import AdaptiveRateLimiter, Poller, StateError
from asyncoptjob._state._sqlite import APPLICATION_ID, SCHEMA_VERSION, SQLiteStore
from asyncoptjob.testing import FakeTransport, ManualClock

pytestmark = pytest.mark.filterwarnings("error")


def _no_calls(request: Any) -> Any:
    raise AssertionError(f"no request expected, got {request}")


def contents(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


async def open_fails(path: Path, match: str) -> StateError:
    before = contents(path)
    with pytest.raises(StateError, match=match) as caught:
        async with Poller(state=str(path), transport=FakeTransport(_no_calls)):
            pass
    assert str(path) in str(caught.value)
    assert caught.value.path == str(path)
    # Nothing was emptied, reset or rewritten.
    assert contents(path) == before
    return caught.value


async def test_an_unwritable_path(tmp_path: Path) -> None:
    await open_fails(tmp_path / "missing" / "w.db", "folder .* does not exist: create it")
    await open_fails(tmp_path, "is a directory")


async def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 100)
    await open_fails(path, "not a readable SQLite file.*restore it from a backup")


async def test_a_corrupt_state_file(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = await SQLiteStore.open(path)
    await store.register("c", [f"job-{i:05}" for i in range(5000)])
    await store.aclose()
    data = bytearray(path.read_bytes())
    assert len(data) > 20_000
    data[8192:16384] = b"\xa5" * 8192  # pages 3-4 of the cursors' b-tree
    path.write_bytes(bytes(data))
    await open_fails(path, "corrupt|not a readable SQLite file")


async def test_another_sqlite_database_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE orders (id INTEGER)")
        db.commit()
    await open_fails(path, "not an asyncoptjob state file")


async def test_a_schema_from_a_newer_version(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await (await SQLiteStore.open(path)).aclose()
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    await open_fails(path, f"newer asyncoptjob \\(schema {SCHEMA_VERSION + 1}.*upgrade")


@contextmanager
def held_elsewhere(path: Path) -> Iterator[None]:
    """Another process holds ``path`` the way a running Poller does."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "db.execute('PRAGMA locking_mode = EXCLUSIVE')\n"
            "db.execute('PRAGMA journal_mode = WAL')\n"
            "db.execute('BEGIN IMMEDIATE'); db.execute('COMMIT')\n"
            "print('holding', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
        holder.stdout.close()


async def test_a_file_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await (await SQLiteStore.open(path)).aclose()
    with held_elsewhere(path):
        await open_fails(path, "in use by another process")
    # Once the other process is gone, the file opens as it was.
    await (await SQLiteStore.open(path)).aclose()


async def test_an_empty_sqlite_file_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    sqlite3.connect(path).close()  # version 0: no tables
    store = await SQLiteStore.open(path)
    await store.aclose()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


async def test_the_learned_rate_and_watermark_are_remembered(tmp_path: Path) -> None:
    path = str(tmp_path / "w.db")
    clock = ManualClock()
    async with Poller(
        state=path, transport=FakeTransport(_no_calls), clock=clock, strategy="sweep"
    ) as p:
        hub = p._opened
        assert hub is not None
        assert isinstance(hub.limiter, AdaptiveRateLimiter)
        assert hub.limiter.snapshot() is None
        hub.limiter.restore(17.0)  # as if it had learned 17/s from throttles
        assert hub.sweeps is not None
        hub.sweeps.sweeper.watermark = 1_000_000.0
    async with Poller(
        state=path, transport=FakeTransport(_no_calls), clock=clock, strategy="sweep"
    ) as p:
        hub = p._opened
        assert hub is not None
        assert hub.sweeps is not None
        assert hub.limiter.rate == pytest.approx(17.0)
        assert hub.sweeps.sweeper.watermark == 1_000_000.0


async def test_restore_starts_at_the_plateau_of_the_learned_rate() -> None:
    clock = ManualClock()
    limiter = AdaptiveRateLimiter(clock=clock)
    assert limiter.rate is None
    assert limiter.snapshot() is None
    limiter.restore(20.0)
    assert limiter.rate == pytest.approx(20.0)
    assert limiter.snapshot() == 20.0
    await clock.advance(2.0)  # probing above it only slowly
    assert 20.0 < (limiter.rate or 0) < 21.0
    with pytest.raises(ValueError, match="rate"):
        limiter.restore(0)
