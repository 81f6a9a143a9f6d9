"""Exit codes of the ``asyncoptjob`` command and the one error type users can fix."""

from __future__ import annotations

import enum

__all__ = ["CliError", "ExitCode"]


class ExitCode(enum.IntEnum):
    """What the process exit status means (documented in the README and ``--help``)."""

    OK = 0
    """Every job ended COMPLETED."""
    FAILED = 1
    """At least one job ended FAILED or STOPPED, or could not be watched (a JobErrorEvent)."""
    USAGE = 2
    """Bad arguments or configuration: names, options, credentials, region, endpoint."""
    TIMEOUT = 3
    """``--timeout`` ran out before every job finished."""
    INTERRUPTED = 130
    """Ctrl-C (SIGINT), the shell's 128 + signal number convention."""


class CliError(Exception):
    """A problem the user can fix; printed as one line on stderr, exit status 2."""
