"""Job lifecycle simulation: schedules, stop/delete, outcomes, eventual consistency, laziness."""

from __future__ import annotations

import asyncio
import json
import math
import random
from typing import Any

import anyio
import pytest

from asyncoptjob.mock import Lifecycle, MockSageMaker
from asyncoptjob.mock._sim import Simulation
from asyncoptjob.mock._wire import AwsError
from asyncoptjob.testing import ManualClock

INF = math.inf


def make_sim(clock: ManualClock, seed: int = 1, **lifecycle: Any) -> Simulation:
    return Simulation(lifecycle=Lifecycle(**lifecycle), rng=random.Random(seed), clock=clock.now)


def describe(sim: Simulation, name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(sim.describe(name))
    return result


def test_statuses_follow_the_schedule() -> None:
    clock = ManualClock(1_700_000_000.0)
    t0 = clock.now()
    sim = make_sim(clock, starting=(10, 10), in_progress=(100, 100))
    (name,) = sim.seed(1, outcome="COMPLETED")
    expected = [(t0, "STARTING"), (t0 + 9.9, "STARTING"), (t0 + 10, "INPROGRESS")]
    expected += [(t0 + 109.9, "INPROGRESS"), (t0 + 110, "COMPLETED"), (t0 + 10_000, "COMPLETED")]
    for at, status in expected:
        clock.jump(at - clock.now())
        assert sim.status(name) == status, at - t0
    assert sim.transitions()[name] == [
        ("STARTING", t0),
        ("INPROGRESS", t0 + 10),
        ("COMPLETED", t0 + 110),
    ]
    job = describe(sim, name)
    assert job["CreationTime"] == t0
    assert job["OptimizationStartTime"] == t0 + 10
    assert job["OptimizationEndTime"] == job["LastModifiedTime"] == t0 + 110


def test_time_scale_compresses_durations() -> None:
    clock = ManualClock(1_700_000_000.0)
    sim = make_sim(clock, starting=(60, 60), in_progress=(540, 540), time_scale=1 / 600)
    (name,) = sim.seed(1, outcome="COMPLETED")
    times = [t - clock.now() for _, t in sim.transitions([name], include_future=True)[name]]
    assert times == pytest.approx([0.0, 0.1, 1.0], abs=1e-3)


def test_durations_are_drawn_within_their_ranges() -> None:
    clock = ManualClock(1_700_000_000.0)
    sim = make_sim(clock, starting=(5, 10), in_progress=(20, 30))
    sim.seed(200, outcome="COMPLETED")
    for (_, created), (_, started), (_, ended) in sim.transitions(include_future=True).values():
        assert 5 <= started - created <= 10 + 1e-3
        assert 20 - 1e-3 <= ended - started <= 30 + 1e-3


def test_failure_and_stop_rates() -> None:
    clock = ManualClock(1_700_000_000.0)
    sim = make_sim(clock, seed=5, failure_rate=0.3, stop_rate=0.2)
    sim.seed(2000)
    finals = [t[-1][0] for t in sim.transitions(include_future=True).values()]
    assert finals.count("STOPPED") == pytest.approx(400, rel=0.2)
    # failure_rate applies to the jobs not stopped: 0.3 * 0.8 of all jobs.
    assert finals.count("FAILED") == pytest.approx(480, rel=0.2)
    clock.jump(1e6)
    failed = [n for n, t in sim.transitions().items() if t[-1][0] == "FAILED"]
    assert describe(sim, failed[0])["FailureReason"]
    stopped = sim.transitions()[
        next(n for n, t in sim.transitions().items() if t[-1][0] == "STOPPED")
    ]
    assert [s for s, _ in stopped] == ["STARTING", "INPROGRESS", "STOPPING", "STOPPED"]


@pytest.mark.parametrize("outcome", ["COMPLETED", "FAILED", "STOPPED"])
def test_forced_outcome(outcome: str) -> None:
    clock = ManualClock(1_700_000_000.0)
    sim = make_sim(clock, failure_rate=0.5, stop_rate=0.5)
    sim.seed(20, outcome=outcome)  # type: ignore[arg-type]
    finals = {t[-1][0] for t in sim.transitions(include_future=True).values()}
    assert finals == {outcome}


def test_infinite_phases_never_end() -> None:
    clock = ManualClock(1_700_000_000.0)
    sim = make_sim(clock, starting=(0, 0), in_progress=(1, INF), stop_rate=1.0)
    (name,) = sim.seed(1)
    clock.jump(1e9)
    assert sim.status(name) == "INPROGRESS"
    assert "OptimizationEndTime" not in describe(sim, name)
    assert sim.transitions([name], include_future=True)[name][-1][1] == INF


def test_stop_while_in_progress() -> None:
    clock = ManualClock(1_700_000_000.0)
    t0 = clock.now()
    sim = make_sim(clock, starting=(1, 1), in_progress=(100, 100), stopping=(5, 5))
    (name,) = sim.seed(1, outcome="COMPLETED")
    clock.jump(t0 + 50 - clock.now())
    sim.stop(name)
    assert sim.status(name) == "STOPPING"
    sim.stop(name)  # stopping a STOPPING job changes nothing
    clock.jump(t0 + 55 - clock.now())
    assert sim.status(name) == "STOPPED"
    assert sim.transitions()[name] == [
        ("STARTING", t0),
        ("INPROGRESS", t0 + 1),
        ("STOPPING", t0 + 50),
        ("STOPPED", t0 + 55),
    ]
    job = describe(sim, name)
    assert job["OptimizationStartTime"] == t0 + 1
    assert job["OptimizationEndTime"] == job["LastModifiedTime"] == t0 + 55
    with pytest.raises(AwsError) as info:
        sim.stop(name)
    assert info.value.code == "ValidationException"


def test_stop_while_starting_never_starts() -> None:
    clock = ManualClock(1_700_000_000.0)
    sim = make_sim(clock, starting=(10, 10), stopping=(1, 1))
    (name,) = sim.seed(1)
    sim.stop(name)
    clock.jump(2)
    assert [s for s, _ in sim.transitions()[name]] == ["STARTING", "STOPPING", "STOPPED"]
    assert "OptimizationStartTime" not in describe(sim, name)


def test_delete_forgets_the_job() -> None:
    clock = ManualClock(1_700_000_000.0)
    sim = make_sim(clock)
    first, second = sim.seed(2)
    sim.delete(first)
    assert list(sim.jobs) == [second]
    assert sim.by_name == [second]
    assert [name for _, name in sim.by_created] == [second]
    for call in (sim.describe, sim.stop, sim.delete):
        with pytest.raises(AwsError) as info:
            call(first)
        assert info.value.code == "ResourceNotFound"


def test_not_found_window() -> None:
    clock = ManualClock(1_700_000_000.0)
    sim = make_sim(clock, not_found_for=30, time_scale=0.1)
    (name,) = sim.seed(1)
    clock.jump(2.9)
    with pytest.raises(AwsError) as info:
        sim.describe(name)
    assert info.value.code == "ResourceNotFound"
    clock.jump(0.1)
    assert describe(sim, name)["OptimizationJobName"] == name


def test_same_seed_same_schedules() -> None:
    schedules = []
    for _ in range(2):
        sim = make_sim(ManualClock(1_700_000_000.0), seed=42, failure_rate=0.2, stop_rate=0.1)
        sim.seed(50)
        schedules.append(
            (sim.transitions(include_future=True), [describe(sim, n) for n in sim.jobs])
        )
    assert schedules[0] == schedules[1]
    other = make_sim(ManualClock(1_700_000_000.0), seed=43, failure_rate=0.2, stop_rate=0.1)
    other.seed(50)
    assert other.transitions(include_future=True) != schedules[0][0]


def test_seed_names_continue_per_prefix() -> None:
    sim = make_sim(ManualClock(1_700_000_000.0))
    assert sim.seed(2) == ["job-00000", "job-00001"]
    assert sim.seed(1, prefix="other") == ["other-00000"]
    assert sim.seed(1) == ["job-00002"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"count": -1}, "count"),
        ({"count": 1, "prefix": "bad_prefix"}, "prefix"),
        ({"count": 1, "prefix": "x" * 60}, "prefix"),
        ({"count": 1, "outcome": "DONE"}, "outcome"),
    ],
)
def test_seed_rejects_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make_sim(ManualClock(1_700_000_000.0)).seed(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"starting": (5, 1)}, "starting"),
        ({"in_progress": (-1, 1)}, "in_progress"),
        ({"stopping": (1,)}, "stopping"),
        ({"stopping": (math.nan, 1)}, "stopping"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"stop_rate": -0.1}, "stop_rate"),
        ({"not_found_for": -1}, "not_found_for"),
        ({"time_scale": 0}, "time_scale"),
        ({"time_scale": INF}, "time_scale"),
    ],
)
def test_lifecycle_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Lifecycle(**kwargs)


