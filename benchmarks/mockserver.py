"""The mock SageMaker endpoint in its own process, and a client for its control path.

The mock runs as ``python -m asyncoptjob.mock`` (``asyncoptjob.mock.MockProcess``) so the
benchmark process's CPU time is the client's alone. Ground truth (request counts by
outcome, true transition times) comes from the mock's control path (``/_mock/...``),
never from the contenders.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from asyncoptjob.mock import MockProcess

from .environment import AWS_ENV
from .measure import cpu_seconds

__all__ = ["DESCRIBE", "MockServer"]

DESCRIBE = "DescribeOptimizationJob"

# Never route control requests through a proxy: the mock is on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MockServer(MockProcess):
    """``python -m asyncoptjob.mock`` on 127.0.0.1 (a `MockProcess`) and its control path.

    Example::

        with MockServer() as mock:
            names = mock.seed(100, lifecycle={"starting": [0, 0], "in_progress": [0, 0]})
            mock.set_faults(describe_rate=20, describe_burst=20)
            ...                                   # point clients at mock.url
            mock.describe_counts()                # {"ok": 100, "ThrottlingException": 7}

    Args:
        seed: the mock's RNG seed (same seed, same job schedules).
        args: extra command-line options for the mock.
    """

    def __init__(self, *, seed: int = 1, args: Sequence[str] = ()) -> None:
        super().__init__(
            ["--host", "127.0.0.1", "--port", "0", "--seed", str(seed), *args],
            env={**os.environ, **AWS_ENV},
        )

    def __enter__(self) -> MockServer:
        self.start()
        return self

    def close(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        self.stop()

    def cpu_seconds(self) -> float:
        """CPU seconds the mock process has used so far (Linux; NaN elsewhere or stopped)."""
        return math.nan if self.pid is None else cpu_seconds(self.pid)

    # -- control path -------------------------------------------------------------------

    def _call(
        self,
        route: str,
        body: Mapping[str, Any] | None = None,
        query: Sequence[tuple[str, str]] = (),
    ) -> Any:
        url = f"{self.url}/_mock/{route}"
        if query:
            url += "?" + urllib.parse.urlencode(list(query))
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
        with _OPENER.open(request, timeout=120) as response:
            return json.load(response)

    def reset(self) -> None:
        """Forget every job, counter and logged request; refill the rate buckets."""
        self._call("reset", {})

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Change the mock's faults (rate limits, latency, ...); return them all."""
        result: dict[str, Any] = self._call("faults", faults)
        return result

    def seed(
        self,
        count: int,
        *,
        prefix: str = "job",
        lifecycle: Mapping[str, Any] | None = None,
        outcome: str | None = None,
    ) -> list[str]:
        """Add ``count`` jobs with ``lifecycle`` (the mock's ``Lifecycle`` fields as JSON)."""
        body: dict[str, Any] = {"count": count, "prefix": prefix}
        if lifecycle is not None:
            body["lifecycle"] = dict(lifecycle)
        if outcome is not None:
            body["outcome"] = outcome
        names: list[str] = self._call("seed", body)["names"]
        return names

    def stats(self) -> dict[str, Any]:
        """The mock's ``/_mock/stats``: counters by operation and outcome, statuses."""
        result: dict[str, Any] = self._call("stats")
        return result

    def describe_counts(self) -> dict[str, int]:
        """DescribeOptimizationJob requests the mock received, by outcome."""
        counts: dict[str, int] = self.stats()["counters"].get(DESCRIBE, {})
        return counts

    def settled_describe_counts(self, quiet: float = 0.1, timeout: float = 5.0) -> dict[str, int]:
        """:meth:`describe_counts` once they stop changing for ``quiet`` seconds.

        The mock counts a request when it answers, so requests a client abandoned (a
        cancelled task) are still counted a latency later: wait them out between runs.
        """
        deadline = time.monotonic() + timeout
        counts = self.describe_counts()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            again = self.describe_counts()
            if again == counts:
                break
            counts = again
        return counts

    def transitions(self) -> dict[str, list[tuple[str, float]]]:
        """Every job's true transitions so far as ``(status, epoch seconds)``."""
        jobs = self._call("transitions")["jobs"]
        return {name: [(s, float(t)) for s, t in items] for name, items in jobs.items()}

    def requests(self) -> list[tuple[float, str, str]]:
        """The mock's request log: ``(monotonic arrival time, operation, outcome)``."""
        return [(float(at), op, outcome) for at, op, outcome in self._call("requests")["requests"]]

    def max_requests_in_window(
        self, window_s: float, *, operation: str = "describe", outcome: str = "ok"
    ) -> int:
        """The most requests of ``operation`` with ``outcome`` in any ``window_s`` seconds."""
        result = self._call(
            "max_requests_in_window",
            query=[("operation", operation), ("window_s", str(window_s)), ("outcome", outcome)],
        )
        return int(result["max"])
