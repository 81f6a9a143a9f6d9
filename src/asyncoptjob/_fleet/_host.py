"""The narrow view of the hub that the fleet works with (no import of the hub module)."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._errors import TransportError
    from .._events import Description

__all__ = ["FleetHost"]


class FleetHost(Protocol):
    """What the fleet needs from the hub of its process; the hub implements it."""

    def watched(self) -> Collection[str]:
        """The names of the jobs watched in this process now."""
        ...

    def wants(self, name: str, status: str) -> bool:
        """Whether ``status`` of ``name``, seen by another process, is news here."""
        ...

    def apply_remote(self, name: str, description: Description) -> None:
        """Apply a status another process observed."""
        ...

    def apply_remote_error(self, name: str, error: TransportError) -> None:
        """Another process gave ``name`` up with ``error``: end it here too."""
        ...

    def hint(self, name: str, status: str) -> None:
        """Another process's sweep listed ``name`` in ``status``: describe it if news."""
        ...

    def poll_soon(self, name: str) -> None:
        """Describe ``name`` now unless it is on the wire already (Redis went away)."""
        ...

    def lease_gained(self, name: str, age: float | None) -> None:
        """``name``'s lease became this process's: describe it when the poll interval its
        status calls for has passed since the fleet last described it, ``age`` seconds
        ago (None: never, or unknown: now)."""
        ...

    def in_flight(self, name: str) -> bool:
        """Whether a describe of ``name`` is under way here (its lease is not handed over)."""
        ...
