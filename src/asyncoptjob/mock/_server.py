"""`MockSageMaker`: the mock endpoint as an async context manager or a thread.

In-process, ``async with MockSageMaker() as mock`` serves on the running
event loop. For synchronous code (boto3), ``with mock.run_in_thread()``
serves from a private event loop in a daemon thread; every method that
touches state then hops onto that loop, so nothing is shared between
threads without the loop's say-so and the hot path needs no lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from ._app import App
from ._faults import Faults, Injector
from ._ledger import Ledger, RequestRecord
from ._lifecycle import Lifecycle, Outcome
from ._sim import Simulation

__all__ = ["MockSageMaker", "MockStats", "is_loopback"]

_T = TypeVar("_T")


def is_loopback(host: str) -> bool:
    """Return whether *host* names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class MockStats:
    """A snapshot of the endpoint's ground truth.

    Attributes:
        counters: Requests per operation and outcome, e.g.
            ``{"DescribeOptimizationJob": {"ok": 10, "ThrottlingException": 2}}``.
        jobs: How many jobs exist.
        statuses: How many jobs are in each status right now.
        requests_logged: How many requests the bounded log holds.
        connections: How many client connections are open right now (a client that
            closed cleanly leaves none behind).
    """

    counters: dict[str, dict[str, int]]
    jobs: int
    statuses: dict[str, int]
    requests_logged: int
    connections: int = 0

    def count(self, operation: str, outcome: str | None = None) -> int:
        """Return the requests of *operation* with *outcome* (all outcomes if None)."""
        outcomes = self.counters.get(operation, {})
        return sum(outcomes.values()) if outcome is None else outcomes.get(outcome, 0)


