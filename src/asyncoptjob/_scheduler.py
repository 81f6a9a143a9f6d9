"""The due-time queue: which job is polled next.

A binary heap of ``(due_time, seq)``: O(log n) per push and pop, earliest due first
(ties in arrival order), so when the rate budget is tight every job still gets its
turn. Rescheduling or removing a job does not search the heap: the queue maps each key
(a job's name) to the ``seq`` of its one live entry, older entries are skipped when
they surface, and the heap is rebuilt when stale entries outnumber live ones. The heap
and the maps hold names and numbers only: the garbage collector does not track such
dicts, and stops tracking such tuples, so 100,000 queued jobs add no object to a full
collection's walk.

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

    __slots__ = ("_counter", "_due", "_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._counter = itertools.count()
        #: The queued keys by the ``seq`` of their live heap entry, each key's ``seq``, and
        #: the due times by ``seq``.
        self._live: dict[int, K] = {}
        self._seq: dict[K, int] = {}
        self._due: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is queued."""
        return key in self._seq

    def push(self, key: K, due: float) -> None:
        """Queue ``key`` at ``due``, replacing its earlier place if it had one."""
        old = self._seq.get(key)
        if old is not None:
            del self._live[old]
            del self._due[old]
        seq = next(self._counter)
        self._seq[key] = seq
        self._live[seq] = key
        self._due[seq] = due
        heapq.heappush(self._heap, (due, seq))
        self._maybe_compact()

    def discard(self, key: K) -> None:
        """Forget ``key`` if it is queued (its heap entry is dropped lazily)."""
        seq = self._seq.pop(key, None)
        if seq is not None:
            del self._live[seq]
            del self._due[seq]
            self._maybe_compact()

    def clear(self) -> None:
        """Forget every queued key at once."""
        self._heap.clear()
        self._live.clear()
        self._seq.clear()
        self._due.clear()

    def next_due(self) -> float | None:
        """The earliest due time, or None when nothing is queued."""
        heap, live = self._heap, self._live
        while heap and heap[0][1] not in live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> K | None:
        """Remove and return the earliest key due at or before ``now``, else None."""
        due = self.next_due()
        if due is None or due > now:
            return None
        _, seq = heapq.heappop(self._heap)
        key = self._live.pop(seq)
        del self._due[seq]
        del self._seq[key]
        return key

    def _maybe_compact(self) -> None:
        # Rebuilt from the live entries alone, when stale ones outnumber them 2 to 1: the
        # cost is that of the live entries (amortised over the stale ones), and stale heads
        # never pile up for ``next_due`` to pop one by one (100,000 jobs dropped at once).
        heap, due = self._heap, self._due
        if len(heap) > 64 and len(heap) > 3 * len(due):
            self._heap = [(when, seq) for seq, when in due.items()]
            heapq.heapify(self._heap)
