"""``Poller``: the lifecycle of a background hub, owned by ``async with``."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, overload

import anyio

from ._clock import MonotonicClock
from ._errors import PollerClosedError
from ._events import Event
from ._hub import Hub
from ._log import get_logger
from ._metrics import register
from ._names import validate_names
from ._options import Options, resolve_options, split_timeout
from ._pipeline import DESCRIBE, LIST
from ._ratelimit import AdaptiveRateLimiter, RateBudget
from ._state import DEFAULT_CONSUMER, consumer_cursors, open_state, remember
from ._stats import PollerHealth, PollerStats
from ._transport import open_transport
from ._watch import Watch, collect, open_subscribed, subscribed

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from ._events import Description
    from ._fleet import Fleet
    from ._options import PollerOptions
    from ._transport import Transport

__all__ = ["Poller", "open_hub"]

log = get_logger()


async def open_hub(stack: AsyncExitStack, options: Options) -> Hub:
    """Open the transport, the fleet (with ``redis_url``) and a running hub on ``stack``.

    The hub polls in a task group on ``stack``: closing the stack fails the hub's open
    subscriptions with :class:`PollerClosedError`, cancels and reaps every task, leaves
    the fleet and closes the connections the library opened.
    """
    transport = await _enter_transport(stack, options)
    fleet = await _enter_fleet(stack, options)
    # Written out and closed after the hub stops (the stack closes in reverse).
    state = await open_state(stack, options, fleet)
    limiter: RateBudget
    if fleet is not None:
        limiter = fleet.budget
    elif options.rate_budget is not None:
        limiter = options.rate_budget
    else:
        limiter = AdaptiveRateLimiter(
            max_rate=options.max_rate, initial_rate=options.initial_rate, clock=options.clock
        )
    hub = Hub(transport, options, limiter=limiter, fleet=fleet, rng=random.Random(), state=state)
    if state is not None:
        # The learned rate is the default limiter's to keep (a fleet's lives in Redis).
        learned = limiter if isinstance(limiter, AdaptiveRateLimiter) else None
        remember(state, hub, learned)
    # Pushed before the task group: the hub's totals are folded in once it has stopped.
    stack.callback(register(hub, options.meter_provider))
    tg = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(tg.cancel_scope.cancel)
    stack.callback(hub.close, PollerClosedError("the Poller was closed while in use"))
    tg.start_soon(_run, hub, hub.run)
    if state is not None:
        tg.start_soon(_run, hub, state.run)
    return hub


async def _run(hub: Hub, run: Callable[[], Awaitable[None]]) -> None:
    try:
        await run()
    except Exception as exc:
        # A bug, not a job's failure (those become JobErrorEvent events): every caller
        # gets the error itself rather than a cancellation, and the hub stays closed.
        error: BaseException = exc
        # The hub's task group wraps the error in an exception group: unwrap a lone one.
        while True:
            inner = getattr(error, "exceptions", None)
            if not (isinstance(inner, tuple) and len(inner) == 1):
                break
            error = inner[0]
        log.error("poller_crashed", error=repr(error))
        hub.close(error)


async def _enter_fleet(stack: AsyncExitStack, options: Options) -> Fleet | None:
    """With ``redis_url``: join the fleet (left, leases given back, when the stack closes)."""
    if options.redis_url is None:
        return None
    from ._fleet import Fleet  # redis-py is imported only in fleet mode

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
    return fleet


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


def statistics(hub: Hub) -> PollerStats:
    """A snapshot of a hub's counters, its rate budget, sweeps and fleet."""
    limiter = hub.limiter.statistics()
    pipeline = hub.pipeline
    sweeps = hub.sweeps
    return PollerStats(
        requests=dict(pipeline.requests[DESCRIBE]),
        retries=pipeline.retries,
        events_emitted=hub.events,
        jobs_watched=hub.jobs_watched,
        jobs_active=len(hub.jobs),
        jobs_finished=hub.jobs_finished,
        subscribers=len(hub.subscriptions),
        in_flight=pipeline.in_flight,
        rate_limit=limiter.rate,
        measured_rate=limiter.measured_rate,
        strategy="sweep" if sweeps is not None and sweeps.sweeping else "describe",
        sweeps=sweeps.sweeper.sweeps if sweeps is not None else 0,
        list_requests=dict(pipeline.requests[LIST]) if sweeps is not None else {},
        sweep_hints=hub.hints,
        fleet=hub.fleet.statistics() if hub.fleet is not None else None,
    )


