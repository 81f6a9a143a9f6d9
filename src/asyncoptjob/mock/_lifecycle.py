"""How a simulated job moves through its statuses: the `Lifecycle`, a job's schedule.

Each job gets its whole future at creation: a short tuple of transition
times drawn from its `Lifecycle` (STARTING -> INPROGRESS -> COMPLETED or
FAILED, or -> STOPPING -> STOPPED when a simulated user stops it). A request
finds the current status by bisecting that tuple with the clock, so nothing
runs between requests: no task or timer per job, and 100,000 seeded jobs cost
only their memory. `Schedules` draws those futures from a seeded RNG and
rewrites the rest of one when StopOptimizationJob arrives.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

from ._wire import dumps

__all__ = [
    "COMPLETED",
    "FAILED",
    "INPROGRESS",
    "STARTING",
    "STATUSES",
    "STOPPED",
    "STOPPING",
    "TERMINAL",
    "Job",
    "Lifecycle",
    "Outcome",
    "Schedules",
    "epoch_ms",
]

STARTING: Final = "STARTING"
INPROGRESS: Final = "INPROGRESS"
STOPPING: Final = "STOPPING"
COMPLETED: Final = "COMPLETED"
FAILED: Final = "FAILED"
STOPPED: Final = "STOPPED"

#: Every OptimizationJobStatus, in the service model's order.
STATUSES: Final = (INPROGRESS, COMPLETED, FAILED, STARTING, STOPPING, STOPPED)
TERMINAL: Final = frozenset({COMPLETED, FAILED, STOPPED})

Outcome = Literal["COMPLETED", "FAILED", "STOPPED"]

# Status paths are shared tuples, so a job stores a reference, not a copy.
_PATH_COMPLETED: Final = (STARTING, INPROGRESS, COMPLETED)
_PATH_FAILED: Final = (STARTING, INPROGRESS, FAILED)
_PATH_STOPPED: Final = (STARTING, INPROGRESS, STOPPING, STOPPED)
_PATH_STOPPED_EARLY: Final = (STARTING, STOPPING, STOPPED)

_INF: Final = math.inf

Range = tuple[float, float]


def _check_range(field: str, value: object) -> Range:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"{field} must be a (low, high) pair of seconds, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if math.isnan(lo) or math.isnan(hi) or lo < 0 or hi < lo:
        raise ValueError(f"{field} must satisfy 0 <= low <= high, got {value!r}")
    return (lo, hi)


def _check_fraction(field: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"{field} must be a fraction between 0 and 1, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """How simulated jobs move through their statuses.

    Durations are simulated seconds drawn uniformly from ``(low, high)``; a
    high of ``float("inf")`` means the phase never ends (for timeout tests).
    Each draw is multiplied by `time_scale`, the real seconds per simulated
    second, so ``time_scale=1/600`` runs a 10-minute job in one second.

    Attributes:
        starting: Time spent in STARTING.
        in_progress: Time spent in INPROGRESS before COMPLETED or FAILED.
        stopping: Time spent in STOPPING before STOPPED.
        failure_rate: Fraction of the jobs not stopped that end FAILED.
        stop_rate: Fraction of jobs a simulated user stops at a random moment
            of INPROGRESS (they go STOPPING -> STOPPED).
        not_found_for: Simulated seconds after creation during which
            DescribeOptimizationJob answers ResourceNotFound (eventual
            consistency); List, Stop and Delete already see the job.
        time_scale: Real seconds per simulated second.

    Example:
        >>> fast = Lifecycle(starting=(0.1, 0.2), in_progress=(0.5, 1.0), failure_rate=0.1)
        >>> fast.failure_rate
        0.1
    """

    starting: Range = (30.0, 120.0)
    in_progress: Range = (300.0, 1800.0)
    stopping: Range = (10.0, 60.0)
    failure_rate: float = 0.0
    stop_rate: float = 0.0
    not_found_for: float = 0.0
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("starting", "in_progress", "stopping"):
            object.__setattr__(self, name, _check_range(name, getattr(self, name)))
        for name in ("failure_rate", "stop_rate"):
            object.__setattr__(self, name, _check_fraction(name, getattr(self, name)))
        nf = self.not_found_for
        if not isinstance(nf, (int, float)) or isinstance(nf, bool) or not nf >= 0:
            raise ValueError(f"not_found_for must be >= 0 seconds, got {nf!r}")
        ts = self.time_scale
        if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not 0 < ts < _INF:
            raise ValueError(f"time_scale must be a finite number > 0, got {ts!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Lifecycle:
        """Build a lifecycle from JSON-like *data* (the control path's form).

        Infinite bounds may be given as ``null``, ``"inf"`` or ``"Infinity"``.

        Raises:
            ValueError: On an unknown key or an invalid value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown lifecycle field(s) {unknown}: use {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("starting", "in_progress", "stopping") and isinstance(value, (list, tuple)):
                kwargs[key] = tuple(_json_float(key, v) for v in value)
            elif key == "not_found_for":
                kwargs[key] = _json_float(key, value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Return the lifecycle as a JSON-safe dict (infinite bounds as ``"inf"``)."""
        return {
            key: [_json_safe(v) for v in value] if isinstance(value, tuple) else _json_safe(value)
            for key, value in asdict(self).items()
        }


def _json_float(field: str, value: object) -> float:
    if value is None:
        return _INF
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not a number") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{field}: {value!r} is not a number")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return value


def epoch_ms(t: float) -> float:
    """Return epoch seconds *t* at AWS's millisecond precision, rounded down.

    Rounding down keeps a transition due "now" from landing in the future (and
    short reprs keep bodies small).
    """
    return t if t == _INF else math.floor(t * 1000) / 1000


class Job:
    """One simulated job: its constant content and its transition schedule."""

    __slots__ = (
        "arn",
        "created",
        "failure_reason",
        "fragment",
        "image",
        "instance_type",
        "lifecycle",
        "name",
        "statuses",
        "times",
        "types",
        "visible_at",
    )

    def __init__(
        self,
        *,
        name: str,
        arn: str,
        statuses: tuple[str, ...],
        times: tuple[float, ...],
        visible_at: float,
        lifecycle: Lifecycle,
        fragment: str,
        instance_type: str,
        types: tuple[str, ...],
        image: str,
        failure_reason: str,
    ) -> None:
        self.name = name
        self.arn = arn
        self.statuses = statuses
        self.times = times
        self.created = times[0]
        self.visible_at = visible_at
        self.lifecycle = lifecycle
        self.fragment = fragment
        self.instance_type = instance_type
        self.types = types
        self.image = image
        self.failure_reason = failure_reason

    def index(self, now: float) -> int:
        """Return the index of the transition in effect at *now*."""
        # Clamped at 0 so a wall clock stepping backwards never yields "no status".
        return max(bisect.bisect_right(self.times, now) - 1, 0)

    def status(self, now: float) -> str:
        """Return the status at *now*."""
        return self.statuses[self.index(now)]

    def last_modified(self, now: float) -> float:
        """Return the time of the latest transition at or before *now*."""
        return self.times[self.index(now)]

    def transitions(self, until: float = _INF) -> list[tuple[str, float]]:
        """Return ``(status, epoch seconds)`` for each transition at or before *until*."""
        return [(s, t) for s, t in zip(self.statuses, self.times, strict=True) if t <= until]

    def description(self, now: float) -> bytes:
        """Return the DescribeOptimizationJob response body at *now*, serialized.

        Built by joining prepared pieces, not by `json.dumps` of a dict: the
        constant members are one shared fragment, so a describe stays cheap.
        """
        i = self.index(now)
        status = self.statuses[i]
        times = self.times
        parts = [
            '{"OptimizationJobName":"',
            self.name,
            '","OptimizationJobArn":"',
            self.arn,
            '","OptimizationJobStatus":"',
            status,
            '","CreationTime":',
            repr(times[0]),
            ',"LastModifiedTime":',
            repr(times[i]),
        ]
        if i and self.statuses[1] == INPROGRESS:
            parts += (',"OptimizationStartTime":', repr(times[1]))
        if status in TERMINAL:
            parts += (',"OptimizationEndTime":', repr(times[i]))
            if status == COMPLETED:
                parts += (',"OptimizationOutput":{"RecommendedInferenceImage":"', self.image, '"}')
            elif status == FAILED:
                parts += (',"FailureReason":', dumps(self.failure_reason))
        parts += (",", self.fragment, "}")
        return "".join(parts).encode()

    def __repr__(self) -> str:
        return f"Job(name={self.name!r}, statuses={self.statuses!r}, times={self.times!r})"


class Schedules:
    """Draw each job's future from its `Lifecycle`, and rewrite it when the job is stopped.

    Args:
        rng: The seeded random source; every draw of one simulation comes from it,
            in a fixed order, so a seed repeats the same schedules.

    Example:
        >>> schedules = Schedules(random.Random(1))
        >>> schedules.draw(0.0, Lifecycle(starting=(5, 5), in_progress=(10, 10)), "COMPLETED")
        (('STARTING', 'INPROGRESS', 'COMPLETED'), (0.0, 5.0, 15.0))
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _duration(self, bounds: Range, scale: float) -> float:
        lo, hi = bounds
        if hi == _INF:
            return _INF
        return (lo + (hi - lo) * self.rng.random()) * scale

    def draw(
        self, now: float, lifecycle: Lifecycle, outcome: Outcome | None
    ) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """Return the statuses and transition times of a job created at *now*.

        Args:
            now: The creation time, epoch seconds.
            lifecycle: The durations and rates to draw from.
            outcome: The final status to force; None draws it from the rates.
        """
        scale = lifecycle.time_scale
        started = now + self._duration(lifecycle.starting, scale)
        run = self._duration(lifecycle.in_progress, scale)
        if outcome is None:
            if self.rng.random() < lifecycle.stop_rate:
                outcome = "STOPPED"
            elif self.rng.random() < lifecycle.failure_rate:
                outcome = "FAILED"
            else:
                outcome = "COMPLETED"
        if outcome == "STOPPED":
            # inf * 0.0 would be NaN: a job that never finishes is never stopped either.
            stop_at = started + run * self.rng.random() if run != _INF else _INF
            stopped = stop_at + self._duration(lifecycle.stopping, scale)
            return _PATH_STOPPED, (now, epoch_ms(started), epoch_ms(stop_at), epoch_ms(stopped))
        path = _PATH_COMPLETED if outcome == "COMPLETED" else _PATH_FAILED
        return path, (now, epoch_ms(started), epoch_ms(started + run))

    def stop(self, job: Job, now: float) -> None:
        """Send *job*, STARTING or INPROGRESS at *now*, to STOPPING and then STOPPED."""
        i = job.index(now)
        lifecycle = job.lifecycle
        stopped = now + self._duration(lifecycle.stopping, lifecycle.time_scale)
        job.statuses = _PATH_STOPPED if job.statuses[i] == INPROGRESS else _PATH_STOPPED_EARLY
        job.times = (*job.times[: i + 1], now, epoch_ms(stopped))
