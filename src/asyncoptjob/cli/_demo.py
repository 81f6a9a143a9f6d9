"""``asyncoptjob demo``: many jobs on an embedded mock endpoint, a throttling spell, a summary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from aiobotocore.session import AioSession
from rich.console import Console
from rich.live import Live
from rich.text import Text

from .. import Poller, PollPolicy, RetryPolicy, client_config
from ..mock import Lifecycle, MockSageMaker
from ._board import Board
from ._exit import ExitCode
from ._run import interruptible, say
from ._view import live_view, progress_line, summary

if TYPE_CHECKING:
    from types_aiobotocore_sagemaker import SageMakerClient

__all__ = ["DemoSettings", "run_demo"]

# Simulated seconds of the longest job phase; scaled so the whole run lasts ``duration``.
_SIMULATED_SPAN = 1500.0


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """What the demo runs.

    Attributes:
        jobs: how many optimization jobs to seed (>= 1).
        duration: real seconds the longest job runs; the whole demo takes a little more.
        live: a live view (else plain progress lines, for pipes and CI).
        seed: seeds the mock, so the mix of outcomes is the same each run.
        spell_rate: describes/s the mock allows during its throttling spell.
    """

    jobs: int = 200
    duration: float = 25.0
    live: bool = True
    seed: int = 7
    spell_rate: float = 10.0

    def lifecycle(self) -> Lifecycle:
        """Jobs that take 1-4 simulated minutes to start and 5-20 to run, sped up."""
        return Lifecycle(
            starting=(60.0, 240.0),
            in_progress=(300.0, 1200.0),
            stopping=(30.0, 90.0),
            time_scale=self.duration / _SIMULATED_SPAN,
        )

    def policy(self) -> PollPolicy:
        """Poll about 25 times over the longest job, backing off to 10 times."""
        return PollPolicy(interval=self.duration / 25, max_interval=self.duration / 10)

    def retry(self) -> RetryPolicy:
        """Backoffs on the demo's time scale, so the throttling spell costs seconds, not minutes."""
        return RetryPolicy(
            initial_wait=self.duration / 250,
            max_wait=self.duration / 12.5,
            max_elapsed=self.duration * 4,
        )


def seed_jobs(mock: MockSageMaker, count: int) -> list[str]:
    """Seed ``count`` jobs: about 10% end FAILED, 8% are STOPPED by a user, the rest complete."""
    failed = round(count * 0.10) if count >= 3 else 0
    stopped = round(count * 0.08) if count >= 3 else 0
    names = mock.seed_jobs(count - failed - stopped, prefix="llama", outcome="COMPLETED")
    names += mock.seed_jobs(failed, prefix="mistral", outcome="FAILED") if failed else []
    names += mock.seed_jobs(stopped, prefix="qwen", outcome="STOPPED") if stopped else []
    return names


@asynccontextmanager
async def _demo_client(url: str, max_concurrency: int) -> AsyncIterator[SageMakerClient]:
    # Dummy credentials and a fixed region: the demo never reads the user's AWS setup.
    kwargs: dict[str, Any] = {
        "region_name": "us-east-1",
        "endpoint_url": url,
        "aws_access_key_id": "demo",
        "aws_secret_access_key": "demo",
        "config": client_config(max_concurrency),
    }
    async with AioSession().create_client("sagemaker", **kwargs) as client:
        yield client


class _Spell:
    """The throttling spell: the mock's describe rate drops for a while, then comes back."""

    def __init__(
        self, mock: MockSageMaker, settings: DemoSettings, announce: Callable[[str], None]
    ):
        self.mock = mock
        self.settings = settings
        self.announce = announce
        self.active = False

    @property
    def notes(self) -> list[str]:
        if not self.active:
            return []
        rate = self.settings.spell_rate
        return [f"throttling spell: the mock now allows only {rate:g} describes/s"]

    async def run(self) -> None:
        duration = self.settings.duration
        await anyio.sleep(duration * 0.3)
        self.mock.set_faults(describe_rate=self.settings.spell_rate)
        self.active = True
        self.announce(
            f"throttling spell begins: describes limited to {self.settings.spell_rate:g}/s "
            f"for {duration * 0.2:.1f} s"
        )
        await anyio.sleep(duration * 0.2)
        self.mock.set_faults(describe_rate=None)
        self.active = False
        self.announce("throttling spell over: the rate limit recovers")


