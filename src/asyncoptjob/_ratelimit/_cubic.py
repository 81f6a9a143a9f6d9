"""The CUBIC rate curve: a pure function of the time since the last cut.

CUBIC congestion control (RFC 8312, section 4.1; the curve botocore's ``adaptive`` retry
mode follows) grows the rate back after a cut along ``W(t) = C (t - K)^3 + W_max``, where
``W_max`` is the rate at the cut and ``K`` the time the curve takes to climb from
``beta * W_max`` back to it. The curve is flat near ``W_max`` (it lingers just under the
limit it found) and probes beyond it ever faster.

No state and no clock: the single-process limiter and the fleet's Lua script
(``_fleet/_scripts.py``, ``CUBIC``, tested against this function) both evaluate it.
"""

from __future__ import annotations

__all__ = ["BETA", "SCALE", "cubic_k", "cubic_rate"]

#: CUBIC's C: how fast the rate grows back (RFC 8312 and botocore use 0.4).
SCALE = 0.4
#: CUBIC's multiplicative cut: the rate right after a cut is ``beta * w_max``.
BETA = 0.7


def cubic_k(w_max: float, beta: float = BETA, scale: float = SCALE) -> float:
    """Seconds the curve takes to climb from ``beta * w_max`` back to ``w_max`` (K)."""
    k: float = (w_max * (1 - beta) / scale) ** (1 / 3)  # a real root: the base is > 0
    return k


def cubic_rate(
    since_cut: float,
    w_max: float,
    *,
    beta: float = BETA,
    scale: float = SCALE,
    probe: float = 1.0,
) -> float:
    """The CUBIC rate ``since_cut`` seconds after a cut at ``w_max`` (requests/s).

    Args:
        since_cut: seconds since the cut (0 gives ``beta * w_max``).
        w_max: the rate the cut was made from, the curve's plateau.
        beta: the cut's depth (0 < beta < 1).
        scale: C, the curve's steepness.
        probe: past the plateau the curve grows at this fraction of C (1: plain
            CUBIC). Every probe above a fixed account limit costs throttles, so the
            limiter probes gently once it has found the limit.

    The rate is not floored: below ``min_rate`` is the caller's business.
    """
    t = since_cut - cubic_k(w_max, beta, scale)
    steep = scale if t <= 0 else scale * probe
    return steep * t**3 + w_max
