"""Running ``watch`` and ``wait``: one Poller, the events, the output, Ctrl-C, exit status."""

from __future__ import annotations

import enum
import functools
import itertools
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal, TextIO

import anyio
import anyio.to_thread
from rich.console import Console
from rich.live import Live

from .. import (
    CredentialsError,
    Event,
    JobStatus,
    Poller,
    StateError,
    StatusChange,
    WaitTimeoutError,
)
from ._board import Board
from ._connect import Connection, check_reachable, open_client
from ._exit import CliError, ExitCode
from ._jsonl import event_to_json
from ._lines import line_writer
from ._view import final_lines, live_view, summary

if TYPE_CHECKING:
    from types_aiobotocore_sagemaker import SageMakerClient

    from .. import PollerOptions

__all__ = [
    "Output",
    "StrategyName",
    "WatchSettings",
    "interruptible",
    "one_line_summary",
    "run_wait",
    "run_watch",
    "say",
]


StrategyName = Literal["auto", "describe", "sweep"]

#: Renders the live view once (the whole write done when it returns).
Refresh = Callable[[], Awaitable[None]]


class Output(str, enum.Enum):
    """The ``--output`` choices of ``watch``."""

    LIVE = "live"
    JSONL = "jsonl"


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """Everything ``watch``/``wait`` were asked to do."""

    names: Sequence[str]
    connection: Connection
    max_rate: float | None = None
    poll_interval: float | None = None
    timeout: float | None = None
    not_found_grace: float = 60.0
    strategy: StrategyName = "auto"
    state: str | None = None
    consumer: str | None = None

    def poller_options(self, client: SageMakerClient) -> PollerOptions:
        """The Poller's options, calling SageMaker through ``client``."""
        options: PollerOptions = {
            "client": client,
            "max_concurrency": self.connection.max_concurrency,
            "not_found_grace": self.not_found_grace,
            "strategy": self.strategy,
        }
        if self.max_rate is not None:
            options["max_rate"] = self.max_rate
        if self.poll_interval is not None:
            options["poll_interval"] = self.poll_interval
        if self.state is not None:
            options["state"] = self.state
        return options


async def interruptible(work: Callable[[], Awaitable[None]], board: Board) -> None:
    """Run ``work``; the first Ctrl-C cancels it and marks ``board`` interrupted.

    Cancelling only ``work`` (not the whole program) lets the caller still print its
    summary and close connections. A second Ctrl-C finds Python's default handler again
    and stops the process the usual way.

    Raises:
        Exception: whatever ``work`` raised, unwrapped from the task group.
    """
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        scope = anyio.CancelScope()
        if threading.current_thread() is threading.main_thread():
            tg.start_soon(_cancel_on_sigint, scope, board)
        with scope:
            try:
                await work()
            except Exception as exc:  # re-raised below, outside the task group, unwrapped
                failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _cancel_on_sigint(scope: anyio.CancelScope, board: Board) -> None:
    try:
        receiver = anyio.open_signal_receiver(signal.SIGINT)
    except NotImplementedError:  # Windows: Ctrl-C raises KeyboardInterrupt instead
        return
    with receiver as signals:
        async for _ in signals:
            board.interrupted = True
            scope.cancel()
            return


@asynccontextmanager
async def _open_poller(settings: WatchSettings, client: SageMakerClient) -> AsyncIterator[Poller]:
    """The Poller; a state file it cannot use is a usage error (the message says why)."""
    async with AsyncExitStack() as stack:
        try:
            poller = await stack.enter_async_context(Poller(**settings.poller_options(client)))
        except StateError as exc:
            raise CliError(str(exc)) from None
        yield poller


