"""Scheduler and rate limiter on a fake clock: ordering, no starvation, rate bounds."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncoptjob import AdaptiveRateLimiter, JobStatus, PollPolicy
from asyncoptjob._ratelimit import MIN_BURST
from asyncoptjob._scheduler import DueQueue
from asyncoptjob.testing import ManualClock
from tests.helpers import QueueItem


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.floats(0, 100, allow_nan=False)), max_size=80))
def test_due_queue_pops_in_due_order_and_keeps_only_the_latest_schedule(
    ops: list[tuple[int, float]],
) -> None:
    queue: DueQueue[QueueItem] = DueQueue()
    items: dict[int, QueueItem] = {}
    latest: dict[int, float] = {}
    for name, due in ops:
        item = items.setdefault(name, QueueItem(name))
        queue.push(item, due)
        latest[name] = due
    assert len(queue) == len(latest)
    popped: list[tuple[float, int]] = []
    while (item := queue.pop_due(math.inf)) is not None:
        popped.append((latest[item.name], item.name))
    assert [due for due, _ in popped] == sorted(latest.values())
    assert sorted(name for _, name in popped) == sorted(latest)
    assert len(queue) == 0
    assert queue.next_due() is None


@settings(deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=60),
    st.sets(st.integers(0, 30), max_size=10),
)
def test_due_queue_discard_and_not_yet_due(names: list[int], dropped: set[int]) -> None:
    queue: DueQueue[QueueItem] = DueQueue()
    items = {n: QueueItem(n) for n in names}
    for n, item in items.items():
        queue.push(item, float(n))
    for n in dropped & set(items):
        queue.discard(items[n])
    assert queue.pop_due(-1.0) is None  # nothing is due before its time
    remaining = sorted(set(items) - dropped)
    out = []
    while (item := queue.pop_due(100.0)) is not None:
        out.append(item.name)
    assert out == remaining


@settings(deadline=None, max_examples=60)
@given(
    n_jobs=st.integers(1, 40),
    workers=st.integers(1, 4),
    rounds=st.integers(5, 40),
    seed=st.integers(0, 10_000),
)
def test_no_job_starves_when_capacity_is_scarce(
    n_jobs: int, workers: int, rounds: int, seed: int
) -> None:
    """Earliest-due first: with fewer polls than jobs, every job still gets its turn."""
    rng = random.Random(seed)
    policy = PollPolicy(interval=1.0, max_interval=4.0, jitter=0.5)
    queue: DueQueue[QueueItem] = DueQueue()
    items = [QueueItem(i) for i in range(n_jobs)]
    for item in items:
        queue.push(item, 0.0)
    now = 0.0
    last_polled = dict.fromkeys(range(n_jobs), 0.0)
    worst_wait = 0.0
    polls = 0
    for _ in range(rounds * n_jobs):
        # A fixed capacity of `workers` polls per time unit, whatever is due.
        for _ in range(workers):
            item = queue.pop_due(now)
            if item is None:
                break
            polls += 1
            worst_wait = max(worst_wait, now - last_polled[item.name])
            last_polled[item.name] = now
            queue.push(item, now + policy.next_delay(JobStatus.INPROGRESS, polls, rng))
        now += 1.0
    # Every job was polled, and no job waited longer than one full sweep of all
    # jobs at this capacity plus its own longest interval.
    bound = math.ceil(n_jobs / workers) + 4.0 + 1.0
    assert worst_wait <= bound
    assert all(t > 0 for t in last_polled.values()) or rounds * n_jobs < n_jobs


def windows_ok(times: list[float], rate: float, burst: float) -> bool:
    """True if every window [t_i, t_j] holds at most rate * (t_j - t_i) + burst starts."""
    times = sorted(times)
    for i in range(len(times)):
        for j in range(i, len(times)):
            if j - i + 1 > rate * (times[j] - times[i]) + burst + 1e-9:
                return False
    return True


@settings(deadline=None, max_examples=80)
@given(
    max_rate=st.floats(0.5, 200),
    burst=st.one_of(st.none(), st.floats(1, 20)),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=60),
)
async def test_rate_never_above_max_rate_plus_burst(
    max_rate: float, burst: float | None, gaps: list[float]
) -> None:
    clock = ManualClock(1000.0, autojump=True)
    limiter = AdaptiveRateLimiter(max_rate=max_rate, burst=burst, clock=clock)
    starts = []
    for gap in gaps:
        clock.jump(gap)
        await limiter.acquire()
        starts.append(clock.now())
    capacity = burst if burst is not None else max(MIN_BURST, max_rate * 0.05)
    assert windows_ok(starts, max_rate, capacity)


@settings(deadline=None, max_examples=60)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(["ok", "throttle", "wait"]), st.floats(0, 1)),
        min_size=1,
        max_size=80,
    )
)
async def test_adaptive_rate_stays_within_its_bounds(events: list[tuple[str, float]]) -> None:
    """Whatever the mix of throttles and successes: min_rate <= rate <= max_rate."""
    clock = ManualClock(1000.0, autojump=True)
    limiter = AdaptiveRateLimiter(max_rate=50, min_rate=0.5, clock=clock)
    for kind, gap in events:
        clock.jump(gap)
        if kind == "ok":
            await limiter.acquire()
            limiter.on_success()
        elif kind == "throttle":
            limiter.on_throttle(clock.now())
        rate = limiter.rate
        assert rate is not None
        assert 0.5 - 1e-9 <= rate <= 50 + 1e-9


async def test_throttle_cuts_once_per_congestion_event_then_recovers() -> None:
    clock = ManualClock(1000.0, autojump=True)
    limiter = AdaptiveRateLimiter(clock=clock)
    assert limiter.rate is None  # nothing limits before the first throttle (like botocore)
    sent_at = []
    for _ in range(200):  # 100 requests/s for 2 s, all accepted
        await limiter.acquire()
        sent_at.append(clock.now())
        limiter.on_success()
        clock.jump(0.01)
    limiter.on_throttle(clock.now() - 0.001)
    first = limiter.rate
    assert first is not None
    assert first == pytest.approx(0.7 * 100, rel=0.1)  # beta * measured rate
    # Throttles of requests sent before the cut are the same congestion event.
    for t in sent_at[-10:]:
        limiter.on_throttle(t)
    assert limiter.statistics().cuts == 1
    assert limiter.statistics().throttles == 11
    # A new throttle after the cut does cut again.
    clock.jump(0.1)
    limiter.on_throttle(clock.now())
    assert limiter.statistics().cuts == 2
    low = limiter.rate
    assert low is not None
    assert low < first
    # CUBIC growth: back to the old maximum after K seconds, and beyond it later.
    clock.jump(10)
    recovered = limiter.rate
    assert recovered is not None
    assert recovered > first


async def test_acquire_waits_for_tokens_on_the_clock() -> None:
    clock = ManualClock(1000.0, autojump=True)
    limiter = AdaptiveRateLimiter(max_rate=10, burst=1, clock=clock)
    start = clock.now()
    for _ in range(11):
        await limiter.acquire()
    # One token at start, then one every 0.1 s.
    assert clock.now() - start == pytest.approx(1.0, abs=1e-6)
    assert limiter.statistics().acquired == 11


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_rate": 0}, "max_rate"),
        ({"burst": 0.5}, "burst"),
        ({"min_rate": -1}, "min_rate"),
        ({"beta": 1.5}, "beta"),
        ({"scale": 0}, "scale"),
    ],
)
def test_limiter_validation(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AdaptiveRateLimiter(**kwargs)


async def test_slow_start_grows_with_answers_until_the_first_throttle() -> None:
    clock = ManualClock(1000.0, autojump=True)
    limiter = AdaptiveRateLimiter(initial_rate=5, clock=clock)
    assert limiter.rate == 5  # polite from the first request, not unlimited
    for _ in range(40):  # every request waits for its token: the rate is what binds
        await limiter.acquire()
        limiter.on_success()
    grown = limiter.rate
    assert grown is not None
    assert grown > 2 * 5  # doubled at least once on accepted requests
    # Answers while the rate does not bind (nobody waits) prove nothing: no growth.
    clock.jump(10)
    for _ in range(10):
        limiter.on_success()
    assert limiter.rate == grown
    # The first throttle ends the slow start: CUBIC from a fraction of the rate.
    limiter.on_throttle(clock.now())
    cut = limiter.rate
    assert cut is not None
    assert cut < grown
    assert limiter.statistics().cuts == 1


async def test_a_limit_found_in_the_same_place_is_probed_more_gently() -> None:
    def probe_after(cuts: int) -> float:
        clock = ManualClock(1000.0, autojump=True)
        limiter = AdaptiveRateLimiter(clock=clock)
        for _ in range(cuts):
            for _ in range(100):  # 50 requests/s accepted for 2 s
                limiter.on_success()
                clock.jump(0.02)
            limiter.on_throttle(clock.now())
        clock.jump(8)  # past K: probing above the learned maximum
        rate = limiter.rate
        assert rate is not None
        return rate

    # The same limit found again: the probe above it grows more slowly.
    assert probe_after(3) < probe_after(1)
