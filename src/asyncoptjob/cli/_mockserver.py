"""``asyncoptjob mock-server``: the mock endpoint's own command line, under the CLI's name."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..mock import main

__all__ = ["mock_server_main"]


def mock_server_main(argv: Sequence[str], prog: str = "asyncoptjob mock-server") -> int:
    """Serve the mock endpoint until Ctrl-C; print its URL first. Return the exit status.

    The options are the mock's own (``python -m asyncoptjob.mock --help``), so the two
    commands never drift apart.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a mock SageMaker endpoint for optimization jobs on 127.0.0.1. "
        "Prints the URL on the first stdout line, then serves until Ctrl-C (SIGINT) "
        "or SIGTERM. Point the library or `asyncoptjob watch --endpoint-url URL` at it.",
    )
    return main(argv, parser=parser)