class MockSageMaker:
    """A SageMaker endpoint on 127.0.0.1 for optimization jobs, with faults and ground truth.

    Args:
        seed: Seeds the job and fault RNGs; None draws a random seed.
        faults: The initial faults (the object stays live: change it later).
        lifecycle: Default lifecycle for created and seeded jobs.
        region: The Region in ARNs.
        account_id: The 12-digit account id in ARNs.
        host: The address to bind.
        port: The port to bind; 0 picks a free one.
        allow_non_loopback: Permit binding *host* beyond this machine.
        request_log_size: How many requests the ground-truth log keeps.

    Raises:
        ValueError: If *host* is not a loopback address and
            *allow_non_loopback* is False.

    Example:
        >>> import asyncio
        >>> from aiohttp import ClientSession
        >>> async def demo() -> int:
        ...     async with MockSageMaker(seed=1) as mock, ClientSession() as http:
        ...         mock.seed_jobs(3)
        ...         async with http.get(mock.url + "/_mock/stats") as response:
        ...             return (await response.json())["jobs"]
        >>> asyncio.run(demo())
        3
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        faults: Faults | None = None,
        lifecycle: Lifecycle | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        host: str = "127.0.0.1",
        port: int = 0,
        allow_non_loopback: bool = False,
        request_log_size: int = 100_000,
    ) -> None:
        if not allow_non_loopback and not is_loopback(host):
            raise ValueError(
                f"host {host!r} is not a loopback address: the mock binds 127.0.0.1 by default; "
                "pass allow_non_loopback=True to expose it beyond this machine"
            )
        if not (len(account_id) == 12 and account_id.isdigit()):
            raise ValueError(f"account_id must be 12 digits, got {account_id!r}")
        if seed is None:
            seed = random.SystemRandom().randrange(2**32)
        self.seed = seed
        self.host = host
        self.port = port
        self._sim = Simulation(
            lifecycle=lifecycle or Lifecycle(),
            rng=random.Random(f"{seed}/jobs"),
            region=region,
            account_id=account_id,
        )
        self._app = App(
            self._sim,
            Injector(faults or Faults(), random.Random(f"{seed}/faults")),
            Ledger(request_log_size),
        )
        self._runner: web.ServerRunner | None = None
        self._url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"MockSageMaker(url={self._url!r}, seed={self.seed!r}, jobs={len(self._sim.jobs)})"

    # -- lifecycle of the server ---------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint URL, e.g. ``http://127.0.0.1:54321``.

        Raises:
            RuntimeError: If the server is not running.
        """
        if self._url is None:
            raise RuntimeError("the mock is not running: use 'async with MockSageMaker() as mock'")
        return self._url

    async def start(self) -> str:
        """Bind and start serving; return the URL."""
        if self._runner is not None:
            raise RuntimeError("the mock is already running")
        server = web.Server(self._app.handle, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._app.open_connections = lambda: len(server.connections)
        bound = runner.addresses[0]
        host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self._url = f"http://{host}:{bound[1]}"
        self._loop = asyncio.get_running_loop()
        return self._url

    async def close(self) -> None:
        """Stop serving and close every connection."""
        self._app.open_connections = lambda: 0
        runner, self._runner = self._runner, None
        self._url = None
        self._loop = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockSageMaker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextmanager
    def run_in_thread(self) -> Iterator[MockSageMaker]:
        """Serve from a background thread, for synchronous code such as boto3.

        Example:
            >>> import urllib.request
            >>> with MockSageMaker(seed=1).run_in_thread() as mock:
            ...     with urllib.request.urlopen(mock.url + "/_mock/faults") as response:
            ...         response.status
            200
        """
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
            yield self
        finally:
            self._thread = None
            if loop is not None:
                loop.call_soon_threadsafe(stop[0].set)
            thread.join()

    def _on_loop(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run *fn* where the server's state lives: on its loop's thread."""
        loop = self._loop
        if self._thread is None or loop is None or threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return future.result()

    # -- configuration -------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The live faults: assign its fields (validated) to change them while running."""
        return self._app.faults

    @property
    def lifecycle(self) -> Lifecycle:
        """The default lifecycle of created and seeded jobs."""
        return self._sim.lifecycle

    @lifecycle.setter
    def lifecycle(self, value: Lifecycle) -> None:
        self._sim.lifecycle = value

    def set_faults(self, **changes: Any) -> Faults:
        """Change several faults at once (all or none); return the live `Faults`.

        Raises:
            ValueError: Naming the first invalid or unknown field.

        Example:
            >>> mock = MockSageMaker(seed=1)
            >>> mock.set_faults(describe_rate=5, describe_burst=10).describe_rate
            5.0
        """
        self._on_loop(self._app.faults.update, **changes)
        return self._app.faults

    # -- jobs ----------------------------------------------------------------

    def seed_jobs(
        self,
        count: int,
        *,
        prefix: str = "job",
        lifecycle: Lifecycle | None = None,
        outcome: Outcome | None = None,
    ) -> list[str]:
        """Add *count* jobs without CreateOptimizationJob calls.

        Names are ``{prefix}-00000``, ``{prefix}-00001``, ..., numbered on
        from earlier seeds with the same prefix.

        Args:
            count: How many jobs to add.
            prefix: The name prefix.
            lifecycle: Their lifecycle (default: the mock's).
            outcome: Force every job's final status ("COMPLETED", "FAILED"
                or "STOPPED") instead of drawing it.

        Returns:
            The new job names.

        Example:
            >>> MockSageMaker(seed=1).seed_jobs(2, prefix="llama", outcome="FAILED")
            ['llama-00000', 'llama-00001']
        """
        return self._on_loop(
            self._sim.seed, count, prefix=prefix, lifecycle=lifecycle, outcome=outcome
        )

    def job_names(self) -> list[str]:
        """Return every job name, sorted."""
        return self._on_loop(lambda: list(self._sim.by_name))

    def status(self, name: str) -> str:
        """Return the true current status of job *name*.

        Raises:
            KeyError: If there is no such job.
        """
        return self._on_loop(self._sim.status, name)

    def transitions(
        self, names: Iterable[str] | None = None, *, include_future: bool = False
    ) -> dict[str, list[tuple[str, float]]]:
        """Return each job's true transitions as ``(status, epoch seconds)``.

        Args:
            names: The jobs to report; all by default.
            include_future: Also report transitions scheduled but not reached.
        """
        return self._on_loop(self._sim.transitions, names, include_future=include_future)

    # -- ground truth --------------------------------------------------------

    def stats(self) -> MockStats:
        """Return a snapshot of counters, job count and statuses."""

        def snapshot() -> MockStats:
            return MockStats(
                counters=self._app.ledger.snapshot(),
                jobs=len(self._sim.jobs),
                statuses=self._sim.status_counts(),
                requests_logged=len(self._app.ledger.log),
                connections=self._app.open_connections(),
            )

        return self._on_loop(snapshot)

    def open_connections(self) -> int:
        """Return how many client connections are open right now.

        A client that was closed (or never kept a connection) leaves none: tests use
        this to prove nothing leaks. A connection counts until the server has finished
        the request on it, even if the client already hung up.
        """
        return self._on_loop(self._app.open_connections)

    def requests(self) -> list[RequestRecord]:
        """Return the logged AWS requests, oldest first."""
        return self._on_loop(lambda: list(self._app.ledger.log))

    def max_requests_in_window(
        self, operation: str, window_s: float, outcome: str | None = "ok"
    ) -> int:
        """Return the most requests that arrived within any *window_s* seconds.

        With a rate limit R and burst B, the served (``"ok"``) count never
        exceeds ``R * window_s + B``.

        Args:
            operation: An operation name or a family ("describe", "list").
            window_s: The window length in seconds.
            outcome: Count only this outcome; None counts all.
        """
        return self._on_loop(self._app.ledger.max_requests_in_window, operation, window_s, outcome)

    def reset(self) -> None:
        """Forget every job, counter and logged request, and refill rate buckets.

        Faults and the default lifecycle stay as they are.
        """
        self._on_loop(self._app.reset)
