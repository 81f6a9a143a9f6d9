"""A lease taken over, unit by unit: two fleet members on a real Redis, a recording host."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from asyncoptjob import JobStatus, PollPolicy
from asyncoptjob._coordination import Claim, Solo
from asyncoptjob._errors import TransportError
from asyncoptjob._events import Description
from asyncoptjob._fleet import Fleet
from asyncoptjob._hub import Hub
from asyncoptjob._options import resolve_options
from asyncoptjob._ratelimit import AdaptiveRateLimiter
from asyncoptjob._watch import subscribed
from asyncoptjob._wiring import open_hub
from asyncoptjob.testing import FakeTransport, ManualClock, RedisServer, ScriptedJobs
from tests.fleet.members import two_members
from tests.helpers import wait_until


class NoListings:
    """A hub's listings with sweeps off (nothing re-lists, nothing is found)."""

    lists_first = False

    def found(self, summary: Any, *, relisted: bool = False) -> None:
        raise AssertionError("no sweeps here")

    async def oldest_created(self) -> float | None:
        return None

    def relist_begin(self) -> None:
        pass

    async def relist_done(self) -> None:
        pass

    async def relisted(self, shown: set[str], started: float) -> None:
        pass


class RecordingHost:
    """A hub that watches ``names``, knows no status of them yet, and records calls."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = set(names)
        self.status: dict[str, JobStatus] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.listings = NoListings()

    def watched(self) -> Collection[str]:
        return self.names

    def wants(self, name: str, status: str) -> bool:
        known = self.status.get(name)
        return known is None or JobStatus(status).rank > known.rank

    def apply_remote(self, name: str, description: Description) -> None:
        self.status[name] = JobStatus(description["OptimizationJobStatus"])
        self.calls.append(("apply_remote", name, description["OptimizationJobStatus"]))

    def apply_remote_error(self, name: str, error: TransportError) -> None:
        self.calls.append(("apply_remote_error", name, error))

    def hint(self, name: str, status: str) -> None:
        self.calls.append(("hint", name, status))

    def ownership_widened(self) -> None:
        self.calls.append(("ownership_widened", "", None))

    def lease_gained(self, name: str, age: float | None) -> None:
        # What the hub schedules from: the status it knows now, and the fleet's last look.
        self.calls.append(("lease_gained", name, (self.status.get(name), age)))

    def in_flight(self, name: str) -> bool:
        return False


async def test_a_lease_taken_over_brings_the_fleet_s_status_before_scheduling(
    redis_server: RedisServer,
) -> None:
    # ``a`` described the job and published its status, then handed the lease back; the
    # stream entry has not reached ``b`` (its reader is not running here, as on a busy
    # machine). Taking the lease, ``b`` must know the status before it schedules the job,
    # or a job with no status here would be described at once, right after ``a`` did.
    async with two_members(redis_server, f"t-{secrets.token_hex(4)}", None) as (a, b):
        name = "job-handed-over"
        description: Any = {"OptimizationJobName": name, "OptimizationJobStatus": "INPROGRESS"}
        assert await a.link.store.publish(name, "INPROGRESS", description)
        host = RecordingHost({name})
        await b._renew(host)
        assert [call[:2] for call in host.calls] == [
            ("apply_remote", name),
            ("lease_gained", name),
        ]
        status, age = host.calls[1][2]
        assert status is JobStatus.INPROGRESS
        assert age is not None
        assert age >= 0
        assert b.owns(name)


async def holder(fleet: Fleet, name: str) -> str | None:
    """Who holds ``name``'s lease in Redis."""
    value: str | None = await fleet.link.store.redis.get(fleet.link.keys.lease(name))
    return value


async def attach(fleet: Fleet, host: RecordingHost, names: list[str]) -> None:
    """What the hub does with the claims of jobs a subscriber attached, recorded."""
    for claim in await fleet.attach(names):
        if claim.description is not None:
            host.apply_remote(claim.name, claim.description)
        if claim.gained:
            host.lease_gained(claim.name, claim.age)


async def shed_one(b: Fleet, host: RecordingHost, names: list[str]) -> str:
    """``b`` holds ``names``' leases, one over its even share, and sheds one."""
    await attach(b, host, names)
    assert b.owned == set(names)
    b.link.members, b.leases.fleet_leases = 2, 2  # an even share of 1: one lease too many
    assert b.leases.shed(host.in_flight) == 1
    (shed,) = b.leases.released
    host.calls.clear()
    return shed


