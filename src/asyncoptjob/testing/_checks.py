"""Checks that watched events keep the library's guarantees, alone and against the truth.

Per job, whatever the faults:

* the first ``StatusChange`` has ``previous_status`` None, each next one's is the
  status before it, and no status repeats back to back;
* exactly one terminal outcome (a terminal ``StatusChange`` or a ``JobErrorEvent``) comes,
  and it comes last;
* against the endpoint's ground truth (its true transitions, e.g. the mock's
  ``/_mock/transitions``): the statuses seen are true statuses in the true order
  (polling may skip a short status, never invent or reorder one), and a terminal status
  seen is the status the job really ended in.

A broken guarantee raises :class:`InvariantError`, an ``AssertionError`` whose message
names the job and the sequence, so the checks read as assertions in a test and can be
caught and counted in a long run (``benchmarks/soak.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .._events import Event, JobErrorEvent, JobStatus, StatusChange

__all__ = [
    "EventOrder",
    "InvariantError",
    "check_events",
    "check_against_truth",
    "check_truth",
]


class InvariantError(AssertionError):
    """A job's events broke a guarantee; the message names the job and what it saw."""


def _label(event: Event) -> str:
    if isinstance(event, JobErrorEvent):
        return "!" + str(getattr(event.error, "code", None) or type(event.error).__name__)
    return event.status.value


def _is_terminal(label: str) -> bool:
    return label.startswith("!") or JobStatus(label).is_terminal


class EventOrder:
    """Follows each job's events as they arrive and checks each against those before it.

    ``histories`` keeps, per job, the statuses seen (their string values) and a
    ``"!Code"`` entry for a ``JobErrorEvent``: small enough for a run of thousands of jobs.

    Example:
        >>> from datetime import datetime, timezone
        >>> from asyncoptjob import JobStatus, StatusChange
        >>> at = datetime.now(timezone.utc)
        >>> def change(status, previous=None):
        ...     desc = {"OptimizationJobName": "job-1"}
        ...     return StatusChange("job-1", previous, status, desc, at)
        >>> order = EventOrder()
        >>> order.add(change(JobStatus.STARTING))
        >>> order.add(change(JobStatus.COMPLETED, JobStatus.STARTING))
        >>> order.check_finished(["job-1"])
        >>> order.histories
        {'job-1': ['STARTING', 'COMPLETED']}
    """

    def __init__(self) -> None:
        self.histories: dict[str, list[str]] = {}
        self._previous: dict[str, JobStatus | None] = {}

    def add(self, event: Event) -> None:
        """Record *event* and check that it may follow its job's earlier events.

        Raises:
            InvariantError: after a terminal outcome, out of order (``previous_status``
                is not the status seen before), a repeated status, a naive
                ``observed_at``, or a description of another job. The event is
                recorded all the same, so a long run can go on checking.
        """
        name = event.job_name
        history = self.histories.setdefault(name, [])
        ended = bool(history) and _is_terminal(history[-1])
        previous = self._previous.get(name)
        history.append(_label(event))
        if ended:
            raise InvariantError(f"{name}: an event after its terminal outcome: {history}")
        if isinstance(event, JobErrorEvent):
            return
        self._previous[name] = event.status
        if event.previous_status != previous:
            raise InvariantError(
                f"{name}: out of order, previous_status {event.previous_status} "
                f"after {previous}: {history}"
            )
        if event.status == previous:
            raise InvariantError(f"{name}: status {event.status} repeated: {history}")
        if event.observed_at.tzinfo is None:
            raise InvariantError(f"{name}: observed_at {event.observed_at} has no time zone")
        described = event.description.get("OptimizationJobName")
        if described != name:
            raise InvariantError(f"{name}: the event carries the description of {described!r}")

    def check_finished(self, names: Iterable[str] | None = None) -> None:
        """Check that every job ended with exactly one terminal outcome, last.

        Args:
            names: the jobs that were watched; when given, events for any other job,
                or none for one of these, fail the check too.

        Raises:
            InvariantError: naming the first job that did not finish, or the jobs
                missing or unexpected.
        """
        if names is not None:
            expected = set(names)
            odd = set(self.histories) ^ expected
            if odd:
                missing = sorted(expected - set(self.histories))
                unexpected = sorted(set(self.histories) - expected)
                raise InvariantError(f"no events for {missing}; events for unwatched {unexpected}")
        for name, history in self.histories.items():
            if not _is_terminal(history[-1]):
                raise InvariantError(f"{name}: no terminal outcome at the end: {history}")


