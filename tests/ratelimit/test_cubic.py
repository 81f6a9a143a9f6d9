"""The CUBIC curve alone: a pure function of the time since the cut, on plain numbers."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncoptjob._ratelimit import BETA, SCALE, cubic_k, cubic_rate

W_MAX = 40.0


def test_a_cut_starts_at_beta_times_w_max_and_climbs_back_to_it_in_k_seconds() -> None:
    k = cubic_k(W_MAX)
    assert k == pytest.approx((W_MAX * (1 - BETA) / SCALE) ** (1 / 3))
    assert cubic_rate(0, W_MAX) == pytest.approx(BETA * W_MAX)
    assert cubic_rate(k, W_MAX) == pytest.approx(W_MAX)


def test_the_curve_is_flat_at_w_max_and_point_symmetric_about_it() -> None:
    k = cubic_k(W_MAX)
    for step in (0.1, 0.5, 1.0):
        below = W_MAX - cubic_rate(k - step, W_MAX)
        above = cubic_rate(k + step, W_MAX) - W_MAX
        assert below == pytest.approx(above)
        assert above == pytest.approx(SCALE * step**3)


def test_the_probe_slows_growth_past_w_max_only() -> None:
    k = cubic_k(W_MAX)
    probe = 1 / 16
    # Below the plateau the probe changes nothing ...
    assert cubic_rate(k / 2, W_MAX, probe=probe) == cubic_rate(k / 2, W_MAX)
    # ... above it the curve grows at the probe's fraction of C.
    plain = cubic_rate(k + 2, W_MAX) - W_MAX
    gentle = cubic_rate(k + 2, W_MAX, probe=probe) - W_MAX
    assert gentle == pytest.approx(plain * probe)


def test_a_shallower_cut_comes_back_sooner() -> None:
    deep, shallow = 0.5, 0.85
    assert cubic_k(W_MAX, beta=shallow) < cubic_k(W_MAX, beta=deep)
    assert cubic_rate(0, W_MAX, beta=shallow) == pytest.approx(shallow * W_MAX)


@given(
    w_max=st.floats(0.1, 1e5),
    beta=st.floats(0.05, 0.99),
    probe=st.floats(1 / 16384, 1),
    times=st.lists(st.floats(0, 1000), min_size=2, max_size=10),
)
def test_the_rate_never_falls_as_time_passes(
    w_max: float, beta: float, probe: float, times: list[float]
) -> None:
    rates = [cubic_rate(t, w_max, beta=beta, probe=probe) for t in sorted(times)]
    # Within float rounding: the curve is flat at its plateau.
    assert all(a <= b or math.isclose(a, b, rel_tol=1e-12) for a, b in itertools.pairwise(rates))
    assert rates[0] >= beta * w_max * (1 - 1e-12)
