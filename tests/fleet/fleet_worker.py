"""One fleet member for the multi-process tests: ``python -m tests.fleet.fleet_worker CONFIG``.

Run from the repository root (the tests do: ``cwd=ROOT``).

Opens a Poller in fleet mode against the mock endpoint, runs one subscriber per list in
``subs`` (overlapping on purpose), prints ``ready`` once every one is attached, and at the end
prints one JSON line: every subscriber's events, its describes per job and its stats.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import anyio
import structlog

from asyncoptjob import Event, JobErrorEvent, Poller, PollPolicy, StatusChange, SweepPolicy
from asyncoptjob._transport import open_transport
from tests.helpers import LIST, RecordingTransport


async def main(config: dict[str, Any]) -> None:
    subs: list[list[str]] = config["subs"]
    results: list[list[list[Any]]] = [[] for _ in subs]
    async with open_transport(
        endpoint_url=config["mock_url"],
        region_name="us-east-1",
        max_concurrency=config.get("max_concurrency", 8),
    ) as inner:
        transport = RecordingTransport(inner)
        async with Poller(
            transport=transport,
            redis_url=config["redis_url"],
            redis_prefix=config["prefix"],
            redis_lease_ttl=config["lease_ttl"],
            max_rate=config["max_rate"],
            max_concurrency=config.get("max_concurrency", 8),
            poll_interval=PollPolicy(interval=config["poll"], max_interval=config["poll"]),
            strategy=config.get("strategy", "describe"),
            sweep=SweepPolicy(**config.get("sweep", {})),
            not_found_grace=config.get("not_found_grace", 60.0),
        ) as poller:
            attached = [anyio.Event() for _ in subs]

            async def run(i: int) -> None:
                async with poller.watch(subs[i], timeout=config["timeout"]) as events:
                    attached[i].set()  # its jobs are being polled
                    async for event in events:
                        record(i, event)

            def record(i: int, event: Event) -> None:
                if isinstance(event, StatusChange):
                    prev = event.previous_status.value if event.previous_status else None
                    results[i].append(
                        [
                            event.job_name,
                            prev,
                            event.status.value,
                            event.description["OptimizationJobName"],
                        ]
                    )
                elif isinstance(event, JobErrorEvent):
                    results[i].append([event.job_name, "error", repr(event.error), ""])

            async with anyio.create_task_group() as tg:
                for i in range(len(subs)):
                    tg.start_soon(run, i)  # attaching together, as the test's callers would
                for event in attached:
                    await event.wait()
                print("ready", flush=True)
            stats = poller.stats
            assert stats.fleet is not None
            report = {
                "events": results,
                "describes": dict(transport.describes),
                "sent": transport.sent_by_job(),
                "requests": dict(stats.requests),
                "outages": stats.fleet.outages,
                "round_trips": stats.fleet.budget_round_trips,
                "lists": transport.count(LIST),
            }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    # stdout carries the protocol (``ready``, then the report); logs go to stderr.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    asyncio.run(main(json.loads(sys.argv[1])))
