"""PollPolicy: when each job is next polled, alone and as a Poller follows it."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncoptjob import JobStatus, Poller, PollPolicy
from asyncoptjob.testing import FakeRequest, FakeTransport, ManualClock, ScriptedJobs


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": 10, "max_interval": 5}, "max_interval"),
        ({"backoff": 0.5}, "backoff"),
        ({"jitter": 1.5}, "jitter"),
        ({"status_intervals": {"RUNNING": 3}}, "status_intervals"),
        ({"status_intervals": {"STARTING": -1}}, "status_intervals"),
    ],
)
def test_poll_policy_validation(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        PollPolicy(**kwargs)  # type: ignore[arg-type]


def test_poll_policy_backs_off_caps_and_resets() -> None:
    rng = random.Random(0)
    policy = PollPolicy(
        interval=10,
        max_interval=40,
        backoff=2,
        jitter=0,
        status_intervals={"STARTING": 5},
    )
    assert [policy.next_delay(JobStatus.INPROGRESS, n, rng) for n in range(4)] == [10, 20, 40, 40]
    assert policy.next_delay(JobStatus.STARTING, 0, rng) == 5
    assert policy.next_delay(JobStatus.INPROGRESS, 10_000, rng) == 40  # no overflow
    assert PollPolicy.from_interval(30).max_interval == 180


@settings(deadline=None)
@given(
    jitter=st.floats(0, 1),
    unchanged=st.integers(0, 100),
    seed=st.integers(0, 2**32),
)
def test_jitter_only_shortens_a_delay_by_at_most_its_fraction(
    jitter: float, unchanged: int, seed: int
) -> None:
    steady = PollPolicy(interval=10, max_interval=60, backoff=1.5, jitter=0)
    jittered = PollPolicy(interval=10, max_interval=60, backoff=1.5, jitter=jitter)
    full = steady.next_delay(JobStatus.INPROGRESS, unchanged, random.Random(seed))
    delay = jittered.next_delay(JobStatus.INPROGRESS, unchanged, random.Random(seed))
    assert full * (1 - jitter) <= delay <= full


def test_a_status_interval_longer_than_max_interval_is_kept_not_capped() -> None:
    policy = PollPolicy(interval=10, max_interval=60, jitter=0, status_intervals={"STARTING": 300})
    rng = random.Random(0)
    assert [policy.next_delay(JobStatus.STARTING, n, rng) for n in range(3)] == [300] * 3
    assert policy.next_delay(JobStatus.INPROGRESS, 100, rng) == 60
    assert policy.next_delay(None, 0, rng) == 10  # never seen: the base interval


def test_unknown_jobs_are_asked_about_at_most_every_two_seconds_by_default() -> None:
    assert PollPolicy(interval=60).not_found_interval == 2
    assert PollPolicy(interval=0.5).not_found_interval == 0.5
    assert PollPolicy(interval=60, not_found_interval=10).not_found_interval == 10


async def test_a_poller_describes_each_job_when_its_policy_says() -> None:
    clock = ManualClock(autojump=True)
    script = [(0, "STARTING"), (100, "INPROGRESS"), (400, "COMPLETED")]
    jobs = ScriptedJobs(clock, {"job-a": script})
    seen: list[tuple[float, str]] = []

    def handler(request: FakeRequest) -> object:
        answer = jobs(request)
        seen.append((clock.now(), answer["OptimizationJobStatus"]))  # type: ignore[index]
        return answer

    policy = PollPolicy(interval=10, max_interval=40, backoff=2, jitter=0)
    async with Poller(transport=FakeTransport(handler), clock=clock, poll_interval=policy) as p:
        await p.wait_until_done("job-a")
    # Each gap is the policy's delay after what that describe saw: backing off while the
    # status stands still, back to the base interval after every change.
    statuses = [status for _, status in seen]
    expected, unchanged = [], 0
    for i, status in enumerate(statuses[:-1]):
        unchanged = unchanged + 1 if i and status == statuses[i - 1] else 0
        expected.append(policy.next_delay(JobStatus(status), unchanged, random.Random(0)))
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(seen)]
    assert gaps == expected
    assert statuses[-1] == "COMPLETED"
    assert min(gaps) < max(gaps)  # it backed off, and reset on the change
