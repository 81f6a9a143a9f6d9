"""The hub's job table, and a view of one job: its last status and its subscribers.

A job's view fans out what the hub decided: a new status to every subscriber of the job
(and its first event to a subscriber still waiting for one, from the status it
committed if it is a durable consumer), or the job's terminal error. It decides
nothing about polling; the hub does.
"""

from __future__ import annotations

import enum
import math
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, KeysView
from datetime import datetime, timezone
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeAlias

from ._errors import (
    CredentialsError,
    JobNotFoundError,
    ThrottledError,
    TransientError,
    TransportError,
)
from ._events import JobErrorEvent, JobStatus, StatusChange

if TYPE_CHECKING:
    from ._events import Description, JobSummary
    from ._stats import Statistics
    from ._subscription import Subscription

__all__ = ["JobEntry", "JobTable", "Verdict"]

#: A job's subscribers of one kind: none, one, or several (a job almost always has one,
#: and a list per job would be one more object for every garbage collection to walk).
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


#: A job's status in its record: 0 for none yet, else a code given to each status the
#: first time a record holds it (the known ones at import; one the library does not know
#: yet, made by ``JobStatus._missing_``, when it first comes).
_STATUSES: list[JobStatus | None] = [None, *JobStatus]
_CODES: dict[JobStatus | None, int] = {status: code for code, status in enumerate(_STATUSES)}
_CODES_LOCK = threading.Lock()

#: One job's numbers, packed in a ``bytearray``: first_seen, failing_since (NaN: none),
#: applied_at, hinted, created (NaN: none), unchanged; the status code; one byte each for
#: in_flight and removed.
_RECORD = struct.Struct("<dddddqHBB")
_FIRST_SEEN, _FAILING_SINCE, _APPLIED_AT, _HINTED, _CREATED, _UNCHANGED = range(0, 48, 8)
_STATUS, _IN_FLIGHT, _REMOVED = 48, 50, 51
_CODE = struct.Struct("<H")
_FLOAT = struct.Struct("<d")
_INT = struct.Struct("<q")


class JobTable:
    """The hub's jobs by name, with no object per job for the garbage collector to walk.

    A full (generation-2) collection walks every tracked object in the process and holds
    the event loop meanwhile; an object per job would also start such collections as
    100,000 jobs are added. So each job's numbers live in a plain ``bytearray`` (which
    the collector does not track) in a dict of names (which it does not track either,
    holding only strings and bytearrays), and its subscribers in two dicts by name:
    three tracked objects in all, however many jobs. A :class:`JobEntry` is a short-lived
    view of one job, made on each lookup.
    """

    __slots__ = ("_pending", "_records", "_subs")

    def __init__(self) -> None:
        self._records: dict[str, bytearray] = {}
        # Subscribers that have seen the job's status, and those awaiting a first event.
        self._subs: dict[str, _Subs] = {}
        self._pending: dict[str, _Subs] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def names(self) -> KeysView[str]:
        """The names of the jobs in the table (a live view)."""
        return self._records.keys()

    def get(self, name: str) -> JobEntry | None:
        """A view of job ``name``, or None if it is not in the table."""
        record = self._records.get(name)
        return None if record is None else JobEntry(self, name, record)

    def views(self, names: Iterable[str]) -> Iterator[JobEntry]:
        """A view of each of ``names`` still in the table when it comes (one at a time:
        a walk over a snapshot of the names, while jobs leave, skips those that left)."""
        records = self._records
        for name in names:
            record = records.get(name)
            if record is not None:
                yield JobEntry(self, name, record)

    def add(self, name: str, now: float) -> JobEntry:
        """Add job ``name``, first seen at clock time ``now`` (it must not be in the table)."""
        record = self._records[name] = bytearray(
            _RECORD.pack(now, math.nan, -math.inf, -math.inf, math.nan, 0, 0, 0, 0)
        )
        return JobEntry(self, name, record)

    def remove(self, job: JobEntry) -> None:
        """Take ``job`` out of the table: from now on its views say ``removed``."""
        record = job._record
        if record[_REMOVED]:
            return
        record[_REMOVED] = 1
        del self._records[job.name]
        self._subs.pop(job.name, None)
        self._pending.pop(job.name, None)


