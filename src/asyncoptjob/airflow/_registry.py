"""One shared Poller per (connection, Region, options) in a process, with reference counts.

The first trigger that needs a Poller starts a host task that resolves the connection
(in a worker thread) and opens the Poller; concurrent triggers of the same key wait for
that one opening. The Poller lives in its host task, not in any trigger's task, so any
trigger can leave first: the last one out stops the host, which closes the Poller.
A failed opening is handed to every trigger waiting for it, and forgotten: the next
trigger tries again.

The triggers that waited for the opening are woken in batches of :data:`WAKE_BATCH`,
one batch per turn of the event loop: 500 triggers resuming in one turn would hold the
loop for the sum of their first steps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from .._poller import Poller
from ._connection import resolve_connection

__all__ = ["PollerKey", "PollerRegistry", "RegistryStats", "registry"]

#: What a shared Poller is shared by: the event loop, the connection id, the Region asked
#: for and the trigger's Poller options (as sorted JSON).
PollerKey = tuple[asyncio.AbstractEventLoop, str | None, str | None, str]

#: Waiting triggers woken per turn of the event loop once their Poller has opened.
WAKE_BATCH = 32

Resolver = Callable[[str | None, str | None], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class RegistryStats:
    """A snapshot of a :class:`PollerRegistry`.

    Attributes:
        pollers_open: shared Pollers open (or opening) now.
        pollers_opened: Pollers opened since the process started.
        clients_created: SageMaker clients created by those Pollers (counted by botocore's
            ``creating-client-class`` event on the sessions the registry resolved).
        leases: triggers holding a shared Poller now.
    """

    pollers_open: int
    pollers_opened: int
    clients_created: int
    leases: int


class _Shared:
    """One shared Poller and its host task."""

    __slots__ = ("error", "host", "poller", "ready", "refs", "stop", "waiters")

    def __init__(self) -> None:
        self.refs = 0
        self.poller: Poller | None = None
        self.error: BaseException | None = None
        self.ready = False
        self.waiters: list[asyncio.Future[None]] = []
        self.stop = asyncio.Event()
        self.host: asyncio.Task[None] | None = None

    async def wait_ready(self) -> None:
        if not self.ready:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            await waiter

    async def set_ready(self) -> None:
        """Mark the opening done; wake the waiting triggers a batch per loop turn."""
        self.ready = True
        while self.waiters:
            batch, self.waiters = self.waiters[:WAKE_BATCH], self.waiters[WAKE_BATCH:]
            for waiter in batch:
                if not waiter.done():
                    waiter.set_result(None)
            if self.waiters:
                await asyncio.sleep(0)


class PollerRegistry:
    """Shared Pollers, opened by their first user and closed by their last.

    Args:
        resolve: turns ``(aws_conn_id, region_name)`` into Poller options (default: the
            Airflow connection, resolved in a worker thread as the Amazon provider's
            hooks do).
    """

    def __init__(self, resolve: Resolver = resolve_connection) -> None:
        self._resolve = resolve
        self._shared: dict[PollerKey, _Shared] = {}
        self._opened = 0
        self._clients = 0

    def stats(self) -> RegistryStats:
        """How many Pollers, clients and leases there are."""
        return RegistryStats(
            pollers_open=len(self._shared),
            pollers_opened=self._opened,
            clients_created=self._clients,
            leases=sum(shared.refs for shared in self._shared.values()),
        )

    @asynccontextmanager
    async def lease(
        self,
        aws_conn_id: str | None,
        region_name: str | None,
        options: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Poller]:
        """The shared Poller for this connection, Region and options, while the block runs.

        Raises:
            Exception: what resolving the connection or opening the Poller raised.
        """
        options = dict(options or {})
        loop = asyncio.get_running_loop()
        key: PollerKey = (loop, aws_conn_id, region_name, json.dumps(options, sort_keys=True))
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = _Shared()
            shared.host = loop.create_task(
                self._host(key, shared, aws_conn_id, region_name, options),
                name=f"asyncoptjob-airflow-poller-{aws_conn_id}",
            )
        shared.refs += 1
        try:
            await shared.wait_ready()
            if shared.poller is None:
                assert shared.error is not None
                raise shared.error
            yield shared.poller
        finally:
            shared.refs -= 1
            if shared.refs == 0:
                with anyio.CancelScope(shield=True):
                    await self._close(key, shared)

    async def _close(self, key: PollerKey, shared: _Shared) -> None:
        if self._shared.get(key) is shared:
            del self._shared[key]
        host = shared.host
        if host is None:
            return
        if shared.ready:
            shared.stop.set()
        else:
            host.cancel()  # nobody waits for it any more: abandon the opening
        await asyncio.wait({host})

    async def _host(
        self,
        key: PollerKey,
        shared: _Shared,
        aws_conn_id: str | None,
        region_name: str | None,
        options: dict[str, Any],
    ) -> None:
        try:
            connection = await self._resolve(aws_conn_id, region_name)
            session = connection.get("session")
            if session is not None and hasattr(session, "register"):
                session.register("creating-client-class.sagemaker", self._count_client)
            async with Poller(**{**options, **connection}) as poller:
                self._opened += 1
                shared.poller = poller
                await shared.set_ready()
                await shared.stop.wait()
        except Exception as exc:
            shared.error = exc
            if self._shared.get(key) is shared:
                del self._shared[key]  # the next trigger tries again
        finally:
            shared.poller = None
            with anyio.CancelScope(shield=True):
                await shared.set_ready()

    def _count_client(self, **_: Any) -> None:
        self._clients += 1


_REGISTRY = PollerRegistry()


def registry() -> PollerRegistry:
    """The process's registry, which every :class:`OptimizationJobTrigger` uses."""
    return _REGISTRY
