"""The control path: the mock's own API for tests, over HTTP on ``/_mock/`` and from Python.

`Control` answers what really happened (counters, true transitions, the
request log, connections), changes faults, seeds jobs and resets. The HTTP
routes and `MockSageMaker`'s methods are two faces of this one object. The
control path needs no auth, is never counted and never meets a fault.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from aiohttp import web
from multidict import MultiMapping

from ._faults import Faults
from ._injector import Injector
from ._ledger import Ledger
from ._lifecycle import Lifecycle
from ._sim import Simulation

__all__ = ["CONTROL_PREFIX", "Control", "MockStats"]

CONTROL_PREFIX: Final = "/_mock/"
_JSON: Final = "application/json"
_SEED_FIELDS: Final = frozenset({"count", "prefix", "lifecycle", "outcome"})


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


class Control:
    """The ground truth and the knobs of one mock endpoint.

    Args:
        sim: The jobs.
        injector: The fault decisions (holds the live `Faults`).
        ledger: The counters and request log of AWS requests.
        connections: Returns how many client connections are open right now.
    """

    def __init__(
        self,
        sim: Simulation,
        injector: Injector,
        ledger: Ledger,
        connections: Callable[[], int],
    ) -> None:
        self.sim = sim
        self.injector = injector
        self.ledger = ledger
        self.connections = connections

    @property
    def faults(self) -> Faults:
        """The live fault configuration."""
        return self.injector.faults

    # -- what the routes and MockSageMaker share ------------------------------

    def stats(self) -> MockStats:
        """Return a snapshot of counters, jobs, statuses and connections."""
        return MockStats(
            counters=self.ledger.snapshot(),
            jobs=len(self.sim.jobs),
            statuses=self.sim.status_counts(),
            requests_logged=len(self.ledger.log),
            connections=self.connections(),
        )

    def seed(self, data: Mapping[str, Any]) -> list[str]:
        """Seed jobs from a control-path request body (count, prefix, lifecycle, outcome).

        Raises:
            ValueError: On an unknown field or an invalid value.
        """
        unknown = sorted(set(data) - _SEED_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown seed field(s) {unknown}: use count, prefix, lifecycle, outcome"
            )
        lifecycle = data.get("lifecycle")
        return self.sim.seed(
            data.get("count", 0),
            prefix=data.get("prefix", "job"),
            lifecycle=None if lifecycle is None else Lifecycle.from_mapping(lifecycle),
            outcome=data.get("outcome"),
        )

    def reset(self) -> None:
        """Forget every job, count and logged request, and refill the rate buckets."""
        self.sim.clear()
        self.ledger.clear()
        self.injector.reset()

    # -- HTTP ------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest, route: str) -> web.Response:
        """Answer a control request for *route* (the path after ``/_mock/``)."""
        method = request.method
        try:
            if method == "GET":
                result = self._get(route, request.query)
            elif method == "POST":
                raw = await request.read()
                data = json.loads(raw) if raw.strip() else {}
                if not isinstance(data, dict):
                    raise ValueError("the request body must be a JSON object")
                result = self._post(route, data)
            else:
                result = None
        except (ValueError, TypeError) as exc:
            return _json_response(400, {"error": str(exc)})
        if result is None:
            return _json_response(404, {"error": f"no control route {method} /_mock/{route}"})
        return _json_response(200, result)

    def _get(self, route: str, query: MultiMapping[str]) -> Any:
        if route == "stats":
            return {**asdict(self.stats()), "faults": self.faults.to_dict()}
        if route == "faults":
            return self.faults.to_dict()
        if route == "transitions":
            return self._transitions(query)
        if route == "requests":
            return {"requests": [list(record) for record in self.ledger.log]}
        if route == "max_requests_in_window":
            outcome = query.get("outcome", "ok")
            return {
                "max": self.ledger.max_requests_in_window(
                    query.get("operation", "describe"),
                    float(query.get("window_s", "1")),
                    None if outcome in ("", "any") else outcome,
                )
            }
        return None

    def _transitions(self, query: MultiMapping[str]) -> dict[str, Any]:
        names = query.getall("name", None)
        future = query.get("include_future", "").lower() in ("1", "true", "yes")
        transitions = self.sim.transitions(names, include_future=future)
        return {
            "jobs": {
                name: [[s, None if math.isinf(t) else t] for s, t in items]
                for name, items in transitions.items()
            }
        }

    def _post(self, route: str, data: dict[str, Any]) -> Any:
        if route == "faults":
            self.faults.update(**data)
            return self.faults.to_dict()
        if route == "seed":
            names = self.seed(data)
            return {"count": len(names), "names": names}
        if route == "reset":
            self.reset()
            return {}
        return None


def _json_response(status: int, value: Any) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(value, separators=(",", ":")).encode(),
        content_type=_JSON,
    )