def test_lifecycle_round_trips_through_json() -> None:
    lifecycle = Lifecycle(starting=(1, 2), in_progress=(3, INF), failure_rate=0.25, time_scale=0.5)
    data = json.loads(json.dumps(lifecycle.to_dict()))
    assert data["in_progress"] == [3.0, "inf"]
    assert Lifecycle.from_mapping(data) == lifecycle
    assert Lifecycle.from_mapping({"starting": [0, None]}).starting == (0.0, INF)
    with pytest.raises(ValueError, match="unknown lifecycle field"):
        Lifecycle.from_mapping({"startup": [1, 2]})
    with pytest.raises(ValueError, match="starting"):
        Lifecycle.from_mapping({"starting": ["soon", 2]})


async def test_many_seeded_jobs_start_no_tasks() -> None:
    async with MockSageMaker(seed=1) as mock:
        before = len(asyncio.all_tasks())
        mock.seed_jobs(20_000)
        await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == before
        assert mock.stats().statuses["STARTING"] == 20_000


async def test_lifecycle_progresses_in_real_time(aio_client: Any, mock: MockSageMaker) -> None:
    names = mock.seed_jobs(
        5,
        lifecycle=Lifecycle(
            starting=(0.02, 0.05), in_progress=(0.05, 0.1), stopping=(0.02, 0.05), stop_rate=0.4
        ),
    )
    with anyio.fail_after(5):
        while any(mock.status(n) not in ("COMPLETED", "STOPPED") for n in names):
            await asyncio.sleep(0.02)
    for name in names:
        job = await aio_client.describe_optimization_job(OptimizationJobName=name)
        assert job["OptimizationJobStatus"] == mock.status(name)
        true_end = mock.transitions([name])[name][-1][1]
        assert job["LastModifiedTime"].timestamp() == pytest.approx(true_end, abs=1e-3)
