"""The token bucket alone, on a manual clock."""

from __future__ import annotations

import pytest

from asyncoptjob._ratelimit._bucket import TokenBucket
from asyncoptjob.testing import ManualClock

RATE, CAPACITY = 10.0, 3.0


async def test_tokens_accrue_at_the_rate_up_to_the_capacity() -> None:
    clock = ManualClock()
    bucket = TokenBucket(0.0, clock.now())
    await clock.advance(0.2)
    assert bucket.refill(clock.now(), RATE, CAPACITY) == pytest.approx(0.2 * RATE)
    assert bucket.tokens == pytest.approx(0.2 * RATE)
    await clock.advance(10)
    # What the rate offered counts in full, even what overflowed the capacity.
    assert bucket.refill(clock.now(), RATE, CAPACITY) == pytest.approx(10 * RATE)
    assert bucket.tokens == CAPACITY


async def test_a_request_takes_a_whole_token_or_learns_how_long_to_wait() -> None:
    clock = ManualClock()
    bucket = TokenBucket(1.0, clock.now())
    assert bucket.take()
    assert not bucket.take()
    assert bucket.wait(RATE) == pytest.approx(1 / RATE)
    await clock.advance(bucket.wait(RATE))
    bucket.refill(clock.now(), RATE, CAPACITY)
    assert bucket.take()


def test_float_rounding_does_not_keep_a_token_out_of_reach() -> None:
    bucket = TokenBucket(1.0 - 1e-15, 0.0)
    assert bucket.take()
    assert bucket.tokens == 0.0


async def test_a_refill_at_a_new_rate_counts_only_from_the_last_refill() -> None:
    clock = ManualClock()
    bucket = TokenBucket(0.0, clock.now())
    await clock.advance(0.1)
    bucket.refill(clock.now(), RATE, CAPACITY)
    await clock.advance(0.1)
    bucket.refill(clock.now(), 2 * RATE, CAPACITY)
    assert bucket.tokens == pytest.approx(0.1 * RATE + 0.1 * 2 * RATE)


async def test_fill_sets_the_tokens_as_of_now() -> None:
    clock = ManualClock()
    bucket = TokenBucket(0.0, clock.now())
    await clock.advance(5)
    bucket.fill(clock.now(), CAPACITY)
    assert bucket.tokens == CAPACITY
    # The time before the fill earns nothing more.
    assert bucket.refill(clock.now(), RATE, 10 * CAPACITY) == 0.0
