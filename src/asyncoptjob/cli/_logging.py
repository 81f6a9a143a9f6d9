"""Logging setup for the command line: structlog to stderr, console or JSON lines."""

from __future__ import annotations

import enum
import logging
import sys
from typing import TextIO

import structlog

__all__ = ["LogFormat", "LogLevel", "configure_logging"]


class LogLevel(str, enum.Enum):
    """The ``--log-level`` choices."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class LogFormat(str, enum.Enum):
    """The ``--log-format`` choices."""

    CONSOLE = "console"
    JSON = "json"


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at each write.

    rich's live view swaps ``sys.stderr`` for a proxy that prints above the display;
    binding the real stream once would let log lines tear through the live view.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(
    level: LogLevel = LogLevel.WARNING,
    fmt: LogFormat = LogFormat.CONSOLE,
    *,
    stream: TextIO | None = None,
) -> None:
    """Send structlog events at ``level`` and above to ``stream`` (stderr) as ``fmt``.

    Only the command line calls this: the library never configures logging, so an
    application embedding it keeps its own setup.
    """
    out: TextIO | _CurrentStderr = stream if stream is not None else _CurrentStderr()
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt is LogFormat.JSON:
        processors += [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=out.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.value)),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        # Stdout carries the live view or JSON lines; logs never go there.
        cache_logger_on_first_use=False,
    )
