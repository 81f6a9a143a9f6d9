"""Watching: the one implementation behind ``watch()``, ``Poller.watch`` and both waits.

Every caller is a :class:`~asyncoptjob._subscription.Subscription` on a hub that polls
in the background (a Poller's, or a private one): the caller's pace never pauses
polling, and its events wait in the subscription's buffer, bounded by its own jobs.
:func:`subscribed` turns a subscription into an async iterator of events, with the
deadline rule of the Smithy waiters; :func:`collect` turns that into final descriptions.
:class:`Watch` is what users hold: ``async for`` over it, or ``async with`` it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, aclosing
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ._breath import in_slices, loop_breather
from ._clock import wait_with_timeout
from ._errors import JobFailedError, WaitTimeoutError
from ._events import KNOWN_STATUSES, Event, JobErrorEvent, JobStatus, StatusChange
from ._names import checked

if TYPE_CHECKING:
    from ._events import Description
    from ._hub import Hub
    from ._names import Unchecked
    from ._state import ConsumerCursors
    from ._subscription import Subscription

__all__ = ["Watch", "attached", "collect", "open_subscribed", "subscribed"]

#: A durable consumer's events between two checkpoints at most.
CHECKPOINT_EVERY = 64


def subscribed(
    hub: Hub,
    names: list[str] | Unchecked,
    timeout: float | None,
    sub: Subscription | None = None,
    cursors: ConsumerCursors | None = None,
) -> AsyncIterator[Event]:
    """Yield the events of ``names`` until each job has a terminal outcome.

    At ``timeout`` (counted from the subscription) every unfinished job is described
    once more (the Smithy waiter rule), the resulting events are yielded, and then
    :class:`WaitTimeoutError` is raised. ``sub``, if given, is an already attached
    subscription (:func:`attached`); otherwise the generator subscribes when it starts.
    The subscription is dropped when the generator ends or is closed. No cancel scope
    is held across a ``yield``.

    With ``cursors`` (a durable consumer) the events start from the consumer's cursors,
    and each event is committed when the consumer asks for the next one or the events
    end; an event handed out when the generator is closed early is not committed.
    """
    events = _subscribed(hub, names, timeout, sub, cursors)
    return events if cursors is None else _committing(events, cursors)


async def _committing(
    events: AsyncIterator[Event], cursors: ConsumerCursors
) -> AsyncIterator[Event]:
    handed = 0
    async with aclosing(events):  # type: ignore[type-var]
        async for event in events:
            await cursors.hold(event)
            yield event
            # The consumer asks for the next event: it handled this one.
            cursors.commit()
            handed += 1
            if handed % CHECKPOINT_EVERY == 0:
                # Events pile up while a commit is awaited; a consumer that handles them
                # without awaiting must still let the loop (and the writer) run.
                await anyio.lowlevel.checkpoint()


async def _subscribed(
    hub: Hub,
    names: list[str] | Unchecked,
    timeout: float | None,
    sub: Subscription | None,
    cursors: ConsumerCursors | None,
) -> AsyncIterator[Event]:
    try:
        if sub is None:
            valid = await checked(names)
            if not valid:
                return
            sub = await attached(hub, valid, cursors)
            del valid
        # The subscription holds the jobs from here: the names are not kept twice.
        del names
        clock = hub.clock
        deadline = None if timeout is None else sub.opened_at + timeout
        # Each job's last status seen here, filled as events pass (the committed one before);
        # its values are the statuses' strings, so that the garbage collector never walks it.
        last: dict[str, str] = {}
        # Buffered events go out back to back, the consumer's work on each included, within
        # the loop's bursts of BURST seconds (the describes' steps share them); then the
        # loop runs what else is due (the host's timers first) before the next one.
        breather = loop_breather()
        looked = False  # the last look at the deadline was made: what it found goes out
        while True:
            event = sub.get_nowait()
            if event is not None:
                if isinstance(event, StatusChange):
                    last[event.job_name] = event.status.value
                yield event
                await breather.turn()
                continue
            if sub.is_finished():
                return
            if looked:
                assert timeout is not None
                raise WaitTimeoutError(timeout, await _unfinished(sub, last))
            remaining = None if deadline is None else deadline - clock.now()
            if remaining is not None and remaining <= 0:
                assert timeout is not None
                # The last look is bounded too: with a low rate budget, waiting for a
                # token per job could push the error far past the caller's deadline.
                with anyio.move_on_after(min(1.0, max(0.25, 0.25 * timeout))):
                    # 100,000 unfinished jobs: the loop runs between slices of the last look.
                    async for part in in_slices(list(sub.remaining), LIST_SLICE):
                        await hub.poll_once(part)
                looked = True
                continue
            await wait_with_timeout(clock, sub.wait, remaining)
    finally:
        if sub is not None:
            hub.unsubscribe(sub)


#: Jobs looked at between two checkpoints when a timeout lists the unfinished ones.
LIST_SLICE = 5_000


async def _unfinished(sub: Subscription, last: Mapping[str, str]) -> dict[str, JobStatus | None]:
    """Each unfinished job of ``sub`` and its last status seen, in order, in slices."""
    since, remaining, names = sub.since, sub.remaining, sub.names
    pending: dict[str, JobStatus | None] = {}
    async for part in in_slices(names, LIST_SLICE):
        for name in part:
            if name in remaining:
                seen = last.get(name)
                if seen is None:
                    pending[name] = since.get(name)
                else:
                    pending[name] = KNOWN_STATUSES.get(seen) or JobStatus(seen)
    return pending


async def attached(
    hub: Hub, names: list[str], cursors: ConsumerCursors | None = None
) -> Subscription:
    """A subscription to ``names``, attached: its jobs are being polled when this returns.

    With ``cursors``, jobs the consumer saw finish are left out (``cursors.settled``) and
    the others start from the status it committed.
    """
    since: dict[str, JobStatus] = {}
    if cursors is not None:
        names, since = await cursors.start(names)
    sub = hub.subscribe(names)
    sub.since = since
    try:
        await hub.attach(sub)
    except BaseException:
        hub.unsubscribe(sub)
        raise
    return sub


async def open_subscribed(
    stack: AsyncExitStack,
    hub: Hub,
    names: list[str] | Unchecked,
    timeout: float | None,
    cursors: ConsumerCursors | None = None,
) -> AsyncIterator[Event]:
    """:func:`subscribed` for ``async with``: polling starts now, the stack unsubscribes."""
    valid = await checked(names)
    sub = await attached(hub, valid, cursors)
    stack.callback(hub.unsubscribe, sub)
    # ``sub`` holds the jobs: the events need no list of their names (``[]``, not ``valid``).
    return subscribed(hub, [], timeout, sub, cursors)


async def collect(
    events: AsyncIterator[Event],
    raise_on_failure: bool,
    settled: Mapping[str, Description] | None = None,
) -> dict[str, Description]:
    """Consume ``events`` to the end and return each job's final description.

    ``settled``: final descriptions known without watching (a durable consumer's jobs
    that it saw finish before), read once ``events`` are exhausted.
    """
    done: dict[str, Description] = {}
    try:
        async with aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if isinstance(event, JobErrorEvent):
                    raise event.error
                if event.is_terminal:
                    done[event.job_name] = event.description
    except WaitTimeoutError as exc:
        raise WaitTimeoutError(exc.timeout, exc.pending, {**(settled or {}), **done}) from None
    done = {**(settled or {}), **done}
    if raise_on_failure:
        failed = [
            name
            for name, description in done.items()
            if description["OptimizationJobStatus"] != JobStatus.COMPLETED.value
        ]
        if failed:
            raise JobFailedError(done, failed)
    return done


#: Opens the events for ``async with``: background work goes on the stack, closed on exit.
Enter = Callable[[AsyncExitStack], Awaitable[AsyncIterator[Event]]]


class Watch:
    """The events of a set of jobs: ``async for event in watch`` or ``async with watch as events``.

    Ends by itself once every job has a terminal outcome (a terminal ``StatusChange``
    or a ``JobErrorEvent``). Polling goes on in the background whatever the loop body does;
    events wait in a buffer bounded by the jobs watched, and none is dropped.

    Leaving early (``break``, an exception in the loop body, cancellation, ``aclose()``)
    cancels and reaps every task started for this watch and closes its connections:

    * with ``async with``, when the block exits;
    * with a bare ``async for``, as soon as the iterator is released: Python finalizes
      an abandoned async generator on the event loop's next iteration. Prefer
      ``async with`` where the exact moment matters.

    A durable consumer (``consumer=`` with ``state=`` or ``redis_url=``) commits each
    event when it asks for the next one and when the events end; a clean exit from
    ``async with`` commits the last event, an exit by exception does not, and neither
    does a bare ``async for`` left by ``break`` (that event comes again after a restart).
    """

    __slots__ = ("_cursors", "_enter", "_events", "_gen", "_names", "_stack")

    def __init__(
        self,
        names: Sequence[object],
        events: Callable[[], AsyncIterator[Event]],
        enter: Enter | None = None,
        cursors: ConsumerCursors | None = None,
    ) -> None:
        self._names = names
        self._cursors = cursors
        self._events = events
        self._enter = enter
        self._gen: AsyncIterator[Event] | None = None
        self._stack: AsyncExitStack | None = None

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._gen is not None:
            return self._gen
        # The generator does not refer back to this object, so when a bare ``async for``
        # is left, the generator is finalized (and cleans up) as soon as it is released.
        return self._events()

    async def __aenter__(self) -> AsyncIterator[Event]:
        if self._stack is not None:
            raise RuntimeError("this watch is already open; call watch() again")
        async with AsyncExitStack() as stack:
            gen = await self._enter(stack) if self._enter is not None else self._events()
            stack.push_async_callback(gen.aclose)  # type: ignore[attr-defined]
            self._stack = stack.pop_all()
        self._gen = gen
        return gen

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._gen = self._stack, None, None
        if exc_type is None and self._cursors is not None:
            # A clean exit: the consumer handled the last event it was given.
            self._cursors.commit()
        if stack is not None:
            await stack.aclose()

    def __repr__(self) -> str:
        shown = ", ".join(map(str, self._names[:5])) + (", ..." if len(self._names) > 5 else "")
        return f"<Watch of {len(self._names)} job(s): {shown}>"
