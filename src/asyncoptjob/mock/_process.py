"""Process mode: the mock SageMaker endpoint as its own process.

Prints the endpoint URL alone on the first line of stdout (flushed), then
serves until SIGINT or SIGTERM::

    python -m asyncoptjob.mock --port 0 --seed-jobs 1000 --describe-rate 20 --latency-ms 30

The control path (``/_mock/stats``, ``/_mock/faults``, ...) changes and
inspects it while it runs. `build_parser` and `main` are reused by the
``asyncoptjob mock-server`` command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence
from typing import Any

from ._endpoint import MockSageMaker
from ._faults import Faults
from ._lifecycle import Lifecycle
from ._server import is_loopback

__all__ = ["build_parser", "main", "mock_from_args", "serve"]


#: The `Faults` fields that have a command-line option of the same name.
_FAULT_OPTIONS = (
    "describe_rate",
    "describe_burst",
    "list_rate",
    "list_burst",
    "throttle_rate",
    "latency_ms",
    "latency_jitter_ms",
    "error_rate",
    "drop_rate",
    "malformed_rate",
    "error_code",
    "error_code_rate",
    "error_code_status",
    "empty_list_pages",
    "list_lag",
    "missing_status_rate",
    "mistyped_status_rate",
    "unknown_status",
    "unknown_status_rate",
    "stuck_list_rate",
    "duplicate_list_rate",
)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not >= 0")
    return value


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Return the argument parser of the mock server (or add its options to *parser*).

    Example:
        >>> args = build_parser().parse_args(["--seed-jobs", "10", "--describe-rate", "5"])
        >>> (args.seed_jobs, args.describe_rate, args.host)
        (10, 5.0, '127.0.0.1')
    """
    if parser is None:
        parser = argparse.ArgumentParser(
            prog="python -m asyncoptjob.mock",
            description="Serve a mock SageMaker endpoint for optimization jobs on 127.0.0.1. "
            "Prints the URL on the first stdout line, then serves until SIGINT/SIGTERM.",
        )
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    server.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    server.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow binding an address reachable from other machines",
    )
    server.add_argument("--seed", type=int, default=None, help="RNG seed (default: random)")
    server.add_argument("--region", default="us-east-1")
    server.add_argument("--account-id", default="123456789012")
    server.add_argument("--request-log-size", type=int, default=100_000)

    jobs = parser.add_argument_group("jobs (durations in simulated seconds)")
    jobs.add_argument("--seed-jobs", type=int, default=0, metavar="N", help="jobs to seed")
    jobs.add_argument("--seed-prefix", default="job", help="seeded name prefix")
    jobs.add_argument(
        "--outcome", choices=("COMPLETED", "FAILED", "STOPPED"), help="force seeded outcomes"
    )
    defaults = Lifecycle()
    for name, value in (
        ("starting", defaults.starting),
        ("in-progress", defaults.in_progress),
        ("stopping", defaults.stopping),
    ):
        jobs.add_argument(
            f"--{name}",
            type=float,
            nargs=2,
            metavar=("LO", "HI"),
            default=list(value),
            help=f"uniform duration range; HI may be inf (default {value[0]:g} {value[1]:g})",
        )
    jobs.add_argument(
        "--failure-rate",
        type=_fraction,
        default=defaults.failure_rate,
        help="fraction of jobs (not stopped) that end FAILED",
    )
    jobs.add_argument(
        "--stop-rate",
        type=_fraction,
        default=defaults.stop_rate,
        help="fraction of jobs a simulated user stops while INPROGRESS",
    )
    jobs.add_argument(
        "--not-found-for",
        type=_non_negative,
        default=defaults.not_found_for,
        help="seconds after creation during which Describe answers ResourceNotFound",
    )
    jobs.add_argument(
        "--time-scale",
        type=float,
        default=defaults.time_scale,
        help="real seconds per simulated second (0.001: a 10-minute job takes 0.6 s)",
    )

    faults = parser.add_argument_group("faults")
    faults.add_argument("--describe-rate", type=float, help="Describe requests/s (account-wide)")
    faults.add_argument("--describe-burst", type=float)
    faults.add_argument("--list-rate", type=float, help="List requests/s (account-wide)")
    faults.add_argument("--list-burst", type=float)
    faults.add_argument(
        "--throttle-rate", type=_fraction, default=0.0, help="fraction throttled regardless"
    )
    faults.add_argument("--latency-ms", type=_non_negative, default=0.0)
    faults.add_argument("--latency-jitter-ms", type=_non_negative, default=0.0)
    faults.add_argument(
        "--error-rate", type=_fraction, default=0.0, help="fraction answered 500 or 503"
    )
    faults.add_argument(
        "--drop-rate", type=_fraction, default=0.0, help="fraction closed without answer"
    )
    faults.add_argument(
        "--malformed-rate", type=_fraction, default=0.0, help="fraction with corrupt JSON"
    )
    faults.add_argument(
        "--error-code", help="force this AWS error code, e.g. ExpiredTokenException"
    )
    faults.add_argument(
        "--error-code-rate", type=_fraction, default=1.0, help="fraction given --error-code"
    )
    faults.add_argument("--error-code-status", type=int, default=400)
    faults.add_argument(
        "--empty-list-pages",
        type=int,
        default=0,
        help="empty pages a List with LastModifiedTimeAfter returns first",
    )
    faults.add_argument(
        "--list-lag",
        type=float,
        default=0.0,
        help="seconds a change takes to show in List (eventual consistency)",
    )
    bad = parser.add_argument_group(
        "bad answers (200s to distrust; name jobs through POST /_mock/faults)"
    )
    for flag, what in (
        ("--missing-status-rate", "fraction of Describe answers without OptimizationJobStatus"),
        ("--mistyped-status-rate", "fraction of Describe answers whose status is a number"),
        ("--unknown-status-rate", "fraction of Describe answers whose status is --unknown-status"),
        ("--stuck-list-rate", "fraction of List answers that repeat one NextToken forever"),
        ("--duplicate-list-rate", "fraction of List pages that repeat the last page's last entry"),
    ):
        bad.add_argument(flag, type=_fraction, default=0.0, help=what)
    bad.add_argument(
        "--unknown-status",
        default=Faults().unknown_status,
        help="the undocumented status sent (default %(default)s)",
    )
    return parser


