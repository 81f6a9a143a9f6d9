"""`MockSageMaker`: the mock endpoint as an async context manager or a thread.

It assembles the parts (the simulated account, the fault injector, the
ledger, the HTTP app and the control object) and serves them with a
`LoopbackServer`. In-process, ``async with MockSageMaker() as mock`` serves
on the running event loop; for synchronous code (boto3), ``with
mock.run_in_thread()`` serves from a daemon thread, and every method below
then runs on that thread's loop.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from ._app import App
from ._control import Control, MockStats
from ._faults import Faults
from ._injector import Injector
from ._ledger import Ledger, RequestRecord
from ._lifecycle import Lifecycle, Outcome
from ._server import LoopbackServer
from ._sim import Simulation

__all__ = ["MockSageMaker"]


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
        injector = Injector(faults or Faults(), random.Random(f"{seed}/faults"))
        ledger = Ledger(request_log_size)
        self._control = Control(self._sim, injector, ledger, connections=self._connections)
        app = App(self._sim, injector, ledger, self._control)
        self._server = LoopbackServer(
            app.handle, host=host, port=port, allow_non_loopback=allow_non_loopback
        )

    def __repr__(self) -> str:
        url = self._server.url
        return f"MockSageMaker(url={url!r}, seed={self.seed!r}, jobs={len(self._sim.jobs)})"

    def _connections(self) -> int:
        return self._server.connections()

    @property
    def _runner(self) -> web.ServerRunner | None:
        # The aiohttp runner while serving: a security test checks what it bound.
        return self._server.runner

    # -- serving -------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint URL, e.g. ``http://127.0.0.1:54321``.

        Raises:
            RuntimeError: If the server is not running.
        """
        url = self._server.url
        if url is None:
            raise RuntimeError("the mock is not running: use 'async with MockSageMaker() as mock'")
        return url

    async def start(self) -> str:
        """Bind and start serving; return the URL."""
        return await self._server.start()

    async def close(self) -> None:
        """Stop serving and close every connection."""
        await self._server.close()

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
        with self._server.run_in_thread():
            yield self

    # -- configuration -------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The live faults: assign its fields (validated) to change them while running."""
        return self._control.faults

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
        self._server.call(self.faults.update, **changes)
        return self.faults

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
        return self._server.call(
            self._sim.seed, count, prefix=prefix, lifecycle=lifecycle, outcome=outcome
        )

    def job_names(self) -> list[str]:
        """Return every job name, sorted."""
        return self._server.call(lambda: list(self._sim.by_name))

    def status(self, name: str) -> str:
        """Return the true current status of job *name*.

        Raises:
            KeyError: If there is no such job.
        """
        return self._server.call(self._sim.status, name)

    def transitions(
        self, names: Iterable[str] | None = None, *, include_future: bool = False
    ) -> dict[str, list[tuple[str, float]]]:
        """Return each job's true transitions as ``(status, epoch seconds)``.

        Args:
            names: The jobs to report; all by default.
            include_future: Also report transitions scheduled but not reached.
        """
        return self._server.call(self._sim.transitions, names, include_future=include_future)

    # -- ground truth --------------------------------------------------------

    def stats(self) -> MockStats:
        """Return a snapshot of counters, job count and statuses."""
        return self._server.call(self._control.stats)

    def open_connections(self) -> int:
        """Return how many client connections are open right now.

        A client that was closed (or never kept a connection) leaves none: tests use
        this to prove nothing leaks. A connection counts until the server has finished
        the request on it, even if the client already hung up.
        """
        return self._server.call(self._server.connections)

    def requests(self) -> list[RequestRecord]:
        """Return the logged AWS requests, oldest first."""
        return self._server.call(lambda: list(self._control.ledger.log))

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
        return self._server.call(
            self._control.ledger.max_requests_in_window, operation, window_s, outcome
        )

    def reset(self) -> None:
        """Forget every job, counter and logged request, and refill rate buckets.

        Faults and the default lifecycle stay as they are.
        """
        self._server.call(self._control.reset)
