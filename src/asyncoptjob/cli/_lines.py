"""Lines for standard output, written in a worker thread: ``watch --output jsonl``.

A write to a pipe blocks while its reader is behind (``jq`` on a slow machine, a
paused ``less``): on the loop, that would stop every describe and Ctrl-C with it.
The watch hands each line to a :class:`LineWriter`; a task writes what has gathered,
a batch at a time, in a worker thread. Past :data:`MAX_PENDING` lines waiting, the
watch waits for the reader instead of gathering more. Every line handed over is
written before the writer closes, a cancelled watch's too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

import anyio
import anyio.to_thread

__all__ = ["MAX_PENDING", "LineWriter", "line_writer"]

#: Lines that may wait for the reader before the watch waits too.
MAX_PENDING = 10_000


class LineWriter:
    """Lines to ``out``, written by :meth:`run` in a worker thread, a batch at a time.

    Args:
        out: the text stream (flushed after each batch).
        max_pending: lines that may wait to be written before :meth:`write` waits.
    """

    def __init__(self, out: TextIO, *, max_pending: int = MAX_PENDING) -> None:
        self._out = out
        self._max_pending = max_pending
        self._pending: list[str] = []
        self._gathered = anyio.Event()  # set when a line is waiting
        self._room = anyio.Event()  # set when the lines waiting were taken
        self._error: OSError | None = None
        self._writing = anyio.Lock()  # one batch at a time, in order

    async def write(self, line: str) -> None:
        """Hand over ``line`` (without its newline); wait while the writer is
        :data:`MAX_PENDING` lines behind.

        Raises:
            OSError: an earlier write failed (a closed pipe: BrokenPipeError).
        """
        while len(self._pending) >= self._max_pending and self._error is None:
            await self._room.wait()
        self.raise_error()
        self._pending.append(line)
        self._gathered.set()

    async def run(self) -> None:
        """Write the lines as they gather, until cancelled."""
        while True:
            await self._gathered.wait()
            self._gathered = anyio.Event()
            await self.flush()

    async def flush(self) -> None:
        """Write every line waiting now (shielded: a batch taken is a batch written)."""
        with anyio.CancelScope(shield=True):
            async with self._writing:
                await self._write_pending()

    def raise_error(self) -> None:
        """Raise the error a write met, if one did.

        Raises:
            OSError: that error.
        """
        if self._error is not None:
            raise self._error

    async def _write_pending(self) -> None:
        while self._pending and self._error is None:
            batch, self._pending = self._pending, []
            room, self._room = self._room, anyio.Event()
            room.set()
            try:
                await anyio.to_thread.run_sync(_write_all, self._out, batch)
            except OSError as exc:
                self._error = exc
                self._room.set()


def _write_all(out: TextIO, lines: list[str]) -> None:
    out.write("".join(f"{line}\n" for line in lines))
    out.flush()


@asynccontextmanager
async def line_writer(out: TextIO) -> AsyncIterator[LineWriter]:
    """A :class:`LineWriter` to ``out``, writing while the block runs; on the way out,
    every line handed over is written.

    Raises:
        OSError: a write failed (the lines after it are not written).
    """
    writer = LineWriter(out)
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        try:
            yield writer
        except Exception as exc:  # re-raised below, outside the task group, unwrapped
            failure = exc
        finally:
            await writer.flush()
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    writer.raise_error()
