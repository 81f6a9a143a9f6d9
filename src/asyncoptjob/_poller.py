"""``Poller``: the lifecycle of a background hub, owned by ``async with``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, overload

from ._errors import PollerClosedError
from ._events import Event
from ._names import Unchecked, check_names, checked
from ._options import resolve_options, split_timeout
from ._state import DEFAULT_CONSUMER, consumer_cursors
from ._stats import PollerHealth, PollerStats
from ._watch import Watch, collect, open_subscribed, subscribed
from ._wiring import Opened, health, open_hub, statistics

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from ._events import Description
    from ._options import PollerOptions

__all__ = ["Poller"]


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
        self._opened: Opened | None = None
        self._stack: AsyncExitStack | None = None
        self._entered = False

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a Poller can be entered only once; create a new one")
        self._entered = True
        async with AsyncExitStack() as stack:
            self._opened = await open_hub(stack, self._options)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            # The caller's exception is not fed to the task group: it would come back
            # wrapped in an ExceptionGroup. It propagates unchanged once this returns.
            await stack.aclose()

    def _running(self) -> Opened:
        opened = self._opened
        if opened is None or opened.stats.closed:
            raise PollerClosedError(
                "the Poller is not open: use `async with Poller(...) as poller:`"
            )
        return opened

    @property
    def stats(self) -> PollerStats:
        """A snapshot of requests, retries, events, jobs and the current rate limit."""
        if self._opened is None:
            raise PollerClosedError("the Poller has not been opened yet")
        return statistics(self._opened)

    def health(self) -> PollerHealth:
        """Whether the Poller is alive and ready, and how its calls fare; never raises.

        Meant for liveness and readiness probes (see ``examples/service.py``)::

            health = poller.health()
            status = 200 if health.ready else 503
        """
        return health(self._opened, self._options.clock.now())

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
            ValueError: invalid names (all listed) or timeout. Beyond 2,000 names, the
                names past the first 2,000 (all valid) are checked when the watch starts
                (``async with`` or the first ``async for`` step), in slices that let the
                event loop run, still before any request.
            PollerClosedError: the Poller is not open.
        """
        valid = check_names(names)
        call_timeout = split_timeout(self._raw_options, timeout)
        cursors = consumer_cursors(self._options, consumer)
        opened = self._running()
        hub = opened.hub
        if cursors is not None:
            cursors.use(opened.state)

        def events() -> AsyncIterator[Event]:
            return subscribed(hub, valid, call_timeout, cursors=cursors)

        async def enter(stack: AsyncExitStack) -> AsyncIterator[Event]:
            return await open_subscribed(stack, hub, valid, call_timeout, cursors)

        return Watch(valid.given if isinstance(valid, Unchecked) else valid, events, enter, cursors)

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
        state = self._running().state
        if cursors is None or state is None:
            raise ValueError(
                "unfinished() needs state='watch.db' (a SQLite file) or redis_url= (fleet mode)"
            )
        return await state.unfinished(cursors.consumer)

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
        valid = await checked(check_names(names))
        call_timeout = split_timeout(self._raw_options, timeout)
        cursors = consumer_cursors(self._options, consumer)
        opened = self._running()
        if cursors is not None:
            cursors.use(opened.state)
        events = subscribed(opened.hub, valid, call_timeout, cursors=cursors)
        settled = cursors.settled if cursors is not None else None
        results = await collect(events, raise_on_failure, settled)
        return results[valid[0]] if isinstance(names, str) else results

    def __repr__(self) -> str:
        state = "open" if self._opened is not None and not self._opened.stats.closed else "closed"
        return f"<Poller {state} {self._options!r}>"