def _new_code(status: JobStatus | None) -> int:
    """The code of a status no record held before (one the library does not know)."""
    with _CODES_LOCK:
        code = _CODES.get(status)
        if code is None:
            if len(_STATUSES) > 0xFFFF:
                raise ValueError(f"too many distinct job statuses to keep: {status!r}")
            code = _CODES[status] = len(_STATUSES)
            _STATUSES.append(status)
        return code


def _float_field(offset: int, doc: str) -> property:
    def get(self: JobEntry) -> float:
        value: float = _FLOAT.unpack_from(self._record, offset)[0]
        return value

    def set_(self: JobEntry, value: float) -> None:
        _FLOAT.pack_into(self._record, offset, value)

    return property(get, set_, doc=doc)


def _optional_field(offset: int, doc: str) -> property:
    def get(self: JobEntry) -> float | None:
        value: float = _FLOAT.unpack_from(self._record, offset)[0]
        return None if math.isnan(value) else value

    def set_(self: JobEntry, value: float | None) -> None:
        _FLOAT.pack_into(self._record, offset, math.nan if value is None else value)

    return property(get, set_, doc=doc)


def _flag_field(offset: int, doc: str) -> property:
    def get(self: JobEntry) -> bool:
        return bool(self._record[offset])

    def set_(self: JobEntry, value: bool) -> None:
        self._record[offset] = 1 if value else 0

    return property(get, set_, doc=doc)


def _subs_field(kind: Callable[[JobTable], dict[str, _Subs]], doc: str) -> property:
    def get(self: JobEntry) -> _Subs:
        if self._record[_REMOVED]:
            return None
        return kind(self._table).get(self.name)

    def set_(self: JobEntry, value: _Subs) -> None:
        if self._record[_REMOVED]:
            return  # the job left the table: nobody is subscribed to it any more
        if value is None:
            kind(self._table).pop(self.name, None)
        else:
            kind(self._table)[self.name] = value

    return property(get, set_, doc=doc)


class JobEntry:
    """A view of one job of a :class:`JobTable`: its last status and its subscribers.

    Views are made on each lookup and never kept in the table: two views of one job
    read and write the same record. Once the job leaves the table its views say
    ``removed`` (and forget its subscribers), whatever job takes its name later.
    """

    __slots__ = ("_record", "_table", "name")

    def __init__(self, table: JobTable, name: str, record: bytearray) -> None:
        self._table = table
        self.name = name
        self._record = record

    first_seen = _float_field(_FIRST_SEEN, "When the job entered the table (clock time).")
    applied_at = _float_field(_APPLIED_AT, "When the describe last applied was sent.")
    hinted = _float_field(
        _HINTED,
        "The rank of the newest status a sweep listed and no describe here answered yet "
        "(-inf: none). It outlives a lease moving: whoever polls the job next looks soon.",
    )
    failing_since = _optional_field(
        _FAILING_SINCE, "When describes of the job started failing (None: they do not)."
    )
    created = _optional_field(
        _CREATED,
        "The job's CreationTime (epoch seconds) once an answer gave it: where a re-list of "
        "the watched jobs' window starts.",
    )
    in_flight = _flag_field(_IN_FLIGHT, "Whether a describe of the job is under way.")
    removed = _flag_field(_REMOVED, "Whether the job left the table.")
    subs = _subs_field(attrgetter("_subs"), "Subscribers that have seen ``status``.")
    pending = _subs_field(attrgetter("_pending"), "Subscribers still awaiting a first event.")

    @property
    def status(self) -> JobStatus | None:
        """The job's last status (None: none seen yet)."""
        code: int = _CODE.unpack_from(self._record, _STATUS)[0]
        return _STATUSES[code]

    @status.setter
    def status(self, status: JobStatus | None) -> None:
        code = _CODES.get(status)
        if code is None:
            code = _new_code(status)
        _CODE.pack_into(self._record, _STATUS, code)

    @property
    def unchanged(self) -> int:
        """Answers in a row that found the status unchanged."""
        value: int = _INT.unpack_from(self._record, _UNCHANGED)[0]
        return value

    @unchanged.setter
    def unchanged(self, value: int) -> None:
        _INT.pack_into(self._record, _UNCHANGED, value)

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
