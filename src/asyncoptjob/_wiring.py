"""Opening a hub: the transport, the coordination, the state, the hub and its helpers, wired.

The hub builds none of its collaborators; :func:`open_hub` does, once, and puts every
one of them on the caller's exit stack so that closing the stack closes them in the
right order: the hub's subscriptions fail with :class:`PollerClosedError`, its tasks
are cancelled and reaped, the state's last batch is written, the fleet is left and the
connections the library opened are closed. :func:`statistics` and :func:`health` read
a running hub's :class:`~._stats.Statistics` for ``poller.stats`` and ``poller.health()``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ._breath import loop_breather
from ._client import import_off_loop
from ._clock import MonotonicClock
from ._coordination import Coordination, Solo
from ._errors import PollerClosedError
from ._hub import Hub, forget_jobs
from ._log import get_logger
from ._metrics import register
from ._operations import DESCRIBE, LIST
from ._pacing import Pacer
from ._pipeline import Pipeline
from ._ratelimit import AdaptiveRateLimiter, RateBudget
from ._scheduler import DueQueue
from ._state import open_state, remember
from ._stats import PollerHealth, PollerStats, Statistics
from ._sweep import SWEEP_INTERVAL_FACTOR, SweepDriver, Sweeper
from ._transport import open_transport
from ._workers import Fetcher, Workers

if TYPE_CHECKING:
    from ._options import Options
    from ._state import BatchedStore
    from ._transport import Transport

__all__ = ["Opened", "health", "open_hub", "statistics"]

log = get_logger()


@dataclass(frozen=True, slots=True)
class Opened:
    """A running hub and what was opened with it.

    Attributes:
        hub: the job table.
        stats: the counters it and its pipeline keep.
        coordination: who polls which job (this process alone, or a fleet).
        limiter: the describe rate budget.
        sweeps: the sweep driver (None with ``strategy="describe"``).
        state: durable consumers' cursors (None: nothing is remembered).
    """

    hub: Hub
    stats: Statistics
    coordination: Coordination
    limiter: RateBudget
    sweeps: SweepDriver | None
    state: BatchedStore | None


async def open_hub(
    stack: AsyncExitStack, options: Options, *, coordination: Coordination | None = None
) -> Opened:
    """Open everything a hub needs on ``stack`` and start it polling there.

    Args:
        coordination: who polls which job; None opens the options' (this process
            alone, or a fleet with ``redis_url``). Unit tests pass their own.
    """
    await import_off_loop()
    stack.callback(loop_breather().hold(options.loop_burst))
    transport = await _enter_transport(stack, options)
    fleet_cursors = None
    if coordination is None:
        coordination, fleet_cursors = await _enter_coordination(stack, options)
    # Written out and closed after the hub stops (the stack closes in reverse).
    state = await open_state(stack, options, fleet_cursors)
    stats = Statistics()
    pipeline = Pipeline(
        clock=options.clock,
        retry=options.retry,
        stats=stats,
        first_answer_timeout=options.first_answer_timeout,
    )
    sweeps = None
    if options.strategy != "describe":
        sweeper = Sweeper(
            transport,
            options.sweep,
            pipeline,
            interval=options.policy.interval * SWEEP_INTERVAL_FACTOR,
            limiter=coordination.list_budget,
        )
        sweeps = SweepDriver(sweeper, options.strategy, lease=coordination)
    workers: Workers[str] = Workers(DueQueue(), options.clock, count=options.max_concurrency)
    hub = Hub(
        options,
        fetcher=Fetcher(transport, pipeline, coordination.budget),
        pacer=Pacer(workers, options.policy, options.clock, sweeps=sweeps, rng=random.Random()),
        coordination=coordination,
        stats=stats,
    )
    if state is not None:
        # The learned rate is the default limiter's to keep (a fleet's lives in Redis).
        budget = coordination.budget
        learned = budget if isinstance(budget, AdaptiveRateLimiter) else None
        remember(state, learned, sweeps.sweeper if sweeps is not None else None)
    # Pushed before the task group: the hub's totals are folded in once it has stopped.
    stack.callback(register(stats, _rates(coordination, sweeps), options.meter_provider))
    # Once its tasks have stopped, the closed hub forgets its jobs (before the fleet leaves).
    stack.push_async_callback(forget_jobs, hub)
    tg = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(tg.cancel_scope.cancel)
    stack.callback(hub.close, PollerClosedError("the Poller was closed while in use"))

    def keep(name: str) -> bool:
        # Another process polls it; the coordination re-queues it if that changes.
        return coordination.owns(name)

    tg.start_soon(_run, hub, lambda: workers.run(hub.poll, keep))
    tg.start_soon(_run, hub, lambda: coordination.run(hub))
    tg.start_soon(_run, hub, hub.departures.run)
    if sweeps is not None:
        tg.start_soon(_run, hub, lambda: sweeps.run(hub))
    if state is not None:
        tg.start_soon(_run, hub, state.run)
    return Opened(hub, stats, coordination, coordination.budget, sweeps, state)


def _rates(
    coordination: Coordination, sweeps: SweepDriver | None
) -> Callable[[], dict[str, float | None]]:
    """The rate budgets' current rates by operation, for the metrics."""

    def rates() -> dict[str, float | None]:
        found = {DESCRIBE: coordination.budget.rate}
        if sweeps is not None:
            found[LIST] = coordination.list_budget.rate
        return found

    return rates


