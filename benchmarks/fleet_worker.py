"""One S6 fleet member: a Poller (coordinated through Redis, or independent) for a while.

Run as ``python -m benchmarks.fleet_worker '<json config>'``; prints one JSON line with the
status changes it saw and its request counts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import anyio
import structlog

from asyncoptjob import Poller, PollerOptions, PollPolicy, StatusChange, SweepPolicy


async def watch_for_a_while(cfg: dict[str, Any]) -> dict[str, Any]:
    """Watch ``cfg["names"]`` for ``cfg["duration"]`` seconds; return what was seen."""
    seen: list[list[Any]] = []
    options: PollerOptions = {
        "endpoint_url": cfg["mock_url"],
        "region_name": "us-east-1",
        "strategy": cfg.get("strategy", "describe"),
        "poll_interval": PollPolicy(interval=cfg["poll"], max_interval=cfg["poll"]),
        "max_concurrency": 16,
    }
    if cfg.get("confirm"):
        options["sweep"] = SweepPolicy(confirm=cfg["confirm"])
    if cfg.get("max_rate"):
        options["max_rate"] = cfg["max_rate"]
    if cfg.get("redis_url"):
        options["redis_url"] = cfg["redis_url"]
        options["redis_prefix"] = cfg["prefix"]
    async with Poller(**options) as poller:
        with anyio.move_on_after(cfg["duration"]):
            async for event in poller.watch(cfg["names"]):
                if isinstance(event, StatusChange):
                    seen.append(  # noqa: PERF401 - a loop: move_on_after ends it mid-way
                        [
                            event.job_name,
                            event.status.value,
                            event.observed_at.timestamp(),
                            event.previous_status is not None,
                            event.source,
                        ]
                    )
        stats = poller.stats
        return {
            "changes": seen,
            "requests": dict(stats.requests),
            "round_trips": stats.fleet.budget_round_trips if stats.fleet else 0,
        }


if __name__ == "__main__":
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
    )
    print(json.dumps(asyncio.run(watch_for_a_while(json.loads(sys.argv[1])))), flush=True)