async def _watch_jobs(
    settings: WatchSettings,
    board: Board,
    on_event: Callable[[Event], Awaitable[None]],
    refresh: Refresh | None,
    refresh_every: float,
) -> None:
    """Watch every job to its end (or the timeout), feeding ``board`` and ``on_event``."""
    failure: Exception | None = None
    async with open_client(settings.connection) as client:
        await check_reachable(client, settings.names[0])
        async with (
            _open_poller(settings, client) as poller,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(_sample_forever, poller, board, refresh, refresh_every)
            try:
                try:
                    watch = poller.watch(
                        settings.names, timeout=settings.timeout, consumer=settings.consumer
                    )
                except ValueError as exc:  # a consumer name the Poller refuses: usage
                    raise CliError(str(exc)) from None
                async with watch as events:
                    async for event in events:
                        board.record(event)
                        await on_event(event)
                if settings.state is not None:
                    await _settled(poller, settings, board)
            except WaitTimeoutError:
                board.timed_out = True
            except CredentialsError as exc:
                failure = CliError(str(exc))
            except Exception as exc:  # re-raised below, outside the task groups, unwrapped
                failure = exc
            finally:
                tg.cancel_scope.cancel()
                board.sample(poller.stats)
                if refresh is not None:
                    with anyio.CancelScope(shield=True):  # the last render, once cancelled
                        await refresh()
    if failure is not None:
        raise failure


async def _settled(poller: Poller, settings: WatchSettings, board: Board) -> None:
    """Count the jobs the consumer saw finish in an earlier run (from the state file)."""
    missing = await board.unfinished_names()
    if not missing:
        return
    finals = await poller.wait_until_done(missing, consumer=settings.consumer)
    now = datetime.now(timezone.utc)
    for name, description in finals.items():
        status = JobStatus(description["OptimizationJobStatus"])
        board.record(StatusChange(name, None, status, description, now))


async def _sample_forever(
    poller: Poller, board: Board, refresh: Refresh | None, every: float
) -> None:
    while True:
        board.sample(poller.stats)
        if refresh is not None:
            await refresh()
        await anyio.sleep(every)


async def _ignore(event: Event) -> None:
    """An event's own output: none (the board shows it)."""


def say(console: Console, text: str) -> None:
    """Print ``text`` as is: no markup, no highlighting, never wrapped."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def one_line_summary(board: Board) -> str:
    """The run in one line, for stderr next to JSON lines on stdout."""
    counts = ", ".join(f"{state} {n}" for state, n in board.counts().items() if n)
    stats = board.stats
    requests = (
        f"; {stats.total_requests:,} requests, {stats.requests.get('throttled', 0):,} throttled"
        if stats is not None
        else ""
    )
    line = (
        f"{board.finished}/{board.total} jobs finished in {board.elapsed:.1f} s: {counts}{requests}"
    )
    if board.interrupted:
        line += " (interrupted)"
    elif board.timed_out:
        line += " (timed out)"
    return line


def _timeout_message(board: Board, timeout: float | None) -> str:
    count = board.total - board.finished
    first = itertools.islice(board.unfinished_items(), 10)
    shown = ", ".join(f"{name}={state}" for name, state in first)
    more = f" and {count - 10} more" if count > 10 else ""
    return f"timed out after {timeout:g}s with {count} job(s) unfinished: {shown}{more}"


async def run_watch(
    settings: WatchSettings,
    output: Output,
    *,
    console: Console,
    err_console: Console,
    stdout: TextIO | None = None,
) -> ExitCode:
    """``asyncoptjob watch``: a live view or JSON lines until every job ends."""
    board = await Board.watching(settings.names)
    title = f"asyncoptjob watch: {board.total} job(s)"
    if output is Output.LIVE:
        with Live(console=console, auto_refresh=False, transient=False) as live:

            async def refresh() -> None:
                # The view is a snapshot of the board, made on the loop; rich lays it out
                # and writes it in a worker thread (up to 10 ms of its work at 100,000
                # jobs, and a terminal write may block).
                view = live_view(board, title=title)
                await anyio.to_thread.run_sync(functools.partial(live.update, view, refresh=True))

            try:
                await interruptible(
                    lambda: _watch_jobs(settings, board, _ignore, refresh, 0.25), board
                )
            finally:
                with anyio.CancelScope(shield=True):  # stopping renders the view once more
                    await anyio.to_thread.run_sync(live.stop)
        # The summary's tables are laid out and written in a worker thread too (10 ms of
        # rich's work, and a terminal write may block).
        await anyio.to_thread.run_sync(console.print, summary(board))
    else:
        # Written in a worker thread: a reader that falls behind holds the watch back
        # (past MAX_PENDING lines), not the loop.
        async with line_writer(stdout if stdout is not None else sys.stdout) as lines:

            async def emit(event: Event) -> None:
                await lines.write(event_to_json(event))

            await interruptible(lambda: _watch_jobs(settings, board, emit, None, 1.0), board)
        say(err_console, f"asyncoptjob: {one_line_summary(board)}")
    if board.timed_out and not board.interrupted:
        say(err_console, f"asyncoptjob: {_timeout_message(board, settings.timeout)}")
    return board.exit_code()


async def run_wait(settings: WatchSettings, *, console: Console, err_console: Console) -> ExitCode:
    """``asyncoptjob wait``: block until every job ends, then print each final status."""
    board = await Board.watching(settings.names)
    await interruptible(lambda: _watch_jobs(settings, board, _ignore, None, 1.0), board)
    for line in final_lines(board):
        say(console, line)
    if board.interrupted:
        say(err_console, f"asyncoptjob: interrupted; {one_line_summary(board)}")
    elif board.timed_out:
        say(err_console, f"asyncoptjob: {_timeout_message(board, settings.timeout)}")
    return board.exit_code()
