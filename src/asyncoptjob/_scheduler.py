"""The due-time queue: which job is polled next.

A binary heap of ``(due_time, seq, job)``: O(log n) per push and pop, earliest due
first (ties in arrival order), so when the rate budget is tight every job still gets
its turn. Rescheduling or removing a job does not search the heap: the job's ``token``
names its one live entry, older entries are skipped when they surface, and the heap is
rebuilt when stale entries outnumber live ones.

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

    __slots__ = ("_counter", "_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._counter = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def push(self, item: T, due: float) -> None:
        """Queue ``item`` at ``due``, replacing its earlier place if it had one."""
        if item.token != NOT_QUEUED:
            self._live -= 1
        seq = next(self._counter)
        item.token = seq
        heapq.heappush(self._heap, (due, seq, item))
        self._live += 1
        if len(self._heap) > 64 and len(self._heap) > 2 * self._live:
            self._compact()

    def discard(self, item: T) -> None:
        """Forget ``item`` if it is queued (its heap entry is dropped lazily)."""
        if item.token != NOT_QUEUED:
            item.token = NOT_QUEUED
            self._live -= 1

    def next_due(self) -> float | None:
        """The earliest due time, or None when nothing is queued."""
        heap = self._heap
        while heap and heap[0][2].token != heap[0][1]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> T | None:
        """Remove and return the earliest item due at or before ``now``, else None."""
        due = self.next_due()
        if due is None or due > now:
            return None
        _, _, item = heapq.heappop(self._heap)
        item.token = NOT_QUEUED
        self._live -= 1
        return item

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if entry[2].token == entry[1]]
        heapq.heapify(self._heap)
