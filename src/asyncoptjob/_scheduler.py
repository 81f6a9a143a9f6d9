"""The due-time queue: which job is polled next.

A binary heap of ``(due_time, seq, key)``: O(log n) per push and pop, earliest due first
(ties in arrival order), so when the rate budget is tight every job still gets its
turn. Rescheduling or removing a job does not search the heap: the queue maps each key
(a job's name) to the ``seq`` of its one live entry, an entry whose ``seq`` is not its
key's any more is skipped when it surfaces, and the heap is rebuilt when stale entries
outnumber live ones. The heap and the map hold names and numbers only: the garbage
collector does not track such a dict, and stops tracking such tuples, so 100,000 queued
jobs add no object to a full collection's walk. One map, not one per field: a dict of
100,000 keys that outgrows its table copies it whole in one step (a millisecond or
more on fresh memory), and every map of the same size grows at the same push.

An item pushed at :data:`URGENT` goes ahead of every timed item, however overdue, in
arrival order: a change a List sweep reported is confirmed before routine polls (a
wave of safety-net describes, say) that happen to be due.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["URGENT", "DueQueue"]

K = TypeVar("K", bound=Hashable)

#: A due time ahead of every timed one: due at once, before anything else due.
URGENT = -math.inf


class DueQueue(Generic[K]):
    """A priority queue of keys by due time, with O(1) lazy removal."""

    __slots__ = ("_counter", "_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._counter = itertools.count()
        #: Each queued key's ``seq``: that of its live heap entry.
        self._seq: dict[K, int] = {}

    def __len__(self) -> int:
        return len(self._seq)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is queued."""
        return key in self._seq

    def push(self, key: K, due: float) -> None:
        """Queue ``key`` at ``due``, replacing its earlier place if it had one."""
        seq = self._seq[key] = next(self._counter)
        heapq.heappush(self._heap, (due, seq, key))
        self._maybe_compact()

    def discard(self, key: K) -> None:
        """Forget ``key`` if it is queued (its heap entry is dropped lazily)."""
        if self._seq.pop(key, None) is not None:
            self._maybe_compact()

    def clear(self) -> list[tuple[float, int, K]]:
        """Forget every queued key at once.

        Returns:
            The heap's entries, for the caller to drop (:func:`~._breath.dropped`):
            freeing 100,000 of them at once holds the loop for several ms.
        """
        heap, self._heap = self._heap, []
        self._seq.clear()
        return heap

    def next_due(self) -> float | None:
        """The earliest due time, or None when nothing is queued."""
        heap, seqs = self._heap, self._seq
        while heap and seqs.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> K | None:
        """Remove and return the earliest key due at or before ``now``, else None."""
        due = self.next_due()
        if due is None or due > now:
            return None
        _, _, key = heapq.heappop(self._heap)
        del self._seq[key]
        return key

    def _maybe_compact(self) -> None:
        # Rebuilt from the live entries alone, when stale ones outnumber them 2 to 1: the
        # cost is that of the live entries (amortised over the stale ones), and stale heads
        # never pile up for ``next_due`` to pop one by one (100,000 jobs dropped at once).
        heap, seqs = self._heap, self._seq
        if len(heap) > 64 and len(heap) > 3 * len(seqs):
            self._heap = [entry for entry in heap if seqs.get(entry[2]) == entry[1]]
            heapq.heapify(self._heap)
