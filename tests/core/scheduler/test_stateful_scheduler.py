"""Model-based test of the due-time queue: any sequence of operations agrees with a dict.

The model is the simplest thing that could be right: ``{item: (due, order)}`` where
``order`` is when the item was last pushed. The queue must pop the item with the
smallest ``(due, order)`` among those due, hold exactly the model's items, and never
let a rescheduled or discarded item's stale heap entry come back.
"""

from __future__ import annotations

import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from asyncoptjob._scheduler import URGENT, DueQueue
from tests.helpers import QueueItem

# Few distinct due times, so ties (which must pop in push order) are common. URGENT
# (a change a sweep reported) goes ahead of every timed item, in push order.
dues = st.one_of(st.integers(0, 20).map(float), st.floats(0, 20, allow_nan=False), st.just(URGENT))


class DueQueueMachine(RuleBasedStateMachine):
    items = Bundle("items")

    @initialize()
    def start(self) -> None:
        self.queue: DueQueue[QueueItem] = DueQueue()
        self.model: dict[QueueItem, tuple[float, int]] = {}
        self.pushes = 0
        self.now = 0.0
        self.names = 0

    @rule(target=items)
    def new_item(self) -> QueueItem:
        self.names += 1
        return QueueItem(self.names)

    @rule(target=items, k=st.integers(2, 12), due=dues)
    def push_several(self, k: int, due: float) -> object:
        new = []
        for _ in range(k):
            self.names += 1
            item = QueueItem(self.names)
            self.queue.push(item, due)
            self.pushes += 1
            self.model[item] = (due, self.pushes)
            new.append(item)
        return multiple(*new)

    @rule(item=items, due=dues)
    def push(self, item: QueueItem, due: float) -> None:
        self.queue.push(item, due)
        self.pushes += 1
        self.model[item] = (due, self.pushes)

    @rule(rounds=st.integers(1, 30), due=dues)
    def reschedule_everything(self, rounds: int, due: float) -> None:
        # Many reschedules pile up stale heap entries: this is what triggers compaction.
        for r in range(rounds):
            for item in list(self.model):
                self.queue.push(item, due + r)
                self.pushes += 1
                self.model[item] = (due + r, self.pushes)

    @rule(item=items)
    def discard(self, item: QueueItem) -> None:
        self.queue.discard(item)
        self.model.pop(item, None)

    @rule(item=consumes(items))
    def forget(self, item: QueueItem) -> None:
        # The hub drops a job for good: discard it and never touch it again.
        self.queue.discard(item)
        self.model.pop(item, None)

    @rule()
    def clear(self) -> None:
        # The hub closing: every queued key goes at once.
        self.queue.clear()
        self.model.clear()

    @rule(step=st.floats(0, 5, allow_nan=False))
    def advance(self, step: float) -> None:
        self.now += step

    @rule()
    def pop_due(self) -> None:
        item = self.queue.pop_due(self.now)
        due_now = {i: key for i, key in self.model.items() if key[0] <= self.now}
        if not due_now:
            assert item is None
            return
        expected = min(due_now, key=due_now.__getitem__)
        assert item is expected, (item, expected, self.model)
        assert item not in self.queue
        del self.model[item]

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def drain(self) -> None:
        # Everything comes out in (due, push order), then the queue is empty.
        expected = sorted(self.model, key=self.model.__getitem__)
        got = []
        while (item := self.queue.pop_due(math.inf)) is not None:
            got.append(item)
        assert got == expected
        self.model.clear()

    @invariant()
    def same_size_and_head(self) -> None:
        assert len(self.queue) == len(self.model)
        head = self.queue.next_due()
        if self.model:
            assert head == min(due for due, _ in self.model.values())
        else:
            assert head is None

    @invariant()
    def live_entries_are_the_model(self) -> None:
        # White-box: exactly one live heap entry per queued item, at its latest due time.
        seqs = self.queue._seq
        live = [(key, due) for due, seq, key in self.queue._heap if seqs.get(key) == seq]
        assert len(live) == len(seqs) == len(self.model)
        assert dict(live) == {item: due for item, (due, _) in self.model.items()}

    @invariant()
    def membership_says_whether_queued(self) -> None:
        for item in self.model:
            assert item in self.queue

    @invariant()
    def stale_entries_never_surface(self) -> None:
        # Lazy deletion keeps stale entries below live ones for a while, but the head is
        # always live, and once nothing is queued nothing is pinned in memory.
        self.queue.next_due()
        heap = self.queue._heap
        if heap:
            due, seq, item = heap[0]
            assert self.queue._seq[item] == seq
            assert self.model[item][0] == due
        else:
            assert not self.model
        if not self.model:
            assert not self.queue._heap
            assert not self.queue._seq


TestDueQueueModel = DueQueueMachine.TestCase
TestDueQueueModel.settings = settings(max_examples=100, stateful_step_count=60, deadline=None)