def check_events(events: Iterable[Event], names: Iterable[str]) -> dict[str, list[Event]]:
    """Check the per-job guarantees of a finished watch; return the events grouped by job.

    Args:
        events: every event a watch yielded, in the order it yielded them.
        names: the jobs it watched.

    Raises:
        InvariantError: see :meth:`EventOrder.add` and :meth:`EventOrder.check_finished`.

    Example:
        >>> from datetime import datetime, timezone
        >>> from asyncoptjob import JobStatus, StatusChange
        >>> at = datetime.now(timezone.utc)
        >>> done = StatusChange("a", None, JobStatus.COMPLETED, {"OptimizationJobName": "a"}, at)
        >>> check_events([done], ["a"])["a"] == [done]
        True
    """
    order = EventOrder()
    by_job: dict[str, list[Event]] = {}
    for event in events:
        by_job.setdefault(event.job_name, []).append(event)
        order.add(event)
    order.check_finished(names)
    return by_job


def check_truth(
    name: str,
    seen: Sequence[str],
    truth: Sequence[str],
    *,
    finished: bool = False,
) -> None:
    """Check the statuses seen for job *name* against its true statuses.

    Args:
        name: the job, for the message.
        seen: the statuses a watcher saw, in order (``JobStatus`` or their values).
        truth: every status the job really went through, in order.
        finished: the last status seen claims to be the job's final one (as
            ``wait_until_done``'s result does), terminal or not.

    Raises:
        InvariantError: a status seen is not in the truth, or out of its order; or a
            terminal (or *finished*) status seen is not the status the job ended in.

    Example:
        >>> check_truth("a", ["STARTING", "COMPLETED"], ["STARTING", "INPROGRESS", "COMPLETED"])
        >>> check_truth("a", ["INPROGRESS", "STARTING"], ["STARTING", "INPROGRESS"])
        Traceback (most recent call last):
        ...
        asyncoptjob.testing._checks.InvariantError: a: saw ['INPROGRESS', 'STARTING'], truth ['STARTING', 'INPROGRESS']
    """  # noqa: E501  (a doctest's output is one line)
    seen = [str(status) for status in seen]
    truth = [str(status) for status in truth]
    remaining = iter(truth)
    if not all(status in remaining for status in seen):
        raise InvariantError(f"{name}: saw {seen}, truth {truth}")
    if seen and (finished or JobStatus(seen[-1]).is_terminal) and seen[-1] != truth[-1]:
        raise InvariantError(f"{name}: ended {seen[-1]}, truth {truth}")
    if finished and not seen:
        raise InvariantError(f"{name}: no final status seen, truth {truth}")


def check_against_truth(
    by_job: Mapping[str, Sequence[Event]], truth: Mapping[str, Sequence[str]]
) -> None:
    """Check each job's events against its true statuses (see :func:`check_truth`).

    A job whose last event is a ``StatusChange`` must have ended in that status.

    Args:
        by_job: the events per job, e.g. what :func:`check_events` returns.
        truth: every job's true statuses in order, e.g. from the mock's transitions:
            ``{name: [s for s, _ in items] for name, items in mock.transitions().items()}``.

    Raises:
        InvariantError: a job unknown to the truth, or whose events disagree with it.
    """
    for name, events in by_job.items():
        if name not in truth:
            raise InvariantError(f"{name}: unknown to the endpoint's ground truth")
        seen = [e.status.value for e in events if isinstance(e, StatusChange)]
        final = events[-1] if events else None
        if isinstance(final, StatusChange) and not final.is_terminal:
            raise InvariantError(f"{name}: last event {final.status} is not terminal: {seen}")
        check_truth(name, seen, truth[name], finished=isinstance(final, StatusChange))