def mock_from_args(args: argparse.Namespace) -> MockSageMaker:
    """Build (not start) the mock described by parsed *args*, seeding its jobs.

    Raises:
        ValueError: On an invalid option value, naming it.
    """
    lifecycle = Lifecycle(
        starting=tuple(args.starting),
        in_progress=tuple(args.in_progress),
        stopping=tuple(args.stopping),
        failure_rate=args.failure_rate,
        stop_rate=args.stop_rate,
        not_found_for=args.not_found_for,
        time_scale=args.time_scale,
    )
    fault_fields: dict[str, Any] = {name: getattr(args, name) for name in _FAULT_OPTIONS}
    mock = MockSageMaker(
        seed=args.seed,
        faults=Faults(**fault_fields),
        lifecycle=lifecycle,
        region=args.region,
        account_id=args.account_id,
        host=args.host,
        port=args.port,
        allow_non_loopback=args.allow_non_loopback,
        request_log_size=args.request_log_size,
    )
    if args.seed_jobs:
        mock.seed_jobs(args.seed_jobs, prefix=args.seed_prefix, outcome=args.outcome)
    return mock


async def serve(mock: MockSageMaker) -> None:
    """Serve *mock*, print its URL on stdout, and return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows' loop; Ctrl-C still ends asyncio.run there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with mock:
        print(mock.url, flush=True)
        await stop.wait()


def main(
    argv: Sequence[str] | None = None, *, parser: argparse.ArgumentParser | None = None
) -> int:
    """Run the mock server from command-line *argv*; return the exit status.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        parser: a parser to add the options to (another command's name and help);
            default: ``python -m asyncoptjob.mock``'s own.
    """
    parser = build_parser(parser)
    args = parser.parse_args(None if argv is None else list(argv))
    if not args.allow_non_loopback and not is_loopback(args.host):
        parser.error(
            f"--host {args.host} is not a loopback address; pass --allow-non-loopback to "
            "expose the mock beyond this machine"
        )
    try:
        mock = mock_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(mock))
    return 0
