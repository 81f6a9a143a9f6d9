"""The library's loggers: structlog events, routed so the application decides what shows.

The library never configures logging. Which route a logger takes is decided when it is
bound (a Poller binds its loggers when it opens; module-level loggers decide per call):

* **the application configured structlog** (``structlog.configure``, including structlog's
  stdlib integration with ``structlog.stdlib.LoggerFactory()``): the library's events go
  through that configuration, like the application's own;
* **it did not**: the events go to the standard library's ``logging.getLogger("asyncoptjob")``
  as ``event key=value ...`` messages. With no logging configured either, only warnings
  and errors reach stderr (``logging``'s last-resort handler): a clean run prints nothing.
  ``logging.basicConfig(level=logging.INFO)`` (or a handler on the ``asyncoptjob`` logger)
  shows more. A level that is off costs one ``Logger.isEnabledFor`` call, which
  ``logging`` caches, before any processor runs: the per-poll ``debug`` is nearly free.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["LOGGER_NAME", "get_logger"]

#: The name of the library's logger, for ``logging`` and for structlog alike.
LOGGER_NAME = "asyncoptjob"


def render(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    """Render an event as ``event key=value ...``: one readable line for ``logging``."""
    event = event_dict.pop("event", "")
    return " ".join([str(event), *(f"{key}={value}" for key, value in event_dict.items())])


class _StdlibLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger, asking ``logging`` first whether debug/info are on.

    Warnings and errors need no gate: they are rare, and ``logging`` checks again anyway.
    """

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._logger.isEnabledFor(logging.DEBUG):
            return super().debug(event, *args, **kw)
        return None

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._logger.isEnabledFor(logging.INFO):
            return super().info(event, *args, **kw)
        return None


def _stdlib_logger() -> _StdlibLogger:
    return _StdlibLogger(logging.getLogger(LOGGER_NAME), processors=[render], context={})


class _LibraryLogger:
    """A module-level logger: each call (or ``bind``) takes the route in force at that time."""

    __slots__ = ()

    def bind(self, **context: Any) -> Any:
        """A logger bound to ``context`` on the route in force now (cheap to call after)."""
        if structlog.is_configured():
            return structlog.get_logger(LOGGER_NAME).bind(**context)
        return _stdlib_logger().bind(**context)

    def __getattr__(self, method: str) -> Any:
        return getattr(self.bind(), method)


def get_logger() -> Any:
    """The library's logger (see the module docstring for where its events go).

    Example::

        log = get_logger()
        log.warning("sweep_failed", error="ThrottlingException")
        fast = log.bind()  # bound once: the route and level gate are resolved now

    Returns:
        A structlog-style logger: ``debug``/``info``/``warning``/``error`` take an event
        name and key-value fields.
    """
    return _LibraryLogger()
