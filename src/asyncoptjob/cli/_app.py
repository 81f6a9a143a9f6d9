"""The ``asyncoptjob`` command: typer wiring for demo, watch, wait and mock-server."""

from __future__ import annotations

import enum
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, TextIO

import anyio
import typer
from rich.console import Console

from .. import __version__, validate_names
from ._connect import Connection
from ._demo import DemoSettings, run_demo
from ._exit import CliError, ExitCode
from ._logging import LogFormat, LogLevel, configure_logging
from ._mockserver import mock_server_main
from ._run import Output, StrategyName, WatchSettings, run_wait, run_watch, say

__all__ = ["app", "main"]

app = typer.Typer(
    name="asyncoptjob",
    help="Watch many Amazon SageMaker optimization jobs at once, politely.\n\n"
    "Start with `asyncoptjob demo`: no AWS account needed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_CODES_HELP = (
    "Exit status: 0 every job COMPLETED; 1 a job FAILED, was STOPPED or could not be "
    "watched; 2 usage or configuration error; 3 --timeout ran out; 130 interrupted (Ctrl-C)."
)

# -- shared options ----------------------------------------------------------------------


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be > 0, got {value:g}")
    return value


def _non_negative(value: float) -> float:
    if not value >= 0:
        raise typer.BadParameter(f"must be >= 0, got {value:g}")
    return value


Names = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="NAME...",
        help="Optimization job names (1-63 letters, digits and hyphens).",
        show_default=False,
    ),
]
FromFile = Annotated[
    str | None,
    typer.Option(
        "--from-file",
        metavar="FILE|-",
        help="Read more names from FILE ('-' for stdin): one per line, '#' starts a comment.",
    ),
]
Region = Annotated[
    str | None,
    typer.Option(help="AWS Region (default: AWS_DEFAULT_REGION or the profile's region)."),
]
Profile = Annotated[
    str | None, typer.Option(help="AWS profile from ~/.aws/config (default: AWS_PROFILE).")
]
EndpointUrl = Annotated[
    str | None,
    typer.Option(help="SageMaker endpoint URL, e.g. the one `asyncoptjob mock-server` prints."),
]
MaxConcurrency = Annotated[int, typer.Option(min=1, help="Requests on the wire at once.")]
MaxRate = Annotated[
    float | None,
    typer.Option(
        callback=_positive,
        help="Hard ceiling in requests/s, shared by all jobs (default: adaptive only).",
    ),
]
PollInterval = Annotated[
    float | None,
    typer.Option(
        callback=_positive,
        help="Seconds between polls of one job; grows up to 6x while nothing changes "
        "(default: 20).",
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        callback=_positive, help="Give up after this many seconds and exit 3 (default: no limit)."
    ),
]
NotFoundGrace = Annotated[
    float,
    typer.Option(
        callback=_non_negative,
        help="Seconds to keep retrying a job SageMaker does not know yet (a just-created job).",
    ),
]


class StrategyOption(str, enum.Enum):
    """The ``--strategy`` choices."""

    AUTO = "auto"
    DESCRIBE = "describe"
    SWEEP = "sweep"


_STRATEGIES: dict[StrategyOption, StrategyName] = {
    StrategyOption.AUTO: "auto",
    StrategyOption.DESCRIBE: "describe",
    StrategyOption.SWEEP: "sweep",
}

StrategyChoice = Annotated[
    StrategyOption,
    typer.Option(
        "--strategy",
        case_sensitive=False,
        help="describe: one describe per job per poll; sweep: one ListOptimizationJobs call "
        "finds which of up to 100 jobs changed, then describes only those (needs "
        "sagemaker:ListOptimizationJobs); auto: sweep once 25 or more jobs are watched.",
    ),
]
LogLevelOption = Annotated[
    LogLevel,
    typer.Option("--log-level", case_sensitive=False, help="Log events at this level and up."),
]
LogFormatOption = Annotated[
    LogFormat,
    typer.Option("--log-format", case_sensitive=False, help="Logs as console text or JSON lines."),
]


