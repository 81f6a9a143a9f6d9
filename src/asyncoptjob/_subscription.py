"""One caller's view of the hub: the events of the jobs it asked for, in order."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, KeysView

import anyio
import anyio.lowlevel

from ._breath import in_slices
from ._events import Event, JobStatus

__all__ = ["Subscription"]

#: Names a subscription takes in at once: the rest waits for :meth:`Subscription.fill`
#: (100,000 of them at once would hold the loop for 5-10 ms).
FILL_SLICE = 10_000


class Subscription:
    """The events of one ``watch``/``wait_until_done`` call, buffered until read.

    Backpressure, not loss: the hub never waits for a subscriber and never drops an
    event. Each job yields at most one event per status it passes through (six at
    most) plus a terminal one, so a subscription's buffer is bounded by the jobs it
    watches; a slow reader costs memory in proportion to its own jobs and never slows
    polling for anyone else.
    """

    __slots__ = (
        "_buffer",
        "_error",
        "_filled",
        "_ready",
        "_remaining",
        "closed",
        "names",
        "opened_at",
        "since",
    )

    def __init__(self, names: Iterable[str], opened_at: float = 0.0) -> None:
        self.names: tuple[str, ...] = tuple(names)
        #: When it was opened (the hub's clock): a caller's timeout counts from here.
        self.opened_at = opened_at
        # A dict of strings (values None), not a set: the garbage collector does not walk
        # it (a set of 100,000 names it would, at every full collection). Past the first
        # slice, names come in with :meth:`fill`.
        self._remaining: dict[str, None] = dict.fromkeys(self.names[:FILL_SLICE])
        self._filled = len(self.names) <= FILL_SLICE
        self.closed = False
        #: A durable consumer's committed status per job: where its events start from.
        self.since: dict[str, JobStatus] = {}
        self._buffer: deque[Event] = deque()
        self._error: BaseException | None = None
        self._ready = anyio.Event()

    async def fill(self) -> None:
        """Take in the names past the first slice, a slice at a time (the loop runs between
        two); before the hub attaches the subscription, which delivers nothing until then.
        Once only: ``Hub.attach`` calls it first."""
        if self._filled:
            return
        self._filled = True
        remaining = self._remaining
        await anyio.lowlevel.checkpoint()  # the first slice came in at creation
        async for part in in_slices(self.names, FILL_SLICE, start=FILL_SLICE):
            remaining.update(dict.fromkeys(part))

    @property
    def remaining(self) -> KeysView[str]:
        """The jobs that have not had their terminal outcome here yet (a live view)."""
        return self._remaining.keys()

    def is_finished(self) -> bool:
        """True once every job has had its terminal outcome (or the subscription failed)."""
        return not self._remaining or self._error is not None

    def has_pending(self) -> bool:
        """True when a read would not wait: an event, an error or the end is ready."""
        return bool(self._buffer) or self.is_finished() or self.closed

    # -- hub side -----------------------------------------------------------------------

    def deliver(self, event: Event, *, terminal: bool) -> None:
        """Queue ``event``; with ``terminal`` the job is done for this subscription.

        A job that already had its terminal outcome here gets nothing more.
        """
        if self.closed or event.job_name not in self._remaining:
            return
        self._buffer.append(event)
        if terminal:
            del self._remaining[event.job_name]
        self._ready.set()

    def fail(self, error: BaseException) -> None:
        """End the subscription with ``error`` (raised after the buffered events)."""
        if self.closed or self._error is not None:
            return
        self._error = error
        self._ready.set()

    # -- reader side --------------------------------------------------------------------

    def get_nowait(self) -> Event | None:
        """Return the next buffered event, or None if there is none right now.

        Raises:
            BaseException: the error the subscription failed with, once drained.
        """
        if self._buffer:
            return self._buffer.popleft()
        if self._error is not None:
            raise self._error
        return None

    async def wait(self) -> None:
        """Wait until a read would not wait (:meth:`has_pending`)."""
        while not self.has_pending():
            self._ready = anyio.Event()
            await self._ready.wait()

    def close(self) -> None:
        """Stop receiving events (the hub drops this subscription)."""
        self.closed = True
        self._buffer.clear()
