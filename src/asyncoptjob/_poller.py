"""``Poller``: the long-lived hub that services embed and share."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload

import anyio

from ._clock import MonotonicClock
from ._errors import JobFailedError, PollerClosedError, WaitTimeoutError
from ._events import Event, JobError, JobStatus, StatusChange
from ._hub import Hub
from ._names import validate_names
from ._options import Options, resolve_options, split_timeout
from ._ratelimit import AdaptiveRateLimiter
from ._stats import PollerStats
from ._subscription import Subscription
from ._transport import open_transport

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from ._events import Description
    from ._fleet import Fleet
    from ._options import PollerOptions
    from ._transport import Transport

__all__ = ["Poller", "Watch"]


def build_hub(transport: Transport, options: Options, fleet: Fleet | None = None) -> Hub:
    """A hub wired with the options' policy, limiter and retry settings (and fleet, if any)."""
    return Hub(
        transport,
        limiter=fleet.budget
        if fleet is not None
        else AdaptiveRateLimiter(max_rate=options.max_rate),
        fleet=fleet,
        policy=options.policy,
        retry=options.retry,
        not_found_grace=options.not_found_grace,
        max_concurrency=options.max_concurrency,
        rng=random.Random(),
        strategy=options.strategy,
        sweep=options.sweep,
    )


async def enter_fleet(stack: AsyncExitStack, options: Options) -> Fleet | None:
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
    )
    stack.push_async_callback(fleet.aclose)
    await fleet.open()
    return fleet


async def enter_transport(stack: AsyncExitStack, options: Options) -> Transport:
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


async def iterate(
    hub: Hub,
    sub: Subscription,
    timeout: float | None,
    wait_for_news: Callable[[], Awaitable[None]],
) -> AsyncIterator[Event]:
    """Yield ``sub``'s events until all its jobs finish or ``timeout`` runs out.

    At the deadline every unfinished job is described once more (the Smithy waiter rule),
    the resulting events are yielded, and then :class:`WaitTimeoutError` is raised.
    No cancel scope is held across a ``yield``.
    """
    clock = hub.clock
    deadline = None if timeout is None else clock.now() + timeout
    last: dict[str, JobStatus | None] = dict.fromkeys(sub.names)
    while True:
        event = sub.get_nowait()
        if event is not None:
            if isinstance(event, StatusChange):
                last[event.job_name] = event.status
            yield event
            continue
        if sub.is_finished():
            return
        remaining = None if deadline is None else deadline - clock.now()
        if remaining is not None and remaining <= 0:
            assert timeout is not None
            # The last look is bounded too: with a low rate budget, waiting for a token
            # per job could push the error far past the caller's deadline.
            with anyio.move_on_after(min(1.0, max(0.25, 0.25 * timeout))):
                await hub.poll_once(list(sub.remaining))
            while (event := sub.get_nowait()) is not None:
                if isinstance(event, StatusChange):
                    last[event.job_name] = event.status
                yield event
            if sub.is_finished():
                return
            raise WaitTimeoutError(
                timeout, {name: last[name] for name in sub.names if name in sub.remaining}
            )
        with anyio.move_on_after(remaining if remaining is not None else float("inf")):
            await wait_for_news()


