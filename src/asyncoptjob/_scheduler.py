"""The due-time queue: which job is polled next.

A binary heap of ``(due_time, seq)``: O(log n) per push and pop, earliest due first
(ties in arrival order), so when the rate budget is tight every job still gets its
turn. Rescheduling or removing a job does not search the heap: the job's ``token``
names its one live entry (``seq``, mapped to the job), older entries are skipped when
they surface, and the heap is rebuilt when stale entries outnumber live ones. The heap
holds numbers only: the garbage collector stops tracking such tuples, so 100,000 queued
jobs do not add 100,000 objects to every full collection's walk.

An item pushed at :data:`URGENT` goes ahead of every timed item, however overdue, in
arrival order: a change a List sweep reported is confirmed before routine polls (a
wave of safety-net describes, say) that happen to be due.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, Protocol, TypeVar

__all__ = ["URGENT", "DueQueue", "Schedulable"]


class Schedulable(Protocol):
    """Anything with a ``token`` slot the queue can stamp."""

    token: int


T = TypeVar("T", bound=Schedulable)

NOT_QUEUED = -1

#: A due time ahead of every timed one: due at once, before anything else due.
URGENT = -math.inf


class DueQueue(Generic[T]):
    """A priority queue of items by due time, with O(1) lazy removal."""

    __slots__ = ("_counter", "_due", "_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._counter = itertools.count()
        #: The queued items by the ``seq`` of their live heap entry, and their due times (a
        #: dict of numbers only, which the garbage collector does not track).
        self._live: dict[int, T] = {}
        self._due: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._live)

    def push(self, item: T, due: float) -> None:
        """Queue ``item`` at ``due``, replacing its earlier place if it had one."""
        live = self._live
        if item.token != NOT_QUEUED:
            live.pop(item.token, None)
            self._due.pop(item.token, None)
        seq = next(self._counter)
        item.token = seq
        live[seq] = item
        self._due[seq] = due
        heapq.heappush(self._heap, (due, seq))
        self._maybe_compact()

    def discard(self, item: T) -> None:
        """Forget ``item`` if it is queued (its heap entry is dropped lazily)."""
        if item.token != NOT_QUEUED:
            self._live.pop(item.token, None)
            self._due.pop(item.token, None)
            item.token = NOT_QUEUED
            self._maybe_compact()

    def next_due(self) -> float | None:
        """The earliest due time, or None when nothing is queued."""
        heap, live = self._heap, self._live
        while heap and heap[0][1] not in live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> T | None:
        """Remove and return the earliest item due at or before ``now``, else None."""
        due = self.next_due()
        if due is None or due > now:
            return None
        _, seq = heapq.heappop(self._heap)
        item = self._live.pop(seq)
        del self._due[seq]
        item.token = NOT_QUEUED
        return item

    def _maybe_compact(self) -> None:
        # Rebuilt from the live entries alone, when stale ones outnumber them 2 to 1: the
        # cost is that of the live entries (amortised over the stale ones), and stale heads
        # never pile up for ``next_due`` to pop one by one (100,000 jobs dropped at once).
        heap, due = self._heap, self._due
        if len(heap) > 64 and len(heap) > 3 * len(due):
            self._heap = [(when, seq) for seq, when in due.items()]
            heapq.heapify(self._heap)
