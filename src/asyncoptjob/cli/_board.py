"""What a run has seen so far: each job's status, recent transitions, request rates."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import anyio.lowlevel

from .. import Event, JobErrorEvent, JobStatus, PollerStats, StatusChange
from ._exit import ExitCode

__all__ = ["COLUMNS", "ERROR", "PENDING", "PROBLEMS", "Board", "Transition"]

PENDING = "PENDING"
"""A job not observed yet."""
ERROR = "ERROR"
"""A job that could not be watched to its end (a JobErrorEvent)."""
COLUMNS: tuple[str, ...] = (PENDING, *(status.value for status in JobStatus), ERROR)
"""Every state a job can be shown in, in display order."""
PROBLEMS = frozenset({JobStatus.FAILED.value, JobStatus.STOPPED.value, ERROR})
"""The final states of a job that did not complete."""
_FINAL = frozenset({*(status.value for status in JobStatus if status.is_terminal), ERROR})

#: Jobs put on a board, or looked at, between two checkpoints (the loop runs between two).
SLICE = 10_000


@dataclass(frozen=True, slots=True)
class Transition:
    """One line of the "recent transitions" list."""

    at: datetime
    job_name: str
    previous: str | None
    status: str
    detail: str | None = None


class Board:
    """The state of one run, fed with events and ``poller.stats`` snapshots.

    Pure bookkeeping (no I/O), so the live view, the plain progress lines, the final
    summary and the exit status all read the same numbers. Per job it keeps strings only
    (dicts of strings, which the garbage collector does not walk); nothing it does when
    the view refreshes walks the jobs. :meth:`watching` builds a large board in slices.

    Args:
        names: every job the run watches.
        recent: how many transitions to keep for display.
        clock: monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        names: Iterable[str],
        *,
        recent: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.status: dict[str, str] = dict.fromkeys(names, PENDING)
        # Jobs per state, kept as events come: a refresh reads it without walking the jobs.
        self._counts = dict.fromkeys(COLUMNS, 0)
        self._counts[PENDING] = len(self.status)
        self.details: dict[str, str] = {}
        #: Jobs that did not complete (FAILED, STOPPED, ERROR), in the order they ended.
        self.problems: dict[str, str] = {}
        self.recent: deque[Transition] = deque(maxlen=recent)
        self.transitions = 0
        self.timed_out = False
        self.interrupted = False
        self._clock = clock
        self.started = clock()
        self.stats: PollerStats | None = None
        self._samples: deque[tuple[float, int]] = deque()
        self.peak_rate = 0.0

    @classmethod
    async def watching(
        cls, names: Sequence[str], *, recent: int = 8, clock: Callable[[], float] = time.monotonic
    ) -> Board:
        """A board of ``names`` (as :class:`Board`), made :data:`SLICE` jobs at a time."""
        board = cls((), recent=recent, clock=clock)
        for start in range(0, len(names), SLICE):
            if start:
                await anyio.lowlevel.checkpoint()
            board.status.update(dict.fromkeys(names[start : start + SLICE], PENDING))
        board._counts[PENDING] = len(board.status)
        return board

    # -- feeding ---------------------------------------------------------------------------

    def record(self, event: Event) -> Transition:
        """Apply one event; return the transition it represents."""
        if isinstance(event, JobErrorEvent):
            transition = Transition(
                at=datetime.now(timezone.utc),
                job_name=event.job_name,
                previous=self.status.get(event.job_name),
                status=ERROR,
                detail=str(event.error),
            )
        else:
            transition = Transition(
                at=event.observed_at,
                job_name=event.job_name,
                previous=event.previous_status.value if event.previous_status else None,
                status=event.status.value,
                detail=failure_reason(event),
            )
        counts = self._counts
        before = self.status.get(transition.job_name)
        if before is not None:
            counts[before] -= 1
        counts[transition.status] = counts.get(transition.status, 0) + 1
        self.status[transition.job_name] = transition.status
        if transition.detail:
            self.details[transition.job_name] = transition.detail
        if transition.status in PROBLEMS:
            self.problems[transition.job_name] = transition.status
        else:
            self.problems.pop(transition.job_name, None)
        self.recent.append(transition)
        self.transitions += 1
        return transition

    def sample(self, stats: PollerStats) -> None:
        """Take a stats snapshot; the request rate is measured over the last few seconds."""
        now = self._clock()
        self.stats = stats
        self._samples.append((now, stats.total_requests))
        # A 3 s window smooths the per-refresh jitter without hiding a throttling spell.
        while len(self._samples) > 2 and now - self._samples[1][0] >= 3.0:
            self._samples.popleft()
        self.peak_rate = max(self.peak_rate, self.request_rate)

    # -- reading ---------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """How many jobs the run watches."""
        return len(self.status)

    @property
    def finished(self) -> int:
        """Jobs with a terminal outcome."""
        return sum(count for state, count in self._counts.items() if state in _FINAL)

    @property
    def elapsed(self) -> float:
        """Seconds since the board was created."""
        return self._clock() - self.started

    @property
    def request_rate(self) -> float:
        """Requests per second (any outcome) over the sampling window."""
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def counts(self) -> dict[str, int]:
        """Jobs per state, every state in :data:`COLUMNS` present (zero included), then any
        status this release does not know."""
        return dict(self._counts)

    def unfinished(self) -> Mapping[str, str]:
        """Each job without a terminal outcome and its last known state."""
        return dict(self.unfinished_items())

    def unfinished_items(self) -> Iterator[tuple[str, str]]:
        """:meth:`unfinished`, one job at a time (in the order the jobs were given)."""
        return ((name, s) for name, s in self.status.items() if s not in _FINAL)

    async def unfinished_names(self) -> list[str]:
        """The jobs of :meth:`unfinished`, in order, looked at :data:`SLICE` at a time."""
        names = list(self.status)
        unfinished: list[str] = []
        for start in range(0, len(names), SLICE):
            if start:
                await anyio.lowlevel.checkpoint()
            status = self.status
            unfinished += [n for n in names[start : start + SLICE] if status[n] not in _FINAL]
        return unfinished

    def exit_code(self) -> ExitCode:
        """The process exit status this run deserves (interrupted > timeout > failed > ok)."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.timed_out or self.finished < self.total:
            return ExitCode.TIMEOUT
        if self._counts.get(JobStatus.COMPLETED.value, 0) < self.total:
            return ExitCode.FAILED
        return ExitCode.OK


def failure_reason(event: StatusChange) -> str | None:
    """The ``FailureReason`` of a description, when AWS gave one."""
    reason = event.description.get("FailureReason")
    return str(reason) if reason else None