async def run_demo(settings: DemoSettings, *, console: Console) -> ExitCode:
    """Run the demo end to end and print its summary; return the exit status."""
    async with (
        MockSageMaker(seed=settings.seed, lifecycle=settings.lifecycle()) as mock,
        _polling(mock, settings) as poller,
    ):
        # Seeded once the Poller is open: the jobs' clock starts now, so a machine slow to
        # open a client still sees every job's transitions and the throttling spell.
        names = seed_jobs(mock, settings.jobs)
        board = Board(names)
        title = (
            f"asyncoptjob demo: {len(names)} optimization jobs on a mock SageMaker at {mock.url}"
        )
        say(console, title)
        say(console, "(no AWS account needed: nothing leaves 127.0.0.1; Ctrl-C stops it)")
        if settings.live:
            with Live(console=console, auto_refresh=False, transient=False) as live:
                spell = _Spell(mock, settings, lambda _: None)

                def refresh() -> None:
                    live.update(live_view(board, title="", notes=spell.notes), refresh=True)

                await interruptible(
                    lambda: _watch(poller, mock, names, board, spell, refresh, 0.25), board
                )
        else:
            spell = _Spell(
                mock, settings, lambda text: say(console, f"[{board.elapsed:6.1f}s] {text}")
            )

            def progress() -> None:
                say(console, progress_line(board))

            every = max(1.0, settings.duration / 10)
            await interruptible(
                lambda: _watch(poller, mock, names, board, spell, progress, every), board
            )
        console.print(summary(board, title="demo summary", max_problems=5, wrap=False))
        truth = mock.stats()
        mismatched = [
            name
            for name, status in board.status.items()
            if board.status[name] in ("COMPLETED", "FAILED", "STOPPED")
            and mock.status(name) != status
        ]
        console.print(
            Text(
                f"the mock served {truth.count('DescribeOptimizationJob', 'ok'):,} describes and "
                f"throttled {truth.count('DescribeOptimizationJob', 'ThrottlingException'):,}; "
                + (
                    "every final status matches the mock's ground truth"
                    if not mismatched
                    else f"{len(mismatched)} final status(es) differ from the mock's ground truth"
                ),
            ),
            soft_wrap=True,
        )
    if board.interrupted:
        return ExitCode.INTERRUPTED
    # Failed and stopped jobs are part of the show; the demo fails only if it lost a job.
    return ExitCode.OK if not board.unfinished() and not mismatched else ExitCode.FAILED


@asynccontextmanager
async def _polling(mock: MockSageMaker, settings: DemoSettings) -> AsyncIterator[Poller]:
    concurrency = 16
    async with (
        _demo_client(mock.url, concurrency) as client,
        Poller(
            client=client,
            max_concurrency=concurrency,
            poll_interval=settings.policy(),
            retry=settings.retry(),
        ) as poller,
    ):
        yield poller


async def _watch(
    poller: Poller,
    mock: MockSageMaker,
    names: list[str],
    board: Board,
    spell: _Spell,
    refresh: Callable[[], None],
    every: float,
) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(spell.run)
        tg.start_soon(_refresh_forever, poller, board, refresh, every)
        try:
            async for event in poller.watch(names):
                board.record(event)
        finally:
            tg.cancel_scope.cancel()
            mock.set_faults(describe_rate=None)
            board.sample(poller.stats)
            refresh()


async def _refresh_forever(
    poller: Poller, board: Board, refresh: Callable[[], None], every: float
) -> None:
    while True:
        board.sample(poller.stats)
        refresh()
        await anyio.sleep(every)
