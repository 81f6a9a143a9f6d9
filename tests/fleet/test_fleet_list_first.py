"""``SweepPolicy(confirm="terminal")`` in a fleet: the sweep-lease holder's findings reach
every replica, under List's lag and its empty pages with a ``NextToken``."""

from __future__ import annotations

import secrets
from typing import Any

import anyio

from asyncoptjob import Event, Poller, StatusChange, SweepPolicy
from asyncoptjob.mock import Faults, Lifecycle, MockSageMaker
from asyncoptjob.testing import RedisServer, check_events
from tests.fleet.test_fleet_events import collect, counting, fleet_opts


async def test_two_replicas_list_first_keep_every_invariant(
    redis_server: RedisServer, aio_session: Any
) -> None:
    prefix = f"t-{secrets.token_hex(4)}"
    lifecycle = Lifecycle(starting=(0.3, 0.5), in_progress=(0.8, 1.4), failure_rate=0.3)
    faults = Faults(list_lag=0.2, empty_list_pages=2)
    sweep = SweepPolicy(
        interval=0.05, overlap=1.0, safety_interval=0.5, max_rate=None, confirm="terminal"
    )
    options = {"strategy": "sweep", "sweep": sweep}
    async with MockSageMaker(seed=61, lifecycle=lifecycle, faults=faults) as mock:
        names = mock.seed_jobs(24)
        a_names, b_names = names[:16], names[8:]  # 8 jobs watched by both
        results: dict[str, list[Event]] = {}
        async with (
            counting(mock, aio_session) as ta,
            counting(mock, aio_session) as tb,
            Poller(transport=ta, **fleet_opts(redis_server, prefix, **options)) as a,
            Poller(transport=tb, **fleet_opts(redis_server, prefix, **options)) as b,
        ):

            async def run(key: str, poller: Poller, watched: list[str]) -> None:
                results[key] = await collect(poller, watched)

            async with anyio.create_task_group() as tg:
                tg.start_soon(run, "a", a, a_names)
                tg.start_soon(run, "b", b, b_names)
        truth = mock.transitions(names)
        for key, watched in (("a", a_names), ("b", b_names)):
            by_job = check_events(results[key], watched)
            for name, seq in by_job.items():
                last = seq[-1]
                assert isinstance(last, StatusChange), name
                assert last.status == truth[name][-1][0]
                assert last.source == "describe"
