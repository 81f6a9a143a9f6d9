"""``watch --output jsonl`` writes its lines in a worker thread: a reader that falls
behind holds the watch back, never the loop, and no line handed over is lost."""

from __future__ import annotations

import io
import threading

import anyio
import anyio.lowlevel
import pytest

from asyncoptjob.cli._lines import LineWriter, line_writer


class _Gated(io.StringIO):
    """A stream whose writes wait for ``gate`` (a pipe whose reader is behind)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        if not self.gate.wait(timeout=60):
            raise TimeoutError("the test never opened the gate")
        return super().write(text)


class _Closed(io.StringIO):
    """A pipe whose reader has gone."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


async def test_a_reader_behind_holds_the_watch_back_not_the_loop() -> None:
    out = _Gated()
    accepted: list[str] = []
    done = anyio.Event()

    async def hand_over(writer: LineWriter, line: str) -> None:
        await writer.write(line)
        accepted.append(line)
        done.set()

    async with anyio.create_task_group() as tg:
        writer = LineWriter(out, max_pending=2)
        tg.start_soon(writer.run)
        await writer.write("a")
        # The writer's thread takes "a" and waits on the reader.
        await anyio.to_thread.run_sync(out.entered.wait)
        await writer.write("b")
        await writer.write("c")
        tg.start_soon(hand_over, writer, "d")  # two lines wait already: this one waits
        for _ in range(20):
            await anyio.lowlevel.checkpoint()  # the loop runs meanwhile
        assert accepted == []
        out.gate.set()  # the reader catches up
        with anyio.fail_after(60):
            await done.wait()
        assert accepted == ["d"]
        await writer.flush()
        tg.cancel_scope.cancel()
    assert out.getvalue() == "a\nb\nc\nd\n"


async def test_lines_handed_over_are_written_when_the_watch_is_cancelled() -> None:
    out = io.StringIO()
    with anyio.CancelScope() as scope:
        async with line_writer(out) as writer:
            for n in range(1_000):
                await writer.write(f"line {n}")
            scope.cancel()
            await anyio.sleep(3600)  # cancelled here, lines still waiting
    assert scope.cancelled_caught
    assert out.getvalue().splitlines() == [f"line {n}" for n in range(1_000)]


async def test_a_closed_pipe_ends_the_watch_with_its_error() -> None:
    with pytest.raises(BrokenPipeError):
        async with line_writer(_Closed()) as writer:
            await writer.write("first")
            await writer.flush()  # the write fails: the next line hands the error back
            await writer.write("second")


async def test_a_closed_pipe_at_the_last_flush_is_raised_too() -> None:
    with pytest.raises(BrokenPipeError):
        async with line_writer(_Closed()) as writer:
            await writer.write("only")
