"""One entry of the hub's job table: a job's last status and the subscribers that share it.

The entry fans out what the hub decided: a new status to every subscriber of the job
(and its first event to a subscriber still waiting for one, from the status it
committed if it is a durable consumer), or the job's terminal error. It decides
nothing about polling; the hub does.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeAlias

from ._errors import (
    CredentialsError,
    JobNotFoundError,
    ThrottledError,
    TransientError,
    TransportError,
)
from ._events import JobErrorEvent, JobStatus, StatusChange
from ._scheduler import NOT_QUEUED

if TYPE_CHECKING:
    from ._events import Description, JobSummary
    from ._stats import Statistics
    from ._subscription import Subscription

__all__ = ["JobEntry", "Verdict"]

#: A job's subscribers of one kind: none, one, or several (see ``JobEntry.subs``).
_Subs: TypeAlias = "Subscription | list[Subscription] | None"


class Verdict(enum.Enum):
    """What a failed describe means for a job."""

    #: Throttled or transient, within the retry budget: poll again later.
    RETRY = enum.auto()
    #: Unknown to SageMaker, but never seen and within the not-found grace.
    NOT_FOUND_YET = enum.auto()
    #: Credentials or permissions: every subscriber of the job fails with it.
    FAIL_SUBSCRIBERS = enum.auto()
    #: The job cannot be watched to its end: its terminal error event.
    GIVE_UP = enum.auto()


class JobEntry:
    """The hub's bookkeeping for one job (kept small: 100,000 of these fit in ~50 MB)."""

    __slots__ = (
        "applied_at",
        "created",
        "failing_since",
        "first_seen",
        "hinted",
        "in_flight",
        "name",
        "pending",
        "removed",
        "status",
        "subs",
        "token",
        "unchanged",
    )

    def __init__(self, name: str, now: float) -> None:
        self.name = name
        self.status: JobStatus | None = None
        # Subscribers that have seen ``status``; ``pending`` ones still await a first event.
        # Each is None, one subscription, or a list of several: a job almost always has
        # one, and a list per job would be one more object for every garbage collection
        # to walk (100,000 jobs, 100,000 lists).
        self.subs: _Subs = None
        self.pending: _Subs = None
        self.unchanged = 0
        self.first_seen = now
        self.failing_since: float | None = None
        self.applied_at = -math.inf
        self.token = NOT_QUEUED
        self.in_flight = False
        self.removed = False
        # The rank of the newest status a sweep listed and no describe here answered yet
        # (-inf: none). It outlives a lease moving: whoever polls the job next looks soon.
        self.hinted = -math.inf
        # The job's CreationTime (epoch seconds) once an answer gave it: where a re-list of
        # the watched jobs' window starts.
        self.created: float | None = None

    def add(self, sub: Subscription) -> None:
        """``sub`` waits for this job's first event (from the next status applied)."""
        self.pending = _joined(self.pending, sub)

    def drop(self, sub: Subscription) -> bool:
        """Forget ``sub``; True if nobody watches the job any more."""
        self.subs = _without(self.subs, sub)
        self.pending = _without(self.pending, sub)
        return self.subs is None and self.pending is None

    @property
    def waiting(self) -> bool:
        """Whether a subscriber still awaits its first event of this job."""
        return self.pending is not None

    def subscribers(self) -> list[Subscription]:
        """Every subscriber of the job, first event delivered or not."""
        return _listed(self.subs) + _listed(self.pending)

    def answered(self, sent_at: float) -> None:
        """A describe sent at ``sent_at`` answered: no longer failing, no hint pending."""
        self.applied_at = sent_at
        self.failing_since = None
        self.hinted = -math.inf

    def judge(
        self,
        error: TransportError,
        started: float,
        now: float,
        max_elapsed: float,
        not_found_grace: float,
    ) -> Verdict:
        """What a failed describe of this job (sent at ``started``) means ``now``."""
        if isinstance(error, (ThrottledError, TransientError)):
            if self.failing_since is None:
                self.failing_since = started
            if now >= self.give_up_at(now, max_elapsed):
                return Verdict.GIVE_UP
            return Verdict.RETRY
        if isinstance(error, JobNotFoundError):
            # The grace covers eventual consistency after Create: only for a job never
            # seen. A job that was seen and is now unknown was deleted.
            if self.status is None and now - self.first_seen < not_found_grace:
                return Verdict.NOT_FOUND_YET
            return Verdict.GIVE_UP
        if isinstance(error, CredentialsError):
            return Verdict.FAIL_SUBSCRIBERS
        return Verdict.GIVE_UP

    def give_up_at(self, now: float, max_elapsed: float) -> float:
        """When retries stop: ``max_elapsed`` after the job started failing (or ``now``)."""
        since = self.failing_since if self.failing_since is not None else now
        return since + max_elapsed

    def apply(
        self,
        status: JobStatus,
        description: Description,
        stats: Statistics,
        log: Any,
        *,
        summary: JobSummary | None = None,
    ) -> datetime:
        """Fan ``status`` out to the subscribers; give pending ones their first event.

        Args:
            summary: the List entry the status came from (the events' ``source`` is
                ``"list"``), or None for a describe answer.

        Returns:
            When the status was observed (the events' ``observed_at``).
        """
        observed_at = datetime.now(timezone.utc)
        if self.created is None:
            created = description.get("CreationTime")
            if isinstance(created, datetime):
                self.created = created.timestamp()
        previous = self.status
        if status is not previous:
            if previous is None:
                stats.jobs_pending -= 1
            self.status = status
            self.unchanged = 0
            if self.subs is not None:
                event = _event(self.name, previous, status, description, observed_at, summary)
                subs = _listed(self.subs)
                for sub in subs:
                    sub.deliver(event, terminal=status.is_terminal)
                stats.count_delivered(status, len(subs))
                log.info(
                    "job_status_changed",
                    job_name=self.name,
                    previous_status=previous.value if previous else None,
                    status=status.value,
                    source="describe" if summary is None else "list",
                )
        else:
            self.unchanged += 1
        pending = self.pending
        if pending is not None:
            self.pending = None
            self._first_events(_listed(pending), status, description, observed_at, stats, summary)
        return observed_at

    def _first_events(
        self,
        pending: list[Subscription],
        status: JobStatus,
        description: Description,
        observed_at: datetime,
        stats: Statistics,
        summary: JobSummary | None,
    ) -> None:
        first = _event(self.name, None, status, description, observed_at, summary)
        for sub in pending:
            since = sub.since.get(self.name) if sub.since else None
            if since is None:
                sub.deliver(first, terminal=status.is_terminal)
            elif status.rank > since.rank:
                # A durable consumer goes on from the status it committed.
                event = _event(self.name, since, status, description, observed_at, summary)
                sub.deliver(event, terminal=status.is_terminal)
            elif status.rank < since.rank:
                # Older than what the consumer committed: wait for the next answer.
                self.add(sub)
                continue
            else:
                self.subs = _joined(self.subs, sub)
                continue
            stats.count_delivered(status, 1)
            self.subs = _joined(self.subs, sub)

    def end_with_error(self, error: Exception, stats: Statistics) -> None:
        """The job could not be watched to its end: its terminal event, for everyone."""
        event = JobErrorEvent(self.name, error)
        subs = self.subscribers()
        for sub in subs:
            sub.deliver(event, terminal=True)
        stats.events += len(subs)

    def fail_subscribers(self, error: CredentialsError) -> list[Subscription]:
        """Fail every subscriber with ``error`` (it concerns them all); returns them."""
        subs = self.subscribers()
        for sub in subs:
            sub.fail(error)
        return subs


def _listed(subs: _Subs) -> list[Subscription]:
    if subs is None:
        return []
    return subs if isinstance(subs, list) else [subs]


def _joined(subs: _Subs, sub: Subscription) -> _Subs:
    if subs is None:
        return sub
    if isinstance(subs, list):
        subs.append(sub)
        return subs
    return [subs, sub]


def _without(subs: _Subs, sub: Subscription) -> _Subs:
    if subs is sub:
        return None
    if isinstance(subs, list) and sub in subs:
        subs.remove(sub)
        return subs if len(subs) > 1 else subs[0]
    return subs


def _event(
    name: str,
    previous: JobStatus | None,
    status: JobStatus,
    description: Description,
    observed_at: datetime,
    summary: JobSummary | None,
) -> StatusChange:
    if summary is None:
        return StatusChange(name, previous, status, description, observed_at)
    return StatusChange(name, previous, status, description, observed_at, "list", summary)