# -- plumbing ----------------------------------------------------------------------------


def _run(
    command: Callable[[], Awaitable[ExitCode]],
    log_level: LogLevel,
    log_format: LogFormat,
) -> None:
    """Configure logging, run ``command`` on anyio and exit with its status."""
    configure_logging(log_level, log_format)
    try:
        code = anyio.run(command)
    except CliError as exc:
        say(Console(stderr=True), f"asyncoptjob: error: {exc}")
        code = ExitCode.USAGE
    raise typer.Exit(int(code))


def read_names(names: Sequence[str], from_file: str | None, stdin: TextIO) -> list[str]:
    """The job names from the arguments and ``--from-file``, validated, duplicates dropped.

    Raises:
        CliError: no names, an unreadable file, or invalid names (all listed, with the rule).
    """
    given = list(names)
    if from_file is not None:
        try:
            text = stdin.read() if from_file == "-" else Path(from_file).read_text()
        except OSError as exc:
            raise CliError(f"cannot read --from-file {from_file}: {exc.strerror or exc}") from None
        for line in text.splitlines():
            name = line.split("#", 1)[0].strip()
            if name:
                given.append(name)
    if not given:
        raise CliError("no job names: give them as arguments or with --from-file FILE|-")
    try:
        return validate_names(given)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _settings(
    names: list[str] | None,
    from_file: str | None,
    *,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    max_concurrency: int,
    max_rate: float | None,
    poll_interval: float | None,
    timeout: float | None,
    not_found_grace: float,
    strategy: StrategyOption,
    state: str | None = None,
    consumer: str | None = None,
) -> WatchSettings:
    if consumer is not None and state is None:
        raise CliError("--consumer needs --state FILE (where the consumer's cursors are kept)")
    return WatchSettings(
        # A tuple of strings: the garbage collector stops walking it (100,000 names).
        names=tuple(read_names(names or [], from_file, sys.stdin)),
        connection=Connection(
            region=region,
            profile=profile,
            endpoint_url=endpoint_url,
            max_concurrency=max_concurrency,
        ),
        max_rate=max_rate,
        poll_interval=poll_interval,
        timeout=timeout,
        not_found_grace=not_found_grace,
        strategy=_STRATEGIES[strategy],
        state=state,
        consumer=consumer,
    )


def _fail(exc: CliError) -> typer.Exit:
    say(Console(stderr=True), f"asyncoptjob: error: {exc}")
    return typer.Exit(int(ExitCode.USAGE))


def _version(value: bool) -> None:
    if value:
        say(Console(), f"asyncoptjob {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Watch many Amazon SageMaker optimization jobs at once, politely."""


# -- commands ----------------------------------------------------------------------------


@app.command(epilog=EXIT_CODES_HELP)
def watch(
    names: Names = None,
    from_file: FromFile = None,
    region: Region = None,
    profile: Profile = None,
    endpoint_url: EndpointUrl = None,
    max_concurrency: MaxConcurrency = 16,
    max_rate: MaxRate = None,
    poll_interval: PollInterval = None,
    timeout: Timeout = None,
    not_found_grace: NotFoundGrace = 60.0,
    strategy: StrategyChoice = StrategyOption.AUTO,
    state: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="SQLite file that remembers what was shown (created if missing): a restart "
            "goes on where the last run stopped, repeating nothing it committed.",
        ),
    ] = None,
    consumer: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Whose cursors to use in --state FILE (default: 'default').",
        ),
    ] = None,
    output: Annotated[
        Output | None,
        typer.Option(
            case_sensitive=False,
            help="live view or JSON lines (default: live on a terminal, jsonl otherwise).",
            show_default=False,
        ),
    ] = None,
    log_level: LogLevelOption = LogLevel.WARNING,
    log_format: LogFormatOption = LogFormat.CONSOLE,
) -> None:
    """Follow jobs until each ends: a live view on a terminal, JSON lines otherwise.

    Each JSON line is one status change (job_name, previous_status, status, observed_at,
    failure_reason) or one job error (job_name, error, message, code).
    """
    try:
        settings = _settings(
            names,
            from_file,
            region=region,
            profile=profile,
            endpoint_url=endpoint_url,
            max_concurrency=max_concurrency,
            max_rate=max_rate,
            poll_interval=poll_interval,
            timeout=timeout,
            not_found_grace=not_found_grace,
            strategy=strategy,
            state=state,
            consumer=consumer,
        )
    except CliError as exc:
        raise _fail(exc) from None
    chosen = output or (Output.LIVE if sys.stdout.isatty() else Output.JSONL)

    async def command() -> ExitCode:
        return await run_watch(
            settings, chosen, console=Console(), err_console=Console(stderr=True)
        )

    _run(command, log_level, log_format)