@pytest.mark.parametrize("when", ["before the release", "during the release"])
async def test_a_subscriber_attaching_a_lease_being_handed_back_leaves_one_poller(
    redis_server: RedisServer, when: str
) -> None:
    # ``b`` sheds a lease for balance and hands it back; a second subscriber attaches the
    # job meanwhile. Whatever the order, ``b`` polls the job exactly when Redis says the
    # lease is ``b``'s (before the fix, ``b`` took the lease as gained from a claim that
    # found it still ``b``'s, then the release freed it for another process: two pollers).
    async with two_members(redis_server, f"t-{secrets.token_hex(4)}", None) as (a, b):
        names = ["job-a", "job-b", "job-c"]
        host = RecordingHost(names)
        shed = await shed_one(b, host, names)
        if when == "before the release":
            await attach(b, host, [shed])
            async with b.leases.lock:
                await b.leases.release()
        else:
            releasing = anyio.Event()

            async def release() -> None:
                async with b.leases.lock:
                    releasing.set()
                    await b.leases.release()

            async with anyio.create_task_group() as tg:
                tg.start_soon(release)
                await releasing.wait()
                await attach(b, host, [shed])  # waits for the release, then claims afresh
        assert b.owns(shed)
        assert await holder(b, shed) == b.link.id
        assert ("lease_gained", shed) in [call[:2] for call in host.calls]
        assert await a.link.store.claim([shed], 3.0) == [0]  # held: ``a`` does not poll it


class LeaseSwitch(Solo):
    """The coordination as the hub sees it, reduced to one switch: which jobs are ours."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(AdaptiveRateLimiter(clock=clock), AdaptiveRateLimiter(clock=clock))
        self.owned: set[str] = set()

    def owns(self, name: str) -> bool:
        return name in self.owned

    async def attach(self, names: Sequence[str]) -> Sequence[Claim]:
        return [Claim(name, gained=False) for name in names]  # the test hands leases over

    def forget(self, name: str) -> None:
        self.owned.discard(name)


async def test_a_sweep_s_hint_survives_the_lease_moving_here() -> None:
    # A sweep lists a job's new status while another process holds its lease; that
    # process hands the lease over before it describes the job. The new holder heard the
    # hint too: it must describe the job at once, not at its (slow, safety-net) routine
    # time counted from the last look. Virtual time: nothing moves unless the test says.
    clock = ManualClock()
    jobs = ScriptedJobs(clock, {"job-x": [(0, "INPROGRESS"), (5, "COMPLETED")]})
    transport = FakeTransport(jobs)
    options = resolve_options(
        {
            "transport": transport,
            "clock": clock,
            "poll_interval": PollPolicy(interval=60, backoff=1.0, jitter=0.0),
            "strategy": "describe",
            "initial_rate": None,
        }
    )
    fleet = LeaseSwitch(clock)
    async with AsyncExitStack() as stack:
        hub = (await open_hub(stack, options, coordination=fleet)).hub
        await _hint_across_a_lease_move(hub, fleet, clock, transport)


async def _hint_across_a_lease_move(
    hub: Hub, fleet: LeaseSwitch, clock: ManualClock, transport: FakeTransport
) -> None:
    seen: list[Any] = []

    async def consume() -> None:
        async for event in subscribed(hub, ["job-x"], None):
            seen.append(event)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await wait_until(lambda: "job-x" in hub.jobs, what="subscribed")
        fleet.owned.add("job-x")
        hub.lease_gained("job-x", None)  # ours: described at once
        await wait_until(lambda: len(seen) == 1, what="first status")
        assert seen[0].status is JobStatus.INPROGRESS
        fleet.owned.clear()  # the lease moves away
        await clock.advance(6)
        hub.hint("job-x", "COMPLETED")  # heard here, polled elsewhere: skipped
        await wait_until(lambda: hub.pacer.workers.queue.next_due() is None, what="hint skipped")
        assert transport.count(job_name="job-x") == 1
        fleet.owned.add("job-x")  # handed back before the other process described it
        hub.lease_gained("job-x", 0.0)
        await wait_until(lambda: len(seen) == 2, what="the hinted status")
        tg.cancel_scope.cancel()
    assert seen[1].status is JobStatus.COMPLETED
    assert transport.count(job_name="job-x") == 2
    assert clock.now() == 6  # at once, not 60 virtual seconds later
