"""Module-level ``watch`` and ``wait_until_done``: a private Poller for one call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, aclosing
from typing import TYPE_CHECKING, Any, overload

import anyio

from ._events import Event
from ._names import Unchecked, check_names, checked
from ._options import Options, resolve_options
from ._poller import Poller
from ._state import consumer_cursors
from ._watch import Watch, open_subscribed, subscribed
from ._wiring import Opened, open_hub

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._events import Description
    from ._options import PollerOptions
    from ._state import ConsumerCursors

__all__ = ["wait_until_done", "watch"]


def watch(
    names: str | Iterable[str], *, consumer: str | None = None, **options: Unpack[PollerOptions]
) -> Watch:
    """Status-change events of ``names`` until every job has a terminal outcome.

    Works as an async iterator or an async context manager::

        async for event in watch(["job-a", "job-b"], region_name="us-east-1"):
            print(event.job_name, event.previous_status, "->", event.status)

        async with watch(names, timeout=3600) as events:
            async for event in events:
                await record(event)

    It runs the same background hub as a :class:`Poller` (a private one, opened for
    this call): polling keeps its policy's pace however long the loop body takes, and
    events wait in a buffer (bounded by the jobs watched; nothing is dropped).

    Leaving early (``break``, an exception in the body, cancellation) cancels and
    reaps every task and closes every connection: with ``async with`` when the block
    exits; with a bare ``async for`` as soon as the iterator is released (the event
    loop's next iteration). For one hub shared by many callers, use :class:`Poller`.

    Durable (``state=``): a restart loses no event and repeats none that was committed::

        async for event in watch(names, state="watch.db", consumer="deployer"):
            await deploy(event)  # committed when the loop asks for the next event

    Args:
        names: one job name or several (validated before any request; duplicates collapse).
        consumer: with ``state=`` (or ``redis_url=``), whose cursors to start from and
            commit to (default ``"default"``): see *Durable watches* in the README.
        **options: see :class:`~asyncoptjob.PollerOptions`.

    Raises:
        ValueError: invalid names (every offender listed) or option values. Beyond 2,000
            names, those past the first 2,000 (all valid) are checked when the watch
            starts, in slices, before any request (see :meth:`Poller.watch`).
        WaitTimeoutError: (while iterating) ``timeout`` ran out.
        CredentialsError: (while iterating) credentials or permissions are wrong.
    """
    valid = check_names(names)
    resolved = resolve_options(dict(options))
    cursors = consumer_cursors(resolved, consumer)

    def events() -> AsyncIterator[Event]:
        return _in_background(valid, resolved, cursors)

    async def enter(stack: AsyncExitStack) -> AsyncIterator[Event]:
        opened = await open_hub(stack, resolved)
        if cursors is not None:
            cursors.use(opened.state)
        return await open_subscribed(stack, opened.hub, valid, resolved.timeout, cursors)

    return Watch(valid.given if isinstance(valid, Unchecked) else valid, events, enter, cursors)


async def _in_background(
    unchecked: list[str] | Unchecked, options: Options, cursors: ConsumerCursors | None
) -> AsyncIterator[Event]:
    """A bare ``async for`` over ``watch()``: the hub runs in a task this generator owns.

    No cancel scope may be held across a ``yield`` (the loop body would run inside
    it), so the hub cannot live in a task group here. It runs in a task of its own
    instead, which this generator's ``finally`` stops and awaits: on exhaustion, on
    an error or cancellation, or when the abandoned generator is finalized.
    """
    names = await checked(unchecked)
    if not names:
        return
    host = _HubTask(options)
    try:
        opened = await host.start()
        if cursors is not None:
            cursors.use(opened.state)
        events = subscribed(opened.hub, names, options.timeout, cursors=cursors)
        async with aclosing(events):  # type: ignore[type-var]
            async for event in events:
                yield event
    finally:
        with anyio.CancelScope(shield=True):
            await host.stop()


class _HubTask:
    """A hub opened and run in an asyncio task of its own, until :meth:`stop`."""

    __slots__ = ("_error", "_opened", "_options", "_running", "_stop", "_task")

    def __init__(self, options: Options) -> None:
        self._options = options
        self._task: asyncio.Task[None] | None = None
        self._opened = anyio.Event()
        self._stop = anyio.Event()
        self._running: Opened | None = None
        self._error: BaseException | None = None

    async def start(self) -> Opened:
        """Start the task; return the running hub, or raise what opening it raised."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="asyncoptjob-watch")
        await self._opened.wait()
        if self._running is None:
            assert self._error is not None
            raise self._error
        return self._running

    async def _run(self) -> None:
        try:
            async with AsyncExitStack() as stack:
                self._running = await open_hub(stack, self._options)
                self._opened.set()
                await self._stop.wait()
        except Exception as exc:
            self._error = exc
        finally:
            self._opened.set()

    async def stop(self) -> None:
        """Close the hub (its subscriptions, tasks and connections) and reap the task."""
        task = self._task
        if task is None:
            return
        if self._opened.is_set():
            self._stop.set()
        else:
            # Still opening (the caller gave up meanwhile): abandon the opening.
            task.cancel()
        await asyncio.wait({task})


@overload
async def wait_until_done(  # type: ignore[overload-overlap]  # str is also Iterable[str]
    names: str,
    *,
    raise_on_failure: bool = ...,
    consumer: str | None = ...,
    **options: Unpack[PollerOptions],
) -> Description: ...


@overload
async def wait_until_done(
    names: Iterable[str],
    *,
    raise_on_failure: bool = ...,
    consumer: str | None = ...,
    **options: Unpack[PollerOptions],
) -> dict[str, Description]: ...


async def wait_until_done(
    names: str | Iterable[str],
    *,
    raise_on_failure: bool = False,
    consumer: str | None = None,
    **options: Unpack[PollerOptions],
) -> Description | dict[str, Description]:
    """Wait until every job is terminal and return the final description(s).

    Example::

        description = await wait_until_done("job-a", timeout=3600)
        descriptions = await wait_until_done(["job-a", "job-b"], timeout=3600)

    Args:
        names: one name (returns its description) or several (returns ``{name: description}``).
        raise_on_failure: raise :class:`JobFailedError` if a job ends FAILED or STOPPED.
        consumer: with ``state=`` (or ``redis_url=``), whose cursors to use (default
            ``"default"``); a job whose terminal status it committed is answered from
            the state, without a describe.
        **options: see :class:`~asyncoptjob.PollerOptions`; ``timeout`` is a hard deadline
            with one last describe at the deadline.

    Raises:
        ValueError: invalid names or option values.
        WaitTimeoutError: the deadline passed.
        JobNotFoundError: a job was unknown after the not-found grace period.
        JobFailedError: with ``raise_on_failure``, a job did not complete.
        CredentialsError: credentials or permissions are wrong.
    """
    valid = await checked(check_names(names))
    raw: dict[str, Any] = dict(options)
    consumer_cursors(resolve_options(raw), consumer)
    if not valid:
        return {}
    async with Poller(**options) as poller:
        if isinstance(names, str):
            return await poller.wait_until_done(
                valid[0], raise_on_failure=raise_on_failure, consumer=consumer
            )
        return await poller.wait_until_done(
            valid, raise_on_failure=raise_on_failure, consumer=consumer
        )
