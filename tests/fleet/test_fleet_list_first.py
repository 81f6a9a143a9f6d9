"""``SweepPolicy(confirm="terminal")`` in a fleet: the sweep-lease holder's findings (the
List entries themselves) reach every replica, which turns non-terminal changes into events
with no describe of its own; terminal changes are described once, by the job's lease
holder; re-lists are the holder's duty for the whole fleet. Checked under List's lag, its
empty pages with a ``NextToken``, a job List never shows and a job deleted while watched.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from asyncoptjob import Event, JobErrorEvent, JobNotFoundError, Poller, StatusChange, SweepPolicy
from asyncoptjob._operations import LIST
from asyncoptjob.mock import Faults, Lifecycle, MockSageMaker
from asyncoptjob.testing import RedisServer, check_events
from tests.fleet.test_fleet_events import collect, counting, fleet_opts
from tests.helpers import RecordingTransport


def list_first(**policy: Any) -> dict[str, Any]:
    sweep = SweepPolicy(
        **{
            "interval": 0.05,
            "overlap": 1.0,
            "safety_interval": 0.5,
            "max_rate": None,
            "confirm": "terminal",
            **policy,
        }
    )
    return {"strategy": "sweep", "sweep": sweep}


async def run_two(
    mock: MockSageMaker,
    redis_server: RedisServer,
    aio_session: Any,
    watched: Mapping[str, Sequence[str]],
    **options: Any,
) -> tuple[dict[str, list[Event]], dict[str, RecordingTransport]]:
    """Two replicas of one fleet watch their jobs to the end; their events and calls."""
    prefix = f"t-{secrets.token_hex(4)}"
    results: dict[str, list[Event]] = {}
    async with (
        counting(mock, aio_session) as ta,
        counting(mock, aio_session) as tb,
        Poller(transport=ta, **fleet_opts(redis_server, prefix, **options)) as a,
        Poller(transport=tb, **fleet_opts(redis_server, prefix, **options)) as b,
    ):

        async def run(key: str, poller: Poller) -> None:
            results[key] = await collect(poller, list(watched[key]))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "a", a)
            tg.start_soon(run, "b", b)
    return results, {"a": ta, "b": tb}


def check_list_first(
    mock: MockSageMaker, results: Mapping[str, list[Event]], watched: Mapping[str, Sequence[str]]
) -> dict[str, int]:
    """Every invariant, per replica; returns how many events each took from List."""
    names = sorted({name for group in watched.values() for name in group})
    truth = mock.transitions(names)
    from_list = {}
    for key, jobs in watched.items():
        by_job = check_events(results[key], list(jobs))
        from_list[key] = 0
        for name, seq in by_job.items():
            last = seq[-1]
            assert isinstance(last, StatusChange), name
            assert last.status == truth[name][-1][0]
            assert last.source == "describe"  # a final event carries the full description
            for event in seq:
                assert isinstance(event, StatusChange)
                if event.source == "list":
                    assert not event.status.is_terminal
                    assert event.summary is not None
                    from_list[key] += 1
    return from_list


def relists(transport: RecordingTransport) -> int:
    return sum(
        1
        for request in transport.requests
        if request.operation == LIST and "CreationTimeAfter" in request.params
    )


async def test_two_replicas_list_first_keep_every_invariant(
    redis_server: RedisServer, aio_session: Any
) -> None:
    lifecycle = Lifecycle(starting=(0.3, 0.5), in_progress=(0.8, 1.4), failure_rate=0.3)
    faults = Faults(list_lag=0.2, empty_list_pages=2)
    async with MockSageMaker(seed=61, lifecycle=lifecycle, faults=faults) as mock:
        names = mock.seed_jobs(24)
        watched = {"a": names[:16], "b": names[8:]}  # 8 jobs watched by both
        results, _ = await run_two(mock, redis_server, aio_session, watched, **list_first())
        from_list = check_list_first(mock, results, watched)
        # The holder's List entries reached both replicas, whichever held the lease.
        assert min(from_list.values()) > 0, from_list


async def test_non_holders_describe_no_non_terminal_change(
    redis_server: RedisServer, aio_session: Any
) -> None:
    # Jobs a few sweeps long: every change after the first look reaches every replica
    # from the holder's List entries. What is left to describe, fleet-wide, is each job's
    # terminal change (once, by its lease holder) and the first looks no sweep answered;
    # with confirm="change" every change costs a describe.
    lifecycle = Lifecycle(starting=(0.4, 0.6), in_progress=(0.8, 1.2), failure_rate=0.3)
    describes = {}
    for confirm in ("change", "terminal"):
        async with MockSageMaker(seed=62, lifecycle=lifecycle) as mock:
            names = mock.seed_jobs(30)
            watched = {"a": names[:20], "b": names[10:]}
            options = list_first(confirm=confirm, safety_interval=30)
            results, _ = await run_two(mock, redis_server, aio_session, watched, **options)
            check_events(results["a"], watched["a"])
            check_events(results["b"], watched["b"])
            describes[confirm] = mock.stats().count("DescribeOptimizationJob")
            if confirm == "terminal":
                from_list = check_list_first(mock, results, watched)
                assert min(from_list.values()) > 0, from_list
                firsts = {
                    name
                    for key, events in results.items()
                    for name, seq in check_events(events, watched[key]).items()
                    if isinstance(seq[0], StatusChange)
                    and seq[0].source == "describe"
                    and not seq[0].status.is_terminal
                }
                # One terminal describe per job, one per first look no sweep answered, and
                # a few first looks whose answer lost the race to the holder's List entry.
                bound = len(names) + len(firsts) + len(names) // 10
                assert describes[confirm] <= bound, (describes, firsts)
    assert describes["terminal"] < describes["change"], describes


async def test_a_job_list_never_shows_is_caught_by_the_holder_s_re_list(
    redis_server: RedisServer, aio_session: Any
) -> None:
    # One job is missing from List for good. Only the sweep-lease holder re-lists (for
    # every replica); the job's owner describes it once the re-list did not show it, so
    # its terminal change is found long before the 3x backstop would.
    lifecycle = Lifecycle(starting=(0.2, 0.3), in_progress=(1.0, 1.5), failure_rate=0.3)
    async with MockSageMaker(seed=63, lifecycle=lifecycle) as mock:
        names = mock.seed_jobs(16)
        hidden = names[3]
        mock.faults.update(list_hidden_jobs=[hidden], list_lag=0.1, empty_list_pages=1)
        watched = {"a": names[:10], "b": names[6:]}
        watched["b"] = [*watched["b"], hidden]
        options = list_first(safety_interval=0.4)
        results, transports = await run_two(mock, redis_server, aio_session, watched, **options)
        check_list_first(mock, results, watched)
        for key in ("a", "b"):
            seq = [e for e in results[key] if e.job_name == hidden]
            assert all(isinstance(e, StatusChange) and e.source == "describe" for e in seq)
        by_replica = {key: relists(t) for key, t in transports.items()}
        assert sum(by_replica.values()) > 0
        # Re-lists are one replica's duty at a time, not each replica's own.
        assert min(by_replica.values()) <= max(1, max(by_replica.values()) // 4), by_replica


async def test_a_job_deleted_while_watched_by_a_fleet_gets_not_found_everywhere(
    redis_server: RedisServer, aio_session: Any, make_aio_client: Any
) -> None:
    lifecycle = Lifecycle(starting=(0.05, 0.05), in_progress=(30, 30))
    async with MockSageMaker(seed=64, lifecycle=lifecycle, faults=Faults(list_lag=0.1)) as mock:
        names = mock.seed_jobs(3)
        doomed = names[0]
        prefix = f"t-{secrets.token_hex(4)}"
        options = list_first(safety_interval=0.3)
        results: dict[str, list[Event]] = {"a": [], "b": []}
        async with (
            counting(mock, aio_session) as ta,
            counting(mock, aio_session) as tb,
            Poller(transport=ta, **fleet_opts(redis_server, prefix, **options)) as a,
            Poller(transport=tb, **fleet_opts(redis_server, prefix, **options)) as b,
        ):
            deleted = anyio.Event()

            async def run(key: str, poller: Poller) -> None:
                async for event in poller.watch(doomed, timeout=30):
                    results[key].append(event)
                    if key == "a" and not deleted.is_set():
                        async with make_aio_client(mock.url) as client:
                            await client.delete_optimization_job(OptimizationJobName=doomed)
                        deleted.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(run, "a", a)
                tg.start_soon(run, "b", b)
        for key in ("a", "b"):
            check_events(results[key], [doomed])
            last = results[key][-1]
            assert isinstance(last, JobErrorEvent), (key, results[key])
            assert isinstance(last.error, JobNotFoundError)