async def _run(hub: Hub, run: Callable[[], Awaitable[None]]) -> None:
    try:
        await run()
    except Exception as exc:
        # A bug, not a job's failure (those become error events): every caller gets
        # the error itself rather than a cancellation, and the hub stays closed.
        error: BaseException = exc
        # The hub's task group wraps the error in an exception group: unwrap a lone one.
        while True:
            inner = getattr(error, "exceptions", None)
            if not (isinstance(inner, tuple) and len(inner) == 1):
                break
            error = inner[0]
        log.error("poller_crashed", error=repr(error))
        hub.close(error)


async def _enter_coordination(
    stack: AsyncExitStack, options: Options
) -> tuple[Coordination, BatchedStore | None]:
    """This process alone, or (with ``redis_url``) a fleet, left when the stack closes;
    and, for a fleet, its store of durable consumers' cursors."""
    if options.redis_url is None:
        budget: RateBudget = options.rate_budget or AdaptiveRateLimiter(
            max_rate=options.max_rate, initial_rate=options.initial_rate, clock=options.clock
        )
        # Sweeps do not slow-start: a List call is one per sweep interval.
        list_budget = AdaptiveRateLimiter(max_rate=options.sweep.max_rate, clock=options.clock)
        return Solo(budget, list_budget), None
    # redis-py is imported only in fleet mode, in a worker thread (100-odd ms of it).
    await import_off_loop(f"{__package__}._fleet", "redis.asyncio", "redis.exceptions")
    from ._fleet import Fleet

    fleet = Fleet(
        options.redis_url,
        prefix=options.redis_prefix,
        max_rate=options.max_rate,
        lease_ttl=options.redis_lease_ttl,
        clock=MonotonicClock(),
        list_max_rate=options.sweep.max_rate,
        initial_rate=options.initial_rate,
    )
    stack.push_async_callback(fleet.aclose)
    await fleet.open()
    return fleet, fleet.cursors


async def _enter_transport(stack: AsyncExitStack, options: Options) -> Transport:
    """The options' transport, or one opened on ``stack`` (closed when the stack closes)."""
    if options.transport is not None:
        transport: Transport = options.transport
        return transport
    return await stack.enter_async_context(
        open_transport(
            client=options.client,
            session=options.session,
            region_name=options.region_name,
            endpoint_url=options.endpoint_url,
            config=options.config,
            max_concurrency=options.max_concurrency,
        )
    )


def statistics(opened: Opened) -> PollerStats:
    """A snapshot of a hub's counters, its rate budget, sweeps and fleet."""
    stats = opened.stats
    limiter = opened.limiter.statistics()
    sweeps = opened.sweeps
    return PollerStats(
        requests=dict(stats.requests[DESCRIBE]),
        retries=stats.retries,
        events_emitted=stats.events,
        jobs_watched=stats.jobs_watched,
        jobs_active=stats.jobs_active,
        jobs_finished=stats.jobs_finished,
        subscribers=stats.subscribers,
        in_flight=stats.in_flight,
        rate_limit=limiter.rate,
        measured_rate=limiter.measured_rate,
        strategy="sweep" if sweeps is not None and sweeps.sweeping else "describe",
        sweeps=sweeps.sweeper.sweeps if sweeps is not None else 0,
        list_requests=dict(stats.requests[LIST]) if sweeps is not None else {},
        sweep_hints=stats.hints,
        fleet=opened.coordination.statistics(),
        relist_pages=sweeps.relister.pages if sweeps is not None else 0,
    )


def health(opened: Opened | None, now: float) -> PollerHealth:
    """A hub's health snapshot at clock time ``now`` (None: a Poller not opened yet)."""
    if opened is None:
        return PollerHealth(
            alive=False, ready=False, jobs_pending=0, last_success_age=None, consecutive_failures=0
        )
    stats = opened.stats
    answered_at = stats.answered_at
    alive = not stats.closed
    fleet = opened.coordination.statistics()
    return PollerHealth(
        alive=alive,
        ready=alive and stats.jobs_pending == 0,
        jobs_pending=stats.jobs_pending,
        last_success_age=None if answered_at is None else now - answered_at,
        consecutive_failures=stats.failures_in_a_row,
        fleet_connected=fleet.connected if fleet is not None else None,
    )
