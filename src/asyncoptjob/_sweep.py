"""List sweeps: one ListOptimizationJobs call reports up to 100 jobs.

Describe-only polling costs one request per job per poll, against a rate limit the
whole account shares. A sweep asks ListOptimizationJobs which jobs changed since the
last sweep (``LastModifiedTimeAfter``, 100 per page) and the hub describes only the
watched jobs whose listed status differs from the one it knows, so events still carry
full descriptions. List is only ever a hint:

* the watermark trails the start of the last *complete* sweep by ``overlap`` seconds,
  so clock skew and List's eventual consistency cannot hide a change (a change List
  shows late is still inside the next sweeps' window);
* a sweep reads at most ``max_pages`` pages; the rest (including the empty pages with
  a ``NextToken`` that SageMaker's List calls are known to return) is resumed by the
  next sweep from the same token, so a sweep never spins, and the watermark only
  advances once every page of a window was read. The next sweep comes at once when the
  pages held changes (a burst: paced by the List budget), an interval later otherwise;
* every job is still described every ``safety_interval`` seconds, jobs not yet
  observed are described at once, and every change List reports is confirmed by a
  describe before an event goes out (a job that vanished gets its not-found handling);
  with ``SweepPolicy(confirm="terminal")`` a non-terminal change List reports is the
  event at once (from List: ``StatusChange.source == "list"``), and only a terminal
  one is confirmed by a describe;
* when sweeps fail (throttled past the retry budget, errors), the hub falls back to
  describe-only polling until a sweep succeeds again.

List calls go through the same request pipeline as describes, with their own rate
budget (SageMaker's List limits are much lower than Describe's). :class:`Sweeper` reads
pages; :class:`SweepDriver` decides when to sweep and tells the hub, through the small
:class:`SweepHost` protocol, what it found and when the strategy changes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._answers import check_page
from ._errors import TransientError, TransportError
from ._log import get_logger
from ._operations import LIST
from ._pipeline import Pipeline
from ._ratelimit import AdaptiveRateLimiter, RateBudget
from ._validate import check_non_negative, check_positive, check_positive_int

if TYPE_CHECKING:
    from ._events import JobSummary
    from ._transport import Transport

__all__ = [
    "STRATEGIES",
    "SWEEP_INTERVAL_FACTOR",
    "Strategy",
    "SweepDriver",
    "SweepHost",
    "SweepLease",
    "SweepPolicy",
    "Sweeper",
]

log = get_logger()

Strategy = Literal["auto", "describe", "sweep"]
STRATEGIES: tuple[str, ...] = ("auto", "describe", "sweep")
Confirm = Literal["change", "terminal"]
CONFIRMS: tuple[str, ...] = ("change", "terminal")
SWEEP_INTERVAL_FACTOR = 0.75
#: The error code of a sweep whose window cannot finish (see ``max_window_pages``).
UNFINISHABLE = "SweepCannotFinish"
#: Safety-net describes come due 0.8-1.0 x ``safety_interval`` after the last describe.
SAFETY_JITTER = 0.2


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    """How list sweeps run (used by ``strategy="sweep"`` and ``"auto"``).

    Example::

        SweepPolicy(interval=20, safety_interval=900, max_rate=1.0)

    Args:
        interval: seconds between sweeps (> 0): the detection latency of a change.
            Default: 0.75 x the poll policy's base interval. A change waits on average
            half an interval for the next sweep plus a List and a describe round trip;
            sweeping a little more often than describe-only polling keeps detection
            latency no worse, for one extra List call in three.
        overlap: seconds the watermark trails the last complete sweep (>= 0), against
            clock skew and List's eventual consistency.
        safety_interval: seconds between describes of a job while sweeps run (> 0): the
            safety net against a missed List entry. Each job is described again
            0.8-1.0 x this long after its last describe (the jitter keeps jobs watched
            together from coming due together).
        max_pages: pages read per sweep before resuming in the next one (>= 1). When
            those pages held changes (a burst), the next sweep starts at once, paced by
            the List budget, until the window is read; after empty pages that still
            carry a ``NextToken`` it waits ``interval`` (no spinning).
        page_size: ``MaxResults`` per page (1-100).
        max_rate: hard ceiling on List calls per second (None: adaptive only).
        threshold: with ``strategy="auto"``, sweep once at least this many jobs are
            watched (>= 1) and the List budget allows a sweep every ``interval``
            (``max_rate * interval >= 1``); otherwise describing is cheaper or faster.
        max_window_pages: pages one window may take in all (>= 1). A window that needs
            more, or whose List answers repeat a ``NextToken``, cannot finish: that
            sweep fails, describes take over, and sweeping is tried again (the window
            read from its start) an ``interval`` later.
        confirm: which changes List reports are confirmed by a describe before their
            event: ``"change"`` (every one: every event carries a full description) or
            ``"terminal"`` (only terminal ones: a non-terminal change is its event at
            once, ``source="list"``, with the List entry as ``summary`` and a partial
            ``description``; one describe fewer per change, one round trip sooner).
            ``strategy="auto"`` uses the mode set here; it never switches to
            ``"terminal"`` by itself (the events' shape would change). In a fleet the
            sweep-lease holder's List entries reach every replica, and it re-lists for
            all of them.
    """

    interval: float | None = None
    overlap: float = 60.0
    safety_interval: float = 900.0
    max_pages: int = 10
    page_size: int = 100
    max_rate: float | None = 2.0
    threshold: int = 25
    max_window_pages: int = 1000
    confirm: Confirm = "change"

    def __post_init__(self) -> None:
        check_positive("interval", self.interval, allow_none=True)
        check_non_negative("overlap", self.overlap)
        check_positive("safety_interval", self.safety_interval)
        check_positive_int("max_pages", self.max_pages)
        check_positive_int("page_size", self.page_size)
        if self.page_size > 100:
            raise ValueError(f"page_size must be between 1 and 100, got {self.page_size!r}")
        check_positive("max_rate", self.max_rate, allow_none=True)
        check_positive_int("threshold", self.threshold)
        check_positive_int("max_window_pages", self.max_window_pages)
        if self.confirm not in CONFIRMS:
            raise ValueError(f"confirm must be 'change' or 'terminal', got {self.confirm!r}")

    def safety_delay(self, rng: random.Random) -> float:
        """Seconds until a job's next safety-net describe: 0.8-1.0 x ``safety_interval``."""
        return self.safety_interval * (1.0 - SAFETY_JITTER * rng.random())


class Sweeper:
    """Runs sweeps: watermark, resumable paging, its own rate budget."""

    def __init__(
        self,
        transport: Transport,
        policy: SweepPolicy,
        pipeline: Pipeline,
        *,
        interval: float,
        wall_clock: Callable[[], float] = time.time,
        limiter: RateBudget | None = None,
    ) -> None:
        self.transport = transport
        self.policy = policy
        self.interval = policy.interval or interval
        self.pipeline = pipeline
        self.clock = pipeline.clock
        self.wall_clock = wall_clock
        self.limiter: RateBudget = limiter or AdaptiveRateLimiter(
            max_rate=policy.max_rate, clock=pipeline.clock
        )
        self.log = log.bind()
        # Changes before the hub started are covered by every job's first describe.
        self.watermark = wall_clock()
        # The last watermark taken from another sweeper (``continue_from``).
        self._continued_from: float | None = None
        self._resume: tuple[dict[str, Any], str] | None = None
        self._window_start: float | None = None
        # The window read now: the tokens it gave and its pages (a window that repeats a
        # token, or never ends, fails instead of spinning).
        self._window_tokens: set[str] = set()
        self._window_pages = 0
        self.sweeps = 0
        self.pages = 0
        self.failures_in_a_row = 0
        #: The last sweep stopped at ``max_pages`` in a window with changes still to read.
        self.behind = False

    @property
    def affordable(self) -> bool:
        """True if the List budget allows one call per sweep interval."""
        return self.policy.max_rate is None or self.policy.max_rate * self.interval >= 1.0

    async def sweep(self, hint: Callable[[JobSummary], None]) -> bool:
        """Read up to ``max_pages`` pages and pass each job summary to ``hint``.

        Returns:
            True if the sweep succeeded (complete or resumable), False if it failed.
        """
        if self._resume is not None:
            params, token = self._resume
        else:
            self._window_start = self.wall_clock()
            self._window_tokens = set()
            self._window_pages = 0
            params = self._window()
            token = ""
        pages = listed = 0
        self.behind = False
        try:
            while pages < self.policy.max_pages:
                call = dict(params, NextToken=token) if token else params
                page = await self._list(call)
                pages += 1
                summaries = page["OptimizationJobSummaries"]
                listed += len(summaries)
                for summary in summaries:
                    hint(summary)
                token = page.get("NextToken") or ""
                if not token:
                    break
                self._check_window(token)
        except TransportError as exc:
            self.failures_in_a_row += 1
            self.log.warning("sweep_failed", error=exc.code, message=str(exc), pages=pages)
            if exc.code == UNFINISHABLE:
                self._resume = None  # the next try reads the window from its start
            return False
        except BaseException:
            # Interrupted (a cancellation): the next sweep goes on from this page of this
            # window instead of starting over.
            self._resume = (params, token)
            raise
        finally:
            self.pages += pages
        self.sweeps += 1
        self.failures_in_a_row = 0
        if token:
            # Resume from here next sweep; the watermark waits until the window is read.
            self._resume = (params, token)
            # Pages full of changes (a burst): the next sweep may come at once, paced by
            # the List budget. Empty pages with a token (the quirk) wait an interval.
            self.behind = listed > 0
        else:
            self._resume = None
            self._window_done()
        self.log.debug("sweep_done", pages=pages, resumed=bool(token))
        return True

    def _window(self) -> dict[str, Any]:
        """The List parameters of a new window: what changed since the watermark."""
        after = datetime.fromtimestamp(self.watermark - self.policy.overlap, tz=timezone.utc)
        return {"MaxResults": self.policy.page_size, "LastModifiedTimeAfter": after}

    def _window_done(self) -> None:
        """Every page of the window was read: the watermark moves to its start."""
        if self._window_start is not None:
            self.watermark = self._window_start

    def _check_window(self, token: str) -> None:
        """Fail a window that cannot finish: a repeated token, or too many pages."""
        self._window_pages += 1
        if token in self._window_tokens:
            problem = "repeated a NextToken"
        elif self._window_pages >= self.policy.max_window_pages:
            problem = f"needs more than max_window_pages={self.policy.max_window_pages} pages"
        else:
            self._window_tokens.add(token)
            return
        raise TransientError(
            f"{LIST}: the sweep window cannot finish: List {problem}",
            code=UNFINISHABLE,
            operation=LIST,
        )

    def continue_from(self, watermark: float) -> None:
        """Go on from another sweeper's ``watermark`` (a fleet's, by the sweep lease)."""
        if watermark in (self.watermark, self._continued_from):
            return  # this sweeper's own: a window it is reading page by page goes on
        self._continued_from = watermark
        # Never from the future (a clock ahead); a page token belongs to another window.
        self.watermark = min(watermark, self.wall_clock())
        self._resume = None

    async def _list(self, params: dict[str, Any]) -> Any:
        deadline = self.clock.now() + min(self.pipeline.retry.max_elapsed, self.interval * 3)
        page, _ = await self.pipeline.call_retrying(
            LIST, self.limiter, partial(self._list_checked, params), deadline=deadline
        )
        return page

    async def _list_checked(self, params: dict[str, Any]) -> Any:
        # Checked here, inside the retried call: a malformed page is retried.
        return check_page(await self.transport.list_jobs(**params))


class Relister(Sweeper):
    """Re-reads the watched jobs' window (``CreationTimeAfter`` the oldest of them).

    The safety net of ``confirm="terminal"``: every ``safety_interval`` a re-list shows
    each watched job at about one call per 100 jobs, paged and resumable like sweeps
    (and on their List budget); only the jobs it does not show are described. In a
    fleet the sweep-lease holder re-lists for every replica, from the oldest job any of
    them watches.
    """

    def __init__(self, sweeper: Sweeper) -> None:
        super().__init__(
            sweeper.transport,
            sweeper.policy,
            sweeper.pipeline,
            interval=sweeper.interval,
            wall_clock=sweeper.wall_clock,
            limiter=sweeper.limiter,
        )
        #: The oldest watched job's CreationTime while a re-list is under way, else None.
        self.since: float | None = None
        self.done = False

    def begin(self, since: float) -> None:
        """Start a re-list of the jobs created after ``since`` (epoch seconds)."""
        self.since = since
        self.done = False
        self._resume = None

    def _window(self) -> dict[str, Any]:
        since = (self.since or 0.0) - self.policy.overlap
        after = datetime.fromtimestamp(since, tz=timezone.utc)
        return {"MaxResults": self.policy.page_size, "CreationTimeAfter": after}

    def _window_done(self) -> None:
        self.done = True


class ListingHost(Protocol):
    """What sweeps and re-lists hand List entries to (the hub's :class:`~._listing.Listings`)."""

    @property
    def lists_first(self) -> bool:
        """Whether List entries are events now (``confirm="terminal"`` while sweeping)."""
        ...

    def found(self, summary: JobSummary, *, relisted: bool = False) -> None:
        """A List entry: an event now (``confirm="terminal"``) or a hint to describe."""
        ...

    async def oldest_created(self) -> float | None:
        """The oldest CreationTime (epoch seconds) of the watched jobs seen, if any."""
        ...

    def relist_begin(self) -> None:
        """A re-list of the watched jobs' window begins now."""
        ...

    async def relist_done(self) -> None:
        """The re-list under way is done: describe the watched jobs it did not show."""
        ...

    async def relisted(self, shown: set[str], started: float) -> None:
        """A re-list begun at ``started`` is done: describe the watched jobs not shown."""
        ...


class SweepHost(Protocol):
    """What the sweep driver needs from the hub."""

    def job_count(self) -> int:
        """How many jobs are watched now."""
        ...

    def hint(self, name: str, status: str) -> None:
        """A sweep listed ``name`` in ``status``: describe it soon if that is news."""
        ...

    @property
    def listings(self) -> ListingHost:
        """Where List entries go with ``confirm="terminal"``."""
        ...

    def strategy_changed(self, sweeping: bool) -> None:
        """Sweeps started (``True``) or stopped reporting changes (``False``)."""
        ...


class SweepLease(Protocol):
    """Who sweeps: in a fleet, one process at a time, for everyone (the coordination)."""

    async def sweep_turn(self, ttl: float) -> bool:
        """Whether this process sweeps now (it holds, or just took, the sweep lease)."""
        ...

    async def sweep_watermark(self) -> float | None:
        """Where the fleet's sweeps got to (epoch seconds), if anywhere yet."""
        ...

    async def share_listed(
        self, summaries: Sequence[JobSummary], watermark: float | None, *, relisted: bool = False
    ) -> None:
        """Hand what a sweep (or a re-list) listed, and the sweeps' watermark after it
        (None: unchanged), to the other processes."""
        ...

    async def share_relist(self, *, done: bool) -> None:
        """Tell the other processes a re-list begins (or is done: each describes the
        jobs it watches that the re-list did not show)."""
        ...

    async def relist_since(self, oldest: float | None) -> float | None:
        """Where a re-list starts: the oldest job any process watches (this process's
        own ``oldest`` included; None: nothing known)."""
        ...


#: The sweep lease lasts this many sweep intervals unless the holder sweeps again.
LEASE_INTERVALS = 3


class SweepDriver:
    """Decides when to sweep and whether sweeps or describes report changes right now.

    With ``strategy="sweep"`` it always sweeps; with ``"auto"`` once enough jobs are
    watched and the List budget affords it. While the last sweep failed, describes are
    back in charge (:attr:`sweeping` is False) until a sweep succeeds again.
    """

    def __init__(self, sweeper: Sweeper, strategy: Strategy, *, lease: SweepLease) -> None:
        self.sweeper = sweeper
        self.strategy = strategy
        #: Whose turn it is (a single process: always its own; a fleet: the sweep lease's
        #: holder sweeps and its findings reach the other processes' hubs).
        self.lease = lease
        self.clock = sweeper.clock
        #: Sweeps report changes; describes are only the safety net.
        self.sweeping = False
        self.log = sweeper.log
        self.relister = Relister(sweeper)
        # First describes held for the next sweep (``confirm="terminal"``): each is
        # released (the job described unless that sweep listed it) once it is done.
        self._held: list[Callable[[], None]] = []
        # Held while another process sweeps: its findings come by the fleet's stream, so
        # they wait one more interval (a whole sweep of the holder's) before release.
        self._waited: list[Callable[[], None]] = []
        # Whether the last turn was this process's to sweep (and re-list).
        self._turn = False

    @property
    def lists_first(self) -> bool:
        """Whether sweeps give first events and non-terminal changes now: with
        ``confirm="terminal"``, while sweeps report changes (from the start with
        ``strategy="sweep"``, before the first sweep's mode update)."""
        if self.sweeper.policy.confirm != "terminal" or self.sweeper.failures_in_a_row:
            return False
        return self.sweeping or self.strategy == "sweep"

    def hold(self, release: Callable[[], None]) -> None:
        """Call ``release`` once the next sweep to start is done (or sweeps stop here)."""
        self._held.append(release)

    def _release(self, held: list[Callable[[], None]]) -> None:
        for release in held:
            release()

    async def run(self, host: SweepHost) -> None:
        """Sweep every interval (at once while behind a burst) until cancelled."""
        sweeper = self.sweeper
        clock = self.clock
        # Every job's first describe covers the start; the first sweep comes later.
        next_sweep_at = clock.now() + sweeper.interval
        next_relist_at = clock.now() + sweeper.policy.safety_interval
        while True:
            self._update_mode(host)
            now = clock.now()
            if now < next_sweep_at:
                await clock.sleep(next_sweep_at - now)
                continue
            next_sweep_at = now + sweeper.interval
            swept = self._wanted(host) and await self._sweep(host)
            if swept and sweeper.behind:
                # A burst of changes: read on now (the List budget paces it).
                next_sweep_at = clock.now()
            # Re-lists are the sweeper's duty (in a fleet, the sweep-lease holder's, for
            # every replica): another process's turn pushes this one's next re-list on.
            relisting = self.sweeping and self.lists_first and self._turn
            if not relisting or (clock.now() >= next_relist_at and await self._relist(host)):
                # The next re-list comes a safety interval after the last one is done
                # (or after re-lists start: first describes and sweeps cover until then).
                next_relist_at = clock.now() + sweeper.policy.safety_interval

    async def _sweep(self, host: SweepHost) -> bool:
        """Sweep if it is this process's turn; True if it swept."""
        lease = self.lease
        # Jobs held from here on wait for the sweep after this one: this one may have
        # read their page already.
        held, self._held = self._held, []
        try:
            self._turn = await lease.sweep_turn(self.sweeper.interval * LEASE_INTERVALS)
        except BaseException:
            self._held = held + self._held  # still held for the next sweep
            raise
        if not self._turn:
            # Another process lists and its findings come by the stream: a job held now
            # waits for one whole sweep of the holder's (the next turn here) first.
            waited, self._waited = self._waited, held
            self._release(waited)
            self.relister.since = None  # a re-list this process began is the holder's now
            return False
        held, self._waited = self._waited + held, []
        try:
            return await self._sweep_turn(host, lease)
        finally:
            self._release(held)

    async def _sweep_turn(self, host: SweepHost, lease: SweepLease) -> bool:
        # The fleet's sweeps are one sweep: whoever held the lease last, go on from where
        # it got to (a holder that just took over would otherwise list from its own start
        # and miss what changed in between for the other processes' jobs).
        watermark = await lease.sweep_watermark()
        if watermark is not None:
            self.sweeper.continue_from(watermark)
        found: list[JobSummary] = []
        listings = host.listings

        def hint(summary: JobSummary) -> None:
            listings.found(summary)
            found.append(summary)

        await self.sweeper.sweep(hint)
        await lease.share_listed(found, self.sweeper.watermark)
        return True

    async def _relist(self, host: SweepHost) -> bool:
        """Read on in the re-list of the watched jobs' window; True once it is done."""
        relister = self.relister
        listings = host.listings
        lease = self.lease
        if relister.since is None:
            since = await lease.relist_since(await listings.oldest_created())
            if since is None:
                # No creation time known (no job seen yet): nothing to re-list by;
                # describe the jobs seen here, as the safety net does.
                await listings.relisted(set(), self.clock.now())
                return True
            relister.begin(since)
            listings.relist_begin()
            await lease.share_relist(done=False)
        shown: list[JobSummary] = []

        def found(summary: JobSummary) -> None:
            listings.found(summary, relisted=True)
            shown.append(summary)

        await relister.sweep(found)  # a failed page is read again next time
        await lease.share_listed(shown, None, relisted=True)
        if not relister.done:
            return False
        relister.since = None
        await lease.share_relist(done=True)
        await listings.relist_done()
        return True

    def _wanted(self, host: SweepHost) -> bool:
        if self.strategy == "sweep":
            return True
        return (
            self.strategy == "auto"
            and self.sweeper.affordable
            and host.job_count() >= self.sweeper.policy.threshold
        )

    def _update_mode(self, host: SweepHost) -> None:
        active = self._wanted(host) and self.sweeper.failures_in_a_row == 0
        if active == self.sweeping:
            return
        self.sweeping = active
        if not active:
            held, self._held, self._waited = self._waited + self._held, [], []
            self._release(held)
        self.log.info(
            "strategy_changed",
            strategy="sweep" if active else "describe",
            jobs=host.job_count(),
            sweep_failures=self.sweeper.failures_in_a_row,
        )
        host.strategy_changed(active)
