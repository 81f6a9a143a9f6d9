"""``asyncoptjob mock-server``: the mock endpoint's own command line, under the CLI's name."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence

from ..mock import build_parser
from ..mock._process import mock_from_args, serve
from ..mock._server import is_loopback

__all__ = ["mock_server_main"]


def mock_server_main(argv: Sequence[str], prog: str = "asyncoptjob mock-server") -> int:
    """Serve the mock endpoint until Ctrl-C; print its URL first. Return the exit status.

    The options are the mock's own (``python -m asyncoptjob.mock --help``), so the two
    commands never drift apart.
    """
    parser = build_parser(
        argparse.ArgumentParser(
            prog=prog,
            description="Serve a mock SageMaker endpoint for optimization jobs on 127.0.0.1. "
            "Prints the URL on the first stdout line, then serves until Ctrl-C (SIGINT) "
            "or SIGTERM. Point the library or `asyncoptjob watch --endpoint-url URL` at it.",
        )
    )
    args = parser.parse_args(list(argv))
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
