"""The rate meters alone, on a manual clock."""

from __future__ import annotations

import math

import pytest

from asyncoptjob._ratelimit._meter import (
    MIN_BETWEEN,
    MIN_ELAPSED,
    USED_SHARE,
    WINDOW,
    RateMeter,
    SinceCut,
)
from asyncoptjob.testing import ManualClock


async def accept(meter: RateMeter, clock: ManualClock, count: int, every: float) -> None:
    for _ in range(count):
        await clock.advance(every)
        meter.accepted(clock.now())


async def test_a_closed_window_gives_the_rate_until_the_next_one_closes() -> None:
    clock = ManualClock()
    meter = RateMeter(clock.now())
    rate = 20
    await accept(meter, clock, rate, WINDOW / rate)  # the first window closes
    first = meter.rate(clock.now())
    # The answer that closes a window counts in the next one.
    assert first == pytest.approx((rate - 1) / WINDOW)
    await accept(meter, clock, 4, WINDOW / 5)  # slower, but the next window is still open
    assert meter.rate(clock.now()) == first
    await accept(meter, clock, 2, WINDOW / 5)  # now it closes
    assert meter.rate(clock.now()) < first


async def test_before_the_first_window_closes_the_rate_counts_so_far() -> None:
    clock = ManualClock()
    meter = RateMeter(clock.now())
    meter.accepted(clock.now())
    # A success in the first instant is not an infinite rate.
    assert meter.rate(clock.now()) == 1 / MIN_ELAPSED
    await accept(meter, clock, 4, WINDOW / 8)
    assert meter.rate(clock.now()) == pytest.approx(5 / (WINDOW / 2))


async def test_a_guess_is_the_lower_of_the_rate_allowed_and_the_rate_accepted() -> None:
    clock = ManualClock()
    meter = RateMeter(clock.now())
    await accept(meter, clock, 8, WINDOW / 4)  # 4/s closes the first window
    accepted = meter.rate(clock.now())
    assert meter.guess(clock.now(), 2 * accepted) == accepted
    assert meter.guess(clock.now(), accepted / 2) == accepted / 2
    assert meter.guess(clock.now(), None) == accepted


async def test_with_nothing_accepted_the_guess_is_the_rate_requests_went_out_at() -> None:
    clock = ManualClock()
    meter = RateMeter(clock.now())
    for _ in range(6):
        meter.sent()
    await clock.advance(WINDOW / 2)  # counted over a whole window at least
    assert meter.guess(clock.now(), None) == 6 / WINDOW
    await clock.advance(WINDOW)
    assert meter.guess(clock.now(), None) == pytest.approx(6 / (1.5 * WINDOW))


def since_cut_at(at: float, successes: int, offered: float) -> SinceCut:
    measure = SinceCut()
    measure.cut(at)
    for _ in range(successes):
        measure.accepted(at)
    measure.offered = offered
    return measure


def test_answers_to_requests_sent_before_the_cut_do_not_count() -> None:
    measure = SinceCut()
    assert not measure.stale(-1e9)  # no cut yet: nothing is stale
    measure.cut(10.0)
    measure.accepted(9.9)
    measure.accepted(None)  # unknown send time: counted
    measure.accepted(10.0)
    assert measure.successes == 2
    assert measure.stale(9.9)
    assert not measure.stale(None)


def test_the_service_s_rate_is_what_it_accepted_between_two_throttles_less_one() -> None:
    measure = since_cut_at(10.0, 41, 41.0)
    assert measure.rate(12.0) == (41 - 1) / 2.0


def test_no_measure_without_a_previous_cut_too_soon_or_from_an_idle_interval() -> None:
    assert SinceCut().rate(5.0) is None  # the first throttle
    assert since_cut_at(10.0, 41, 41.0).rate(10.0 + MIN_BETWEEN / 2) is None
    assert since_cut_at(10.0, 1, 1.0).rate(12.0) is None  # one answer is no rate
    # The rate allowed went largely unused: the service's bucket filled up meanwhile.
    unused = since_cut_at(10.0, 40, 40 / USED_SHARE + 1)
    assert unused.rate(12.0) is None


def test_a_cut_starts_counting_from_zero() -> None:
    measure = since_cut_at(10.0, 5, 7.0)
    measure.cut(20.0)
    assert (measure.last_cut, measure.successes, measure.offered) == (20.0, 0, 0.0)
    assert math.isinf(SinceCut().last_cut)
