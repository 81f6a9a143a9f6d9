"""The contenders: what users would pick instead of asyncoptjob, and how each makes clients.

Every scenario writes each contender the way its users write it (see the scenario
modules); this module holds what they share: the list, and the client each one uses.
All clients point at the mock on 127.0.0.1 with dummy credentials from the environment.

Every client gets ``max_pool_connections`` equal to the scenario's concurrency, so no
contender is held back (or flooded with "pool is full" churn) by botocore's default
of 10 connections; apart from that each keeps its library's defaults unless said.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import boto3
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.config import Config

from .environment import REGION

__all__ = [
    "ADAPTIVE_RETRIES",
    "CONTENDERS",
    "Contender",
    "RawDescriber",
    "TERMINAL",
    "aio_client",
    "boto3_client",
    "contender",
    "raw_describer",
]

TERMINAL = frozenset({"COMPLETED", "FAILED", "STOPPED"})

#: Contender 4's retries: botocore's adaptive mode (client-side CUBIC rate limiting),
#: with more attempts than standard mode's 3 so that it is the best hand-rolled version.
ADAPTIVE_RETRIES: dict[str, Any] = {"mode": "adaptive", "max_attempts": 10}


@dataclass(frozen=True, slots=True)
class Contender:
    """One way of watching many jobs.

    Attributes:
        key: stable id used in the JSON results.
        number: its number in the tables (1-6).
        label: short name for tables and plots.
        how: one sentence on how it is written.
    """

    key: str
    number: int
    label: str
    how: str

    @property
    def title(self) -> str:
        """``"4. aiobotocore gather+Semaphore"``."""
        return f"{self.number}. {self.label}"


CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "boto3_threads",
        1,
        "boto3, thread per job",
        "one `describe; time.sleep(interval)` loop per job, each in its own thread, "
        "botocore's default (legacy, 5 attempts) retries; an error that survives them ends "
        "the loop and the job is lost: the SageMaker SDK's way",
    ),
    Contender(
        "boto3_pool",
        2,
        "boto3 + ThreadPoolExecutor",
        "describes fanned out over a `ThreadPoolExecutor(max_workers=concurrency)`, default "
        "(legacy) retries; watching, it sweeps every pending job through the pool each "
        "interval and retries a failed describe in the next sweep",
    ),
    Contender(
        "aiobotocore_loops",
        3,
        "aiobotocore, coroutine per job",
        "one `describe; await asyncio.sleep(interval)` coroutine per job, gathered, "
        "default (legacy) retries; an error that survives them ends that job's loop: the "
        "Airflow-trigger way",
    ),
    Contender(
        "aiobotocore_gather",
        4,
        "aiobotocore gather+Semaphore, adaptive",
        "`asyncio.gather` over per-job coroutines with an `asyncio.Semaphore(concurrency)` "
        "around each describe and botocore's `adaptive` retry mode (max_attempts=10); "
        "errors are caught and retried after the interval: the best hand-rolled version",
    ),
    Contender(
        "aiohttp_raw",
        5,
        "raw aiohttp (ceiling)",
        "hand-built AWS JSON 1.1 POSTs over one aiohttp session, no botocore (no signing; "
        "a dummy Authorization header), bodies parsed with `json.loads`: the transport ceiling",
    ),
    Contender(
        "asyncoptjob",
        6,
        "asyncoptjob",
        "the library's public API (`Poller`, `watch`, `poller.stats`) with "
        '`strategy="describe"` (one describe per job per poll, like the others; List '
        "sweeps are another workload), structlog at WARNING (S1, S8: logging unconfigured)",
    ),
)

_BY_KEY = {c.key: c for c in CONTENDERS}


def contender(key: str) -> Contender:
    """The contender with ``key``."""
    return _BY_KEY[key]


def boto3_client(url: str, *, pool: int, retries: dict[str, Any] | None = None) -> Any:
    """A boto3 SageMaker client for the mock; ``retries=None`` keeps botocore's default."""
    config = Config(max_pool_connections=pool)
    if retries is not None:
        config = config.merge(Config(retries=cast(Any, retries)))
    return boto3.session.Session().client(
        "sagemaker", region_name=REGION, endpoint_url=url, config=config
    )


@asynccontextmanager
async def aio_client(
    url: str, *, pool: int, retries: dict[str, Any] | None = None
) -> AsyncIterator[Any]:
    """An aiobotocore SageMaker client for the mock; ``retries=None`` keeps the default."""
    config = AioConfig(max_pool_connections=pool)
    if retries is not None:
        config = config.merge(AioConfig(retries=retries))
    async with get_session().create_client(
        "sagemaker", region_name=REGION, endpoint_url=url, config=config
    ) as client:
        yield client


_HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "SageMaker.DescribeOptimizationJob",
    # The mock accepts any signature but insists on one; real AWS would need SigV4.
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sagemaker/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0"
    ),
    "X-Amz-Date": "20240101T000000Z",
}


class RawDescriber:
    """DescribeOptimizationJob as a bare aiohttp POST: the cost floor of one describe."""

    __slots__ = ("_session", "_url")

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url + "/"

    async def describe(self, name: str) -> dict[str, Any]:
        """Return the parsed response; raise ``RuntimeError`` on a non-200 answer."""
        body = json.dumps({"OptimizationJobName": name})
        async with self._session.post(self._url, data=body, headers=_HEADERS) as response:
            payload = await response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")
        result: dict[str, Any] = json.loads(payload)
        return result


@asynccontextmanager
async def raw_describer(url: str, *, pool: int) -> AsyncIterator[RawDescriber]:
    """A :class:`RawDescriber` over a keep-alive session of ``pool`` connections."""
    connector = aiohttp.TCPConnector(limit=pool)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield RawDescriber(session, url)
