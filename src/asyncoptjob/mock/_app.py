"""The HTTP side of the mock: AWS JSON 1.1 on ``POST /`` (the control path is `_control`).

It runs on aiohttp's low-level server (no router, no middlewares): an AWS
request is one header lookup, one dict dispatch and one prebuilt response,
so the endpoint is never the bottleneck of a benchmark. Faults are decided
when the request arrives (that instant is what the rate limit and the
request log see) and latency is an ``asyncio.sleep``, so slow answers never
block other requests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from ._bad_answers import OK, corrupt
from ._control import CONTROL_PREFIX, Control
from ._faults import Faults
from ._injector import DESCRIBE, Drop, Injector
from ._ledger import Ledger
from ._limits import family_of
from ._listing import ListAnswer, list_jobs
from ._sim import Simulation
from ._wire import CONTENT_TYPE, AwsError, dumps, error_body

__all__ = ["App"]

_TARGET_PREFIX: Final = "SageMaker."

_MISSING_AUTH: Final = AwsError(
    "MissingAuthenticationTokenException",
    "Missing Authentication Token: sign the request with SigV4 (any credentials work here).",
    403,
)
_NOT_AN_OBJECT: Final = AwsError("SerializationException", "The request body is not a JSON object.")

#: A served request: the response body and the outcome the ledger records.
Answer = tuple[bytes, str]


class App:
    """The request handler over a simulation, its faults and its ledger.

    Args:
        sim: The jobs.
        injector: The fault decisions (holds the live `Faults`).
        ledger: Where each AWS request is counted.
        control: Answers the control path.
        clock: Monotonic seconds for arrival times.
    """

    def __init__(
        self,
        sim: Simulation,
        injector: Injector,
        ledger: Ledger,
        control: Control,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sim = sim
        self.injector = injector
        self.ledger = ledger
        self.control = control
        self.clock = clock
        self._request_ids = itertools.count(1)
        self._operations: dict[str, Callable[[dict[str, Any]], Answer]] = {
            DESCRIBE: self._describe,
            "ListOptimizationJobs": self._list,
            "CreateOptimizationJob": self._create,
            "StopOptimizationJob": self._stop,
            "DeleteOptimizationJob": self._delete,
        }
        self._families = {op: family_of(op) for op in self._operations}

    @property
    def faults(self) -> Faults:
        """The live fault configuration."""
        return self.injector.faults

    # -- HTTP, one layer per method --------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one HTTP request."""
        path = request.path
        if path == "/" and request.method == "POST":
            return await self._aws(request)
        if path.startswith(CONTROL_PREFIX):
            return await self.control.handle(request, path[len(CONTROL_PREFIX) :])
        return self._error(
            AwsError("UnknownOperationException", f"No operation at {request.method} {path}.")
        )

    async def _aws(self, request: web.BaseRequest) -> web.StreamResponse:
        """Check the signature and the target, then answer the operation."""
        arrival = self.clock()
        headers = request.headers
        target = headers.get("X-Amz-Target", "")
        body = await request.read()
        operation = target[len(_TARGET_PREFIX) :] if target.startswith(_TARGET_PREFIX) else ""
        known = operation in self._operations
        label = operation if known else (target[:64] or "<no X-Amz-Target>")
        if "Authorization" not in headers:
            error = _MISSING_AUTH
        elif not known:
            error = AwsError(
                "UnknownOperationException",
                f"Unknown operation {target!r}: send X-Amz-Target: SageMaker.<Operation>.",
            )
        else:
            return await self._operation(request, operation, body, arrival)
        self.ledger.record(arrival, label, error.code)
        return self._error(error)

    async def _operation(
        self, request: web.BaseRequest, operation: str, body: bytes, arrival: float
    ) -> web.StreamResponse:
        """Meet the request's fault (after its latency), or answer it."""
        injector = self.injector
        fault = injector.decide(self._families[operation], arrival)
        delay = injector.latency()
        if delay:
            await asyncio.sleep(delay)
        if isinstance(fault, Drop):
            self.ledger.record(arrival, operation, "dropped")
            if request.transport is not None:
                request.transport.abort()
            # Never written: the transport is gone; aiohttp just discards it.
            return web.Response(status=500)
        if fault is not None:
            self.ledger.record(arrival, operation, fault.code)
            return self._error(fault)
        try:
            answer, outcome = self._answer(operation, body)
        except AwsError as error:
            self.ledger.record(arrival, operation, error.code)
            return self._error(error)
        self.ledger.record(arrival, operation, outcome)
        return self._response(200, answer)

    def _answer(self, operation: str, body: bytes) -> Answer:
        """Run the operation on the simulation; a good answer may still turn bad.

        Raises:
            AwsError: The operation's error, as AWS would answer it.
        """
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            raise _NOT_AN_OBJECT from None
        if not isinstance(payload, dict):
            raise _NOT_AN_OBJECT
        answer, outcome = self._operations[operation](payload)
        if outcome != OK:
            return answer, outcome
        bad = self.injector.bad_answer(operation, payload.get("OptimizationJobName"))
        if bad is None:
            return answer, OK
        return corrupt(answer, bad, unknown_status=self.faults.unknown_status), bad

    def _response(self, status: int, body: bytes) -> web.Response:
        request_id = f"6d0c7e2a-0000-4000-8000-{next(self._request_ids):012x}"
        return web.Response(
            status=status,
            body=body,
            headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id},
        )

    def _error(self, error: AwsError) -> web.Response:
        return self._response(error.status, error_body(error.code, error.message))

    # -- AWS operations --------------------------------------------------------

    def _describe(self, payload: dict[str, Any]) -> Answer:
        try:
            return self.sim.describe(payload.get("OptimizationJobName")), OK
        except AwsError as error:
            if error.code != "ResourceNotFound" or self.faults.not_found_code == error.code:
                raise
            # Other SageMaker Describe calls answer a missing resource this way.
            raise AwsError(self.faults.not_found_code, error.message) from None

    def _list(self, payload: dict[str, Any]) -> ListAnswer:
        faults = self.faults
        return list_jobs(
            self.sim,
            payload,
            empty_pages=faults.empty_list_pages,
            lag=faults.list_lag,
            hidden=faults.list_hidden_jobs,
            stuck=self.injector.chance(faults.stuck_list_rate),
            duplicate=self.injector.chance(faults.duplicate_list_rate),
        )

    def _create(self, payload: dict[str, Any]) -> Answer:
        return dumps(self.sim.create(payload)).encode(), OK

    def _stop(self, payload: dict[str, Any]) -> Answer:
        self.sim.stop(payload.get("OptimizationJobName"))
        return b"{}", OK

    def _delete(self, payload: dict[str, Any]) -> Answer:
        self.sim.delete(payload.get("OptimizationJobName"))
        return b"{}", OK
