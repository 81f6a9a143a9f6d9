"""The phases alone: the rate each allows, and which phase answers a throttle."""

from __future__ import annotations

import math

import pytest

from asyncoptjob._ratelimit._bucket import BURST, MIN_BURST
from asyncoptjob._ratelimit._cubic import cubic_rate
from asyncoptjob._ratelimit._meter import MIN_BETWEEN
from asyncoptjob._ratelimit._phases import (
    CLIMB_DOUBLING,
    CONFIRMED_PROBE,
    INITIAL_WINDOW,
    MEASURED_DIP,
    MIN_PROBE,
    PROBE,
    SAME_LIMIT,
    SLOW_START_BURST,
    SLOW_START_DOUBLING,
    SLOW_START_EXIT,
    SLOW_START_ROUNDS,
    TRUSTED_COUNT,
    Climb,
    Cubic,
    Phase,
    Ramp,
    Shape,
    Throttle,
    Unlimited,
    climb_deficit,
)
from asyncoptjob.testing import ManualClock

SHAPE = Shape()
LIMIT = 40.0


def throttle(
    now: float = 100.0,
    *,
    since_cut: float = math.inf,
    accepted: float | None = None,
    successes: int = 0,
    rate: float | None = None,
    guess: float = LIMIT,
) -> Throttle:
    return Throttle(
        now=now,
        since_cut=since_cut,
        accepted=accepted,
        successes=successes,
        rate=rate,
        guess=guess,
    )


def cubic(phase: Phase) -> Cubic:
    assert isinstance(phase, Cubic), phase
    return phase


def measured_beta(shape: Shape = SHAPE) -> float:
    return 1 - (1 - shape.beta) * MEASURED_DIP


# -- unlimited ----------------------------------------------------------------------------


def test_unlimited_allows_any_rate_and_has_learned_nothing() -> None:
    phase = Unlimited(SHAPE)
    assert phase.rate(0.0) is None
    assert phase.learned is None
    assert phase.capacity(None) == MIN_BURST


def test_a_first_throttle_without_a_measure_starts_cubic_from_the_guess() -> None:
    after = cubic(Unlimited(SHAPE).throttled(throttle(guess=LIMIT)))
    assert (after.w_max, after.beta, after.probe, after.cut_at) == (LIMIT, SHAPE.beta, 1.0, 100.0)
    assert after.rate(100.0) == pytest.approx(SHAPE.beta * LIMIT)


def test_a_measured_throttle_takes_the_lower_of_the_measure_and_the_rate_allowed() -> None:
    after = cubic(Unlimited(SHAPE).throttled(throttle(accepted=LIMIT, rate=LIMIT / 2)))
    assert after.w_max == LIMIT / 2
    assert after.probe == PROBE
    # A measure dips less than a guess.
    assert after.beta == measured_beta()
    assert after.rate(100.0) == pytest.approx(measured_beta() * LIMIT / 2)


# -- the ramp -----------------------------------------------------------------------------


async def test_the_ramp_doubles_per_round_trips_of_answers_while_it_holds_requests_back() -> None:
    clock = ManualClock()
    start, trip = 2000.0, 0.001
    ramp = Ramp(SHAPE, start, clock.now())
    assert ramp.rate(clock.now()) == start
    assert ramp.capacity(start) == max(1.0, start * SLOW_START_BURST)
    # Paced by answers: a doubling takes SLOW_START_ROUNDS round trips of them, so one
    # answer is 1 / (rate * rounds * round trip) of a doubling, whatever the wall time.
    assert ramp.doubling_time(trip) == SLOW_START_ROUNDS * trip
    # Never slower than the wall-time pace, however far the endpoint.
    assert ramp.doubling_time(10.0) == SLOW_START_DOUBLING
    assert ramp.grows(clock.now(), trip)
    # Above the window's floor, an answer frees nothing beyond the rate's pacing.
    assert ramp.grow(trip) == 0.0
    expected = start * 2 ** (1 / (start * SLOW_START_ROUNDS * trip))
    assert ramp.rate(clock.now()) == pytest.approx(expected)
    # A rate that held nothing back for a doubling time proves nothing: no growth.
    await clock.advance(SLOW_START_ROUNDS * trip)
    assert not ramp.grows(clock.now(), trip)
    ramp.held_back(clock.now())
    assert ramp.grows(clock.now(), trip)


def test_before_a_round_trip_is_known_the_ramp_doubles_per_wall_time() -> None:
    ramp = Ramp(SHAPE, 100.0, 0.0)
    assert ramp.doubling_time(0.0) == SLOW_START_DOUBLING
    ramp.grow(0.0)
    assert ramp.rate(0.0) == pytest.approx(100 * 2 ** (1 / (100 * SLOW_START_DOUBLING)))


def test_once_a_round_trip_is_known_the_ramp_sends_a_window_per_round_trip() -> None:
    # At 5/s and 2 ms round trips, far less than one request per round trip: the rate
    # jumps to INITIAL_WINDOW per round trip, then grows as usual.
    ramp = Ramp(SHAPE, 5.0, 0.0)
    # The floor is what allows requests: the answer frees its place in the window.
    assert ramp.grow(0.002) == INITIAL_WINDOW
    floor = INITIAL_WINDOW / 0.002
    assert floor * 2 ** (1 / (floor * SLOW_START_ROUNDS * 0.002)) == pytest.approx(ramp.rate(0.0))
    # A slow endpoint (1 s round trips) is never flooded: a window per round trip.
    slow = Ramp(SHAPE, 0.5, 0.0)
    slow.grow(1.0)
    assert slow.rate(0.0) <= 2 * INITIAL_WINDOW / 1.0


