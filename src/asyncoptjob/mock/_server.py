"""Hosting: serve one aiohttp handler on loopback, on the running loop or from a thread.

In-process, `LoopbackServer` serves on the caller's event loop. For
synchronous code (boto3), `LoopbackServer.run_in_thread` serves from a
private event loop in a daemon thread; `LoopbackServer.call` then runs a
function on that loop, so the state behind the handler is never shared
between threads without the loop's say-so and the hot path needs no lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from aiohttp import web

__all__ = ["Handler", "LoopbackServer", "is_loopback"]

_T = TypeVar("_T")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """Return whether *host* names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackServer:
    """An aiohttp low-level server bound to this machine unless told otherwise.

    Args:
        handler: Answers every request.
        host: The address to bind.
        port: The port to bind; 0 picks a free one.
        allow_non_loopback: Permit binding *host* beyond this machine.

    Raises:
        ValueError: If *host* is not a loopback address and
            *allow_non_loopback* is False.
    """

    def __init__(
        self, handler: Handler, *, host: str, port: int, allow_non_loopback: bool = False
    ) -> None:
        if not allow_non_loopback and not is_loopback(host):
            raise ValueError(
                f"host {host!r} is not a loopback address: the mock binds 127.0.0.1 by default; "
                "pass allow_non_loopback=True to expose it beyond this machine"
            )
        self.handler = handler
        self.host = host
        self.port = port
        #: The aiohttp runner while serving, else None.
        self.runner: web.ServerRunner | None = None
        self._server: web.Server | None = None
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str | None:
        """The URL while serving (``http://127.0.0.1:54321``), else None."""
        return self._url

    def connections(self) -> int:
        """Return how many client connections are open right now (0 when not serving)."""
        server = self._server
        return 0 if server is None else len(server.connections)

    async def start(self) -> str:
        """Bind and start serving on the running loop; return the URL.

        Raises:
            RuntimeError: If it is already serving.
        """
        if self.runner is not None:
            raise RuntimeError("the mock is already running")
        server = web.Server(self.handler, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.runner = runner
        self._server = server
        bound = runner.addresses[0]
        host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self._url = f"http://{host}:{bound[1]}"
        self._loop = asyncio.get_running_loop()
        return self._url

    async def close(self) -> None:
        """Stop serving and close every connection."""
        runner, self.runner = self.runner, None
        self._server = None
        self._url = None
        self._loop = None
        if runner is not None:
            await runner.cleanup()

    @contextmanager
    def run_in_thread(self) -> Iterator[None]:
        """Serve from a private event loop in a daemon thread until the block ends."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        stop: list[asyncio.Event] = []

        async def serve() -> None:
            try:
                await self.start()
            except BaseException as exc:
                started.set_exception(exc)
                return
            stop.append(asyncio.Event())
            started.set_result(None)
            try:
                await stop[0].wait()
            finally:
                await self.close()

        thread = threading.Thread(target=asyncio.run, args=(serve(),), name="mock-sagemaker")
        thread.daemon = True
        thread.start()
        try:
            started.result()
        except BaseException:
            thread.join()
            raise
        loop = self._loop
        self._thread = thread
        try:
            yield
        finally:
            self._thread = None
            if loop is not None:
                loop.call_soon_threadsafe(stop[0].set)
            thread.join()

    def call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run *fn* where the handler's state lives: on the serving thread's loop, if any."""
        loop = self._loop
        if self._thread is None or loop is None or threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result()