class Watch:
    """The events of a set of jobs: ``async for event in watch`` or ``async with watch as events``.

    Ends by itself once every job has a terminal outcome (a terminal ``StatusChange``
    or a ``JobError``). Leaving early (``break``, an exception, cancellation) cancels
    and reaps all the work started for it.
    """

    __slots__ = ("_factory", "_gen", "_names")

    def __init__(self, names: list[str], factory: Callable[[], AsyncIterator[Event]]) -> None:
        self._names = names
        self._factory = factory
        self._gen: AsyncIterator[Event] | None = None

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._gen is not None:
            return self._gen
        # The generator does not refer back to this object, so when a bare ``async for``
        # is left, the generator is finalized (and cleans up) as soon as it is released.
        return self._factory()

    async def __aenter__(self) -> AsyncIterator[Event]:
        if self._gen is not None:
            raise RuntimeError("this watch is already open; call watch() again")
        self._gen = self._factory()
        return self._gen

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        gen, self._gen = self._gen, None
        if gen is not None:
            await gen.aclose()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        shown = ", ".join(self._names[:5]) + (", ..." if len(self._names) > 5 else "")
        return f"<Watch of {len(self._names)} job(s): {shown}>"


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
            ``max_concurrency``, ``max_rate``, ``poll_interval``, ``not_found_grace``,
            ``timeout``, ``retry``, ``strategy``, ``sweep``; fleet mode: ``redis_url``,
            ``redis_prefix``, ``redis_lease_ttl``).

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
            transport = await enter_transport(stack, self._options)
            fleet = await enter_fleet(stack, self._options)
            hub = build_hub(transport, self._options, fleet)
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            stack.callback(hub.close, PollerClosedError("the Poller was closed while in use"))
            tg.start_soon(hub.run)
            self._hub = hub
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        return self._hub.statistics()

    def watch(self, names: str | Iterable[str], *, timeout: float | None = None) -> Watch:
        """Status-change events of ``names``, until each has a terminal outcome.

        Args:
            names: one job name or several (validated; duplicates collapse).
            timeout: hard deadline in seconds (default: the Poller's ``timeout``).

        Raises:
            ValueError: invalid names (all listed) or timeout.
            PollerClosedError: the Poller is not open.
        """
        valid = validate_names(names)
        call_timeout = split_timeout(self._raw_options, timeout)
        hub = self._running_hub()

        def factory() -> AsyncIterator[Event]:
            return _subscribed(hub, valid, call_timeout)

        return Watch(valid, factory)

    @overload
    async def wait_until_done(  # type: ignore[overload-overlap]  # str is also Iterable[str]
        self, names: str, *, timeout: float | None = ..., raise_on_failure: bool = ...
    ) -> Description: ...

    @overload
    async def wait_until_done(
        self,
        names: Iterable[str],
        *,
        timeout: float | None = ...,
        raise_on_failure: bool = ...,
    ) -> dict[str, Description]: ...

    async def wait_until_done(
        self,
        names: str | Iterable[str],
        *,
        timeout: float | None = None,
        raise_on_failure: bool = False,
    ) -> Description | dict[str, Description]:
        """Wait until every job is terminal; return the final description(s).

        Args:
            names: one name (returns its description) or several (returns
                ``{name: description}``).
            timeout: hard deadline in seconds; one last describe is made at the deadline.
            raise_on_failure: raise :class:`JobFailedError` if any job ends FAILED or STOPPED.

        Raises:
            WaitTimeoutError: the deadline passed (carries each unfinished job's last status).
            JobNotFoundError: a job was still unknown after the not-found grace period.
            JobFailedError: with ``raise_on_failure``, a job did not complete.
            CredentialsError: credentials or permissions are wrong.
        """
        valid = validate_names(names)
        call_timeout = split_timeout(self._raw_options, timeout)
        hub = self._running_hub()
        results = await collect(_subscribed(hub, valid, call_timeout), raise_on_failure)
        return results[valid[0]] if isinstance(names, str) else results

    def __repr__(self) -> str:
        state = "open" if self._hub is not None and not self._hub.closed else "closed"
        return f"<Poller {state} {self._options!r}>"


async def _subscribed(hub: Hub, names: list[str], timeout: float | None) -> AsyncIterator[Event]:
    if not names:
        return
    sub = hub.subscribe(names)
    try:
        await hub.attach(sub)
        async for event in iterate(hub, sub, timeout, sub.wait):
            yield event
    finally:
        hub.unsubscribe(sub)


async def collect(events: AsyncIterator[Event], raise_on_failure: bool) -> dict[str, Description]:
    """Consume ``events`` to the end and return each job's final description."""
    done: dict[str, Description] = {}
    try:
        async with aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if isinstance(event, JobError):
                    raise event.error
                if event.is_terminal:
                    done[event.job_name] = event.description
    except WaitTimeoutError as exc:
        raise WaitTimeoutError(exc.timeout, exc.pending, done) from None
    if raise_on_failure:
        failed = [
            name
            for name, description in done.items()
            if description["OptimizationJobStatus"] != JobStatus.COMPLETED.value
        ]
        if failed:
            raise JobFailedError(done, failed)
    return done