def test_below_one_answer_per_doubling_each_answer_doubles_the_rate() -> None:
    slow = 1 / SLOW_START_DOUBLING / 2
    ramp = Ramp(SHAPE, slow, 0.0)
    ramp.grow(0.0)
    assert ramp.rate(0.0) == 2 * slow


def test_the_ramp_starts_no_lower_than_min_rate() -> None:
    assert Ramp(SHAPE, SHAPE.min_rate / 10, 0.0).rate(0.0) == SHAPE.min_rate


def test_the_ramp_s_first_throttle_guesses_under_it_and_climbs() -> None:
    ramp = Ramp(SHAPE, 4 * LIMIT, 0.0)
    after = ramp.throttled(throttle(now=5.0, accepted=LIMIT))
    assert isinstance(after, Climb)
    assert after.rate(5.0) == 4 * LIMIT * SLOW_START_EXIT
    assert after.learned is None
    # The climb doubles more slowly, and counts as held back from its start.
    assert after.doubling == CLIMB_DOUBLING > SLOW_START_DOUBLING
    # ... in wall time, whatever the round trip.
    assert after.doubling_time(0.001) == CLIMB_DOUBLING
    assert after.grows(5.0, 0.001)
    assert not after.grows(5.0 + CLIMB_DOUBLING, 0.001)


# -- the climb ----------------------------------------------------------------------------


def test_a_throttle_too_soon_after_the_guess_climbs_again_from_half() -> None:
    climb = Climb(SHAPE, LIMIT, 0.0)
    after = climb.throttled(throttle(since_cut=MIN_BETWEEN / 2, accepted=LIMIT))
    assert isinstance(after, Climb)
    assert after.rate(0.0) == LIMIT / 2
    assert after.start == LIMIT / 2


def test_a_climb_without_a_measure_ends_in_cubic_from_the_guess() -> None:
    after = cubic(Climb(SHAPE, LIMIT, 0.0).throttled(throttle(since_cut=1.0, guess=LIMIT / 3)))
    assert (after.w_max, after.beta, after.probe) == (LIMIT / 3, SHAPE.beta, 1.0)


def test_a_climb_s_measure_is_trusted_when_it_started_near_the_limit() -> None:
    def probe_after(start: float, successes: int) -> float:
        climb = Climb(SHAPE, start, 0.0)
        for _ in range(200):  # grown above the limit by the time of the throttle
            climb.grow(0.02)
        after = cubic(
            climb.throttled(
                throttle(since_cut=2.0, accepted=LIMIT, successes=successes, rate=LIMIT * 2)
            )
        )
        assert after.w_max == LIMIT
        assert after.beta == measured_beta()
        return after.probe

    near, far = 0.95 * LIMIT, 0.2 * LIMIT
    assert climb_deficit(near, LIMIT) < climb_deficit(far, LIMIT)
    assert probe_after(near, TRUSTED_COUNT) == CONFIRMED_PROBE
    assert probe_after(far, TRUSTED_COUNT) == PROBE  # the service's bucket may have overflowed
    assert probe_after(near, TRUSTED_COUNT - 1) == PROBE  # too few answers to trust


# -- CUBIC --------------------------------------------------------------------------------


def test_cubic_follows_the_curve_and_never_drops_below_min_rate() -> None:
    phase = Cubic(SHAPE, w_max=LIMIT, beta=SHAPE.beta, probe=PROBE, cut_at=10.0)
    assert phase.learned == LIMIT
    assert phase.rate(13.0) == cubic_rate(3.0, LIMIT, probe=PROBE)
    low = Cubic(SHAPE, w_max=SHAPE.min_rate, beta=SHAPE.beta, probe=1.0, cut_at=0.0)
    assert low.rate(0.0) == SHAPE.min_rate
    assert phase.capacity(LIMIT) == max(MIN_BURST, LIMIT * BURST)


def test_a_limit_found_again_in_the_same_place_is_probed_ever_more_gently() -> None:
    phase: Phase = Unlimited(SHAPE)
    probes = []
    for i in range(12):
        phase = phase.throttled(throttle(now=10.0 * i, accepted=LIMIT))
        probes.append(cubic(phase).probe)
    assert probes[0] == PROBE
    assert probes[1] == CONFIRMED_PROBE  # found again: confirmed at once
    assert probes[2] == CONFIRMED_PROBE / 2  # and halving from there
    assert probes[-1] == MIN_PROBE
    assert probes == sorted(probes, reverse=True)
    # Elsewhere: the limit moved, probe for it at the start's pace again.
    moved = phase.throttled(throttle(now=200.0, accepted=LIMIT * (1 + 2 * SAME_LIMIT)))
    assert cubic(moved).probe == PROBE


def test_a_restored_limit_resumes_at_its_plateau() -> None:
    phase = Cubic.restored(SHAPE, LIMIT, 50.0)
    assert phase.rate(50.0) == pytest.approx(LIMIT)
    assert phase.probe == CONFIRMED_PROBE
    assert phase.learned == LIMIT
    assert Cubic.restored(SHAPE, SHAPE.min_rate / 2, 0.0).learned == SHAPE.min_rate
