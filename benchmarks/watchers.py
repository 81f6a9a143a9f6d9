"""Each contender's way of watching many jobs until they are terminal (S2, S3, later S5).

Every watcher polls each job every ``interval`` seconds until it sees a terminal status
and logs the first time it saw each status of each job, with the wall-clock time the
answer arrived (what asyncoptjob calls ``observed_at``). What a watcher does when a
describe fails after its SDK's own retries is part of how it is written:

1. boto3 thread per job: the thread's wait loop raises and the job is lost (the SageMaker
   SDK's ``wait_for_*`` raises on the first error that survives botocore's retries).
2. boto3 + ThreadPoolExecutor: a sweep describes every pending job through the pool, then
   sleeps what is left of the interval; a failed describe is retried in the next sweep.
3. aiobotocore coroutine per job: the loop raises and the job is lost (an Airflow
   trigger's waiter fails the same way).
4. aiobotocore gather + Semaphore + adaptive: the best hand-rolled loop catches the error
   and tries again after the interval.
5. raw aiohttp: not a watcher (it has no retries or backoff: it is a transport ceiling).
6. asyncoptjob: ``watch(names, strategy="describe", ...)``; a ``JobErrorEvent`` event is a job
   given up. (The default strategy, ``"auto"``, switches to List sweeps at 25+ jobs; sweeps
   are a different workload, compared with describe-only polling in their own scenario.)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.session import get_session

from asyncoptjob import (
    Event,
    JobErrorEvent,
    Poller,
    PollerOptions,
    PollerStats,
    PollPolicy,
    watch,
)

from .contenders import ADAPTIVE_RETRIES, TERMINAL, aio_client, boto3_client
from .environment import REGION
from .measure import Meter

__all__ = ["WATCHERS", "MakeJobs", "WatchLog", "Watcher", "asyncoptjob_watcher"]


@dataclass(slots=True)
class WatchLog:
    """What a watcher saw.

    Attributes:
        seen: ``(job, status, epoch seconds)`` each time a job was seen in a new status.
        gave_up: jobs the watcher stopped watching before a terminal status, with why.
        stats: the Poller's own figures at the end (asyncoptjob through a Poller only).
    """

    seen: list[tuple[str, str, float]] = field(default_factory=list)
    gave_up: dict[str, str] = field(default_factory=dict)
    stats: PollerStats | None = None


#: Creates the jobs to watch (on the mock) and returns their names. Watchers call it once
#: their client is ready, just before the clock starts, so every contender sees the jobs
#: from the same age whatever its start-up cost.
MakeJobs = Callable[[], list[str]]

#: ``watcher(url, make_jobs, interval, concurrency, meter) -> WatchLog``; ``meter`` spans
#: the watching (client creation stays outside it, except asyncoptjob's: ``watch`` creates
#: its client from a session that has already loaded the service model).
Watcher = Callable[[str, MakeJobs, float, int, Meter], WatchLog]


def _error_text(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Code"):
        return str(response["Error"]["Code"])
    return type(exc).__name__


# -- 1. boto3, a wait loop per job in its own thread -------------------------------------------


def boto3_threads(
    url: str, make_jobs: MakeJobs, interval: float, concurrency: int, meter: Meter
) -> WatchLog:
    client = boto3_client(url, pool=concurrency)
    log = WatchLog()

    def wait_for_job(name: str) -> None:
        previous = None
        try:
            while True:
                response = client.describe_optimization_job(OptimizationJobName=name)
                status = response["OptimizationJobStatus"]
                if status != previous:
                    log.seen.append((name, status, time.time()))
                    previous = status
                if status in TERMINAL:
                    return
                time.sleep(interval)
        except Exception as exc:
            log.gave_up[name] = _error_text(exc)

    names = make_jobs()
    threads = [threading.Thread(target=wait_for_job, args=(name,)) for name in names]
    with meter:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    client.close()
    return log


# -- 2. boto3 + ThreadPoolExecutor sweeps ---------------------------------------------------


def boto3_pool(
    url: str, make_jobs: MakeJobs, interval: float, concurrency: int, meter: Meter
) -> WatchLog:
    client = boto3_client(url, pool=concurrency)
    log = WatchLog()

    def describe(name: str) -> tuple[str, str | None, float]:
        try:
            response = client.describe_optimization_job(OptimizationJobName=name)
        except Exception:
            return name, None, time.time()
        return name, response["OptimizationJobStatus"], time.time()

    names = make_jobs()
    last: dict[str, str | None] = dict.fromkeys(names)
    pending = list(names)
    with ThreadPoolExecutor(max_workers=concurrency) as pool, meter:
        while pending:
            started = time.monotonic()
            still = []
            for name, status, at in pool.map(describe, pending):
                if status is None:
                    still.append(name)
                    continue
                if status != last[name]:
                    log.seen.append((name, status, at))
                    last[name] = status
                if status not in TERMINAL:
                    still.append(name)
            pending = still
            if pending:
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
    client.close()
    return log


# -- 3. aiobotocore, a coroutine per job -----------------------------------------------------


def aiobotocore_loops(
    url: str, make_jobs: MakeJobs, interval: float, concurrency: int, meter: Meter
) -> WatchLog:
    log = WatchLog()

    async def main() -> None:
        async with aio_client(url, pool=concurrency) as client:

            async def wait_for_job(name: str) -> None:
                previous = None
                try:
                    while True:
                        response = await client.describe_optimization_job(OptimizationJobName=name)
                        status = response["OptimizationJobStatus"]
                        if status != previous:
                            log.seen.append((name, status, time.time()))
                            previous = status
                        if status in TERMINAL:
                            return
                        await asyncio.sleep(interval)
                except Exception as exc:
                    log.gave_up[name] = _error_text(exc)

            names = make_jobs()
            with meter:
                await asyncio.gather(*(wait_for_job(name) for name in names))

    asyncio.run(main())
    return log


# -- 4. aiobotocore, gather + Semaphore + adaptive retries --------------------------------------


def aiobotocore_gather(
    url: str, make_jobs: MakeJobs, interval: float, concurrency: int, meter: Meter
) -> WatchLog:
    log = WatchLog()

    async def main() -> None:
        async with aio_client(url, pool=concurrency, retries=ADAPTIVE_RETRIES) as client:
            semaphore = asyncio.Semaphore(concurrency)

            async def wait_for_job(name: str) -> None:
                previous = None
                while True:
                    try:
                        async with semaphore:
                            response = await client.describe_optimization_job(
                                OptimizationJobName=name
                            )
                    except Exception:
                        await asyncio.sleep(interval)
                        continue
                    status = response["OptimizationJobStatus"]
                    if status != previous:
                        log.seen.append((name, status, time.time()))
                        previous = status
                    if status in TERMINAL:
                        return
                    await asyncio.sleep(interval)

            names = make_jobs()
            with meter:
                await asyncio.gather(*(wait_for_job(name) for name in names))

    asyncio.run(main())
    return log


# -- 6. asyncoptjob ---------------------------------------------------------------------------


def asyncoptjob_watcher(
    policy: PollPolicy | float,
    *,
    api: str = "watch",
    consume: Callable[[Event], Awaitable[None]] | None = None,
    warm: bool = True,
    **options: Any,
) -> Watcher:
    """A watcher using asyncoptjob with ``policy`` and extra Poller ``options``.

    Args:
        policy: the ``poll_interval`` option.
        api: ``"watch"`` for the module-level ``watch(names, ...)`` (a private hub that
            polls in the background for the life of the loop), ``"poller"`` for
            ``Poller.watch`` (the hub polls for the life of the ``async with``).
        consume: awaited in the loop body for each event once it is logged: what the
            application does with it (S7's busy consumer). None: nothing.
        warm: load the service model before the clock starts, as the other contenders
            build their clients before it (False: the ``Poller`` builds its own client
            from nothing, the way an application's first one does; S2's cold start).
        **options: more :class:`asyncoptjob.PollerOptions`.
    """
    if api not in ("watch", "poller"):
        raise ValueError(f"api must be 'watch' or 'poller', got {api!r}")

    def run(
        url: str, make_jobs: MakeJobs, interval: float, concurrency: int, meter: Meter
    ) -> WatchLog:
        del interval  # the policy says when each job is polled
        log = WatchLog()

        async def note(event: Event) -> None:
            if isinstance(event, JobErrorEvent):
                log.gave_up[event.job_name] = type(event.error).__name__
            else:
                log.seen.append((event.job_name, event.status.value, event.observed_at.timestamp()))
            if consume is not None:
                await consume(event)

        async def main() -> None:
            # The other contenders build their clients before the clock starts; here the
            # session loads the service model first, so only client creation is timed.
            settings: PollerOptions = {
                "endpoint_url": url,
                "region_name": REGION,
                "max_concurrency": concurrency,
                "poll_interval": policy,
                "strategy": "describe",
                **options,  # type: ignore[typeddict-item]
            }
            if warm:
                session = get_session()
                async with session.create_client("sagemaker", region_name=REGION, endpoint_url=url):
                    pass
                settings["session"] = session
            names = make_jobs()
            with meter:
                if api == "watch":
                    async for event in watch(names, **settings):
                        await note(event)
                    return
                async with Poller(**settings) as poller:
                    async for event in poller.watch(names):
                        await note(event)
                    log.stats = poller.stats

        asyncio.run(main())
        return log

    return run


WATCHERS: dict[str, Watcher] = {
    "boto3_threads": boto3_threads,
    "boto3_pool": boto3_pool,
    "aiobotocore_loops": aiobotocore_loops,
    "aiobotocore_gather": aiobotocore_gather,
}