def health(hub: Hub | None) -> PollerHealth:
    """A hub's health snapshot (``hub`` None: a Poller not opened yet)."""
    if hub is None:
        return PollerHealth(
            alive=False, ready=False, jobs_pending=0, last_success_age=None, consecutive_failures=0
        )
    pipeline = hub.pipeline
    answered_at = pipeline.answered_at
    alive = not hub.closed
    # A full scan, on demand only: nothing is kept up to date on the poll path for it.
    pending = sum(1 for job in list(hub.jobs.values()) if job.status is None)
    return PollerHealth(
        alive=alive,
        ready=alive and pending == 0,
        jobs_pending=pending,
        last_success_age=None if answered_at is None else hub.clock.now() - answered_at,
        consecutive_failures=pipeline.failures_in_a_row,
        fleet_connected=hub.fleet.statistics().connected if hub.fleet is not None else None,
    )


class Poller:
    """A long-lived hub: many callers, one scheduler, one rate budget, one client.

    Every ``watch``/``wait_until_done`` on the same Poller shares its workers and rate
    budget; a job watched by several callers is described once per poll and each
    caller gets its own complete, ordered event sequence (a late caller first gets the
    job's current status). Open it once for the life of a service::

        async with Poller(region_name="us-east-1", max_concurrency=16) as poller:
            async for event in poller.watch(["job-a", "job-b"]):
                print(event)
            description = await poller.wait_until_done("job-a", timeout=3600)

    Args:
        **options: see :class:`~asyncoptjob.PollerOptions` (``client``, ``session``,
            ``region_name``, ``endpoint_url``, ``config``, ``transport``,
            ``clock``, ``max_concurrency``, ``max_rate``, ``poll_interval``,
            ``not_found_grace``, ``timeout``, ``retry``, ``strategy``, ``sweep``,
            ``meter_provider``; fleet mode: ``redis_url``, ``redis_prefix``,
            ``redis_lease_ttl``; durable watches: ``state``).

    Raises:
        ValueError: an option value is out of range (the message names it).
        TypeError: an unknown option.
    """

    def __init__(self, **options: Unpack[PollerOptions]) -> None:
        self._raw_options: dict[str, Any] = dict(options)
        self._options = resolve_options(self._raw_options)
        self._hub: Hub | None = None
        self._stack: AsyncExitStack | None = None
        self._entered = False

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a Poller can be entered only once; create a new one")
        self._entered = True
        async with AsyncExitStack() as stack:
            self._hub = await open_hub(stack, self._options)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            # The caller's exception is not fed to the task group: it would come back
            # wrapped in an ExceptionGroup. It propagates unchanged once this returns.
            await stack.aclose()

    def _running_hub(self) -> Hub:
        hub = self._hub
        if hub is None or hub.closed:
            raise PollerClosedError(
                "the Poller is not open: use `async with Poller(...) as poller:`"
            )
        return hub

    @property
    def stats(self) -> PollerStats:
        """A snapshot of requests, retries, events, jobs and the current rate limit."""
        if self._hub is None:
            raise PollerClosedError("the Poller has not been opened yet")
        return statistics(self._hub)

    def health(self) -> PollerHealth:
        """Whether the Poller is alive and ready, and how its calls fare; never raises.

        Meant for liveness and readiness probes (see ``examples/service.py``)::

            health = poller.health()
            status = 200 if health.ready else 503
        """
        return health(self._hub)

    def watch(
        self,
        names: str | Iterable[str],
        *,
        timeout: float | None = None,
        consumer: str | None = None,
    ) -> Watch:
        """Status-change events of ``names``, until each has a terminal outcome.

        Args:
            names: one job name or several (validated; duplicates collapse).
            timeout: hard deadline in seconds (default: the Poller's ``timeout``).
            consumer: with ``state=`` (or ``redis_url=``), whose cursors to start from
                and commit to (default ``"default"``): see *Durable watches* in the README.

        Example::

            async with poller.watch(["job-a", "job-b"], timeout=3600) as events:
                async for event in events:
                    await notify(event)  # polling goes on meanwhile

        Raises:
            ValueError: invalid names (all listed) or timeout.
            PollerClosedError: the Poller is not open.
        """
        valid = validate_names(names)
        call_timeout = split_timeout(self._raw_options, timeout)
        cursors = consumer_cursors(self._options, consumer)
        hub = self._running_hub()

        def events() -> AsyncIterator[Event]:
            return subscribed(hub, valid, call_timeout, cursors=cursors)

        async def enter(stack: AsyncExitStack) -> AsyncIterator[Event]:
            return await open_subscribed(stack, hub, valid, call_timeout, cursors)

        return Watch(valid, events, enter, cursors)

    async def unfinished(self, *, consumer: str | None = None) -> list[str]:
        """The jobs ``consumer`` watched and has not yet seen finish: what to resume.

        A job counts from the moment a watch of ``consumer`` attached it until that
        consumer commits its terminal status. Watch them again to carry on::

            async with Poller(state="watch.db") as poller:
                names = await poller.unfinished(consumer="deployer")
                async for event in poller.watch(names, consumer="deployer"):
                    await deploy(event)

        Returns:
            The job names, sorted (empty for a consumer never seen).

        Raises:
            ValueError: the Poller keeps no state (no ``state=`` or ``redis_url=``).
        """
        cursors = consumer_cursors(self._options, consumer or DEFAULT_CONSUMER)
        hub = self._running_hub()
        if cursors is None or hub.state is None:
            raise ValueError(
                "unfinished() needs state='watch.db' (a SQLite file) or redis_url= (fleet mode)"
            )
        return await hub.state.unfinished(cursors.consumer)

    @overload
    async def wait_until_done(  # type: ignore[overload-overlap]  # str is also Iterable[str]
        self,
        names: str,
        *,
        timeout: float | None = ...,
        raise_on_failure: bool = ...,
        consumer: str | None = ...,
    ) -> Description: ...

    @overload
    async def wait_until_done(
        self,
        names: Iterable[str],
        *,
        timeout: float | None = ...,
        raise_on_failure: bool = ...,
        consumer: str | None = ...,
    ) -> dict[str, Description]: ...

    async def wait_until_done(
        self,
        names: str | Iterable[str],
        *,
        timeout: float | None = None,
        raise_on_failure: bool = False,
        consumer: str | None = None,
    ) -> Description | dict[str, Description]:
        """Wait until every job is terminal; return the final description(s).

        With ``state=``, a job whose terminal status ``consumer`` already committed is
        answered from the state file, without a describe.

        Args:
            names: one name (returns its description) or several (returns
                ``{name: description}``).
            timeout: hard deadline in seconds; one last describe is made at the deadline.
            raise_on_failure: raise :class:`JobFailedError` if any job ends FAILED or STOPPED.
            consumer: with ``state=`` (or ``redis_url=``), whose cursors to use
                (default ``"default"``).

        Raises:
            WaitTimeoutError: the deadline passed (carries each unfinished job's last status).
            JobNotFoundError: a job was still unknown after the not-found grace period.
            JobFailedError: with ``raise_on_failure``, a job did not complete.
            CredentialsError: credentials or permissions are wrong.
        """
        valid = validate_names(names)
        call_timeout = split_timeout(self._raw_options, timeout)
        cursors = consumer_cursors(self._options, consumer)
        hub = self._running_hub()
        events = subscribed(hub, valid, call_timeout, cursors=cursors)
        settled = cursors.settled if cursors is not None else None
        results = await collect(events, raise_on_failure, settled)
        return results[valid[0]] if isinstance(names, str) else results

    def __repr__(self) -> str:
        state = "open" if self._hub is not None and not self._hub.closed else "closed"
        return f"<Poller {state} {self._options!r}>"
