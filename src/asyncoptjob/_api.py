"""Module-level ``watch`` and ``wait_until_done``: open what they need, then delegate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, overload

from ._events import Event
from ._names import validate_names
from ._options import Options, resolve_options
from ._poller import Poller, Watch, build_hub, enter_fleet, enter_transport, iterate

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._events import Description
    from ._options import PollerOptions

__all__ = ["wait_until_done", "watch"]


def watch(names: str | Iterable[str], **options: Unpack[PollerOptions]) -> Watch:
    """Status-change events of ``names`` until every job has a terminal outcome.

    Works as an async iterator or an async context manager::

        async for event in watch(["job-a", "job-b"], region_name="us-east-1"):
            print(event.job_name, event.previous_status, "->", event.status)

        async with watch(names, timeout=3600) as events:
            async for event in events:
                ...

    Polling runs only while the loop waits for the next event (a slow consumer slows
    polling; nothing is dropped), so no background task outlives the loop, even when
    it is left with ``break``. For continuous polling shared by many callers, use
    :class:`Poller`.

    Args:
        names: one job name or several (validated before any request; duplicates collapse).
        **options: see :class:`~asyncoptjob.PollerOptions`.

    Raises:
        ValueError: invalid names (every offender listed) or option values.
        WaitTimeoutError: (while iterating) ``timeout`` ran out.
        CredentialsError: (while iterating) credentials or permissions are wrong.
    """
    valid = validate_names(names)
    resolved = resolve_options(dict(options))

    def factory() -> AsyncIterator[Event]:
        return _inline(valid, resolved)

    return Watch(valid, factory)


async def _inline(names: list[str], options: Options) -> AsyncIterator[Event]:
    if not names:
        return
    async with AsyncExitStack() as stack:
        transport = await enter_transport(stack, options)
        hub = build_hub(transport, options, await enter_fleet(stack, options))
        sub = hub.subscribe(names, inline=True)

        async def run_until_news() -> None:
            await hub.run(inline=True)

        try:
            await hub.attach(sub)
            async for event in iterate(hub, sub, options.timeout, run_until_news):
                yield event
        finally:
            hub.unsubscribe(sub)


@overload
async def wait_until_done(  # type: ignore[overload-overlap]  # str is also Iterable[str]
    names: str, *, raise_on_failure: bool = ..., **options: Unpack[PollerOptions]
) -> Description: ...


@overload
async def wait_until_done(
    names: Iterable[str], *, raise_on_failure: bool = ..., **options: Unpack[PollerOptions]
) -> dict[str, Description]: ...


async def wait_until_done(
    names: str | Iterable[str],
    *,
    raise_on_failure: bool = False,
    **options: Unpack[PollerOptions],
) -> Description | dict[str, Description]:
    """Wait until every job is terminal and return the final description(s).

    Example::

        description = await wait_until_done("job-a", timeout=3600)
        descriptions = await wait_until_done(["job-a", "job-b"], timeout=3600)

    Args:
        names: one name (returns its description) or several (returns ``{name: description}``).
        raise_on_failure: raise :class:`JobFailedError` if a job ends FAILED or STOPPED.
        **options: see :class:`~asyncoptjob.PollerOptions`; ``timeout`` is a hard deadline
            with one last describe at the deadline.

    Raises:
        ValueError: invalid names or option values.
        WaitTimeoutError: the deadline passed.
        JobNotFoundError: a job was unknown after the not-found grace period.
        JobFailedError: with ``raise_on_failure``, a job did not complete.
        CredentialsError: credentials or permissions are wrong.
    """
    valid = validate_names(names)
    raw: dict[str, Any] = dict(options)
    resolve_options(raw)
    if not valid:
        return {}
    async with Poller(**options) as poller:
        if isinstance(names, str):
            return await poller.wait_until_done(valid[0], raise_on_failure=raise_on_failure)
        return await poller.wait_until_done(valid, raise_on_failure=raise_on_failure)