@app.command(epilog=EXIT_CODES_HELP)
def wait(
    names: Names = None,
    from_file: FromFile = None,
    timeout: Timeout = None,
    region: Region = None,
    profile: Profile = None,
    endpoint_url: EndpointUrl = None,
    max_concurrency: MaxConcurrency = 16,
    max_rate: MaxRate = None,
    poll_interval: PollInterval = None,
    not_found_grace: NotFoundGrace = 60.0,
    strategy: StrategyChoice = StrategyOption.AUTO,
    log_level: LogLevelOption = LogLevel.WARNING,
    log_format: LogFormatOption = LogFormat.CONSOLE,
) -> None:
    """Wait until every job ends, then print each one's final status (NAME STATUS REASON)."""
    try:
        settings = _settings(
            names,
            from_file,
            region=region,
            profile=profile,
            endpoint_url=endpoint_url,
            max_concurrency=max_concurrency,
            max_rate=max_rate,
            poll_interval=poll_interval,
            timeout=timeout,
            not_found_grace=not_found_grace,
            strategy=strategy,
        )
    except CliError as exc:
        raise _fail(exc) from None

    async def command() -> ExitCode:
        return await run_wait(settings, console=Console(), err_console=Console(stderr=True))

    _run(command, log_level, log_format)


@app.command()
def demo(
    jobs: Annotated[int, typer.Option(min=1, max=10_000, help="How many jobs to seed.")] = 200,
    duration: Annotated[
        float,
        typer.Option(
            min=0.5,
            help="Real seconds the longest job runs (the demo lasts a little longer).",
        ),
    ] = 25.0,
    live: Annotated[
        bool | None,
        typer.Option(
            "--live/--no-live",
            help="Live view, or plain progress lines (default: live on a terminal).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the mock: same seed, same outcomes.")] = 7,
    log_level: LogLevelOption = LogLevel.WARNING,
    log_format: LogFormatOption = LogFormat.CONSOLE,
) -> None:
    """Watch ~200 jobs on an embedded mock endpoint, through a throttling spell.

    Needs no AWS account and sends nothing beyond 127.0.0.1. About 10% of the jobs fail
    and 8% are stopped; midway the mock throttles describes for a while.
    """
    console = Console()
    settings = DemoSettings(
        jobs=jobs,
        duration=duration,
        live=console.is_terminal if live is None else live,
        seed=seed,
    )

    async def command() -> ExitCode:
        return await run_demo(settings, console=console)

    _run(command, log_level, log_format)


@app.command(
    "mock-server",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def mock_server(ctx: typer.Context) -> None:
    """Serve a mock SageMaker endpoint on 127.0.0.1 and print its URL (--help for options).

    Options include --host, --port, --seed-jobs N, --describe-rate, --list-rate,
    --latency-ms and --error-rate.
    """
    raise typer.Exit(mock_server_main(ctx.args))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``asyncoptjob`` command (the console script's entry point)."""
    app(args=None if argv is None else list(argv), prog_name="asyncoptjob")
