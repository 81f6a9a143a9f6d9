"""A mock Amazon SageMaker endpoint for optimization jobs, with faults and ground truth.

It speaks AWS JSON 1.1 like SageMaker (Create/Describe/List/Stop/Delete
OptimizationJob), so real aiobotocore and boto3 clients talk to it through
``endpoint_url``. Jobs follow a seeded, time-scaled lifecycle computed
lazily, so 100,000 seeded jobs cost no background work. Faults (account-wide
rate limits, throttling storms, latency, 5xx, dropped connections, malformed
bodies, forced error codes, the empty-List-page quirk, and bad answers: a
status missing, mistyped or unknown, a List stuck on one NextToken or
repeating entries) can change while it runs, and its ground truth (counters,
true transition times, a request log) tells tests what really happened. It
binds 127.0.0.1 only, unless told otherwise.

Example:
    >>> import asyncio
    >>> from aiobotocore.session import get_session
    >>> from asyncoptjob.mock import Faults, Lifecycle, MockSageMaker
    >>> async def demo() -> str:
    ...     lifecycle = Lifecycle(starting=(0.05, 0.05), in_progress=(0.1, 0.1))
    ...     async with MockSageMaker(seed=1, lifecycle=lifecycle) as mock:
    ...         (name,) = mock.seed_jobs(1, outcome="COMPLETED")
    ...         session = get_session()
    ...         async with session.create_client(
    ...             "sagemaker",
    ...             region_name="us-east-1",
    ...             endpoint_url=mock.url,
    ...             aws_access_key_id="testing",
    ...             aws_secret_access_key="testing",
    ...         ) as client:
    ...             await asyncio.sleep(0.2)
    ...             job = await client.describe_optimization_job(OptimizationJobName=name)
    ...             return job["OptimizationJobStatus"]
    >>> asyncio.run(demo())
    'COMPLETED'

As its own process (prints the URL on the first stdout line)::

    python -m asyncoptjob.mock --port 0 --seed-jobs 1000 --describe-rate 20

or, from Python (tests, benchmarks), `MockProcess` starts one, reads its URL and
stops it::

    with MockProcess(["--seed-jobs", "1000", "--describe-rate", "20"]) as mock:
        ...  # endpoint_url=mock.url; mock.pid for its CPU and memory

Control path (no auth, not counted, never faulted): ``GET /_mock/stats``,
``GET /_mock/transitions``, ``GET /_mock/requests``,
``GET /_mock/max_requests_in_window``, ``GET|POST /_mock/faults``,
``POST /_mock/seed``, ``POST /_mock/reset``.
"""

from ._control import MockStats
from ._endpoint import MockSageMaker
from ._faults import Faults
from ._launcher import MockProcess
from ._ledger import RequestRecord
from ._lifecycle import Lifecycle
from ._process import build_parser, main

__all__ = [
    "MockSageMaker",
    "Lifecycle",
    "Faults",
    "MockStats",
    "RequestRecord",
    "MockProcess",
    "build_parser",
    "main",
]
