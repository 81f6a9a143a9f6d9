"""The job lifecycle simulation behind the mock endpoint.

Each job gets its whole future at creation: a short tuple of transition
times drawn from its `Lifecycle` (STARTING -> INPROGRESS -> COMPLETED or
FAILED, or -> STOPPING -> STOPPED when a simulated user stops it). A request
finds the current status by bisecting that tuple with the clock, so nothing
runs between requests: no task or timer per job, and 100,000 seeded jobs cost
only their memory. StopOptimizationJob rewrites the remaining schedule.
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

from ._catalog import (
    CONFIG_TYPES,
    FAILURE_REASONS,
    OUTPUT_MEMBERS,
    build_profiles,
    inference_image,
    optimization_types,
    static_fragment,
)
from ._wire import (
    NAME_PATTERN,
    dumps,
    resource_in_use,
    resource_not_found,
    validation,
)

__all__ = [
    "ACTIVE",
    "STATUSES",
    "TERMINAL",
    "Job",
    "Lifecycle",
    "Outcome",
    "Simulation",
    "check_name",
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
ACTIVE: Final = frozenset({STARTING, INPROGRESS, STOPPING})

Outcome = Literal["COMPLETED", "FAILED", "STOPPED"]
_OUTCOMES: Final = ("COMPLETED", "FAILED", "STOPPED")

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


def check_name(name: object, field: str = "optimizationJobName") -> str:
    """Return *name* if it is a valid job name.

    Raises:
        AwsError: ``ValidationException`` worded like SageMaker's.
    """
    if name is None:
        raise validation(
            f"1 validation error detected: Value null at '{field}' failed to satisfy "
            "constraint: Member must not be null"
        )
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise validation(
            f"1 validation error detected: Value '{name}' at '{field}' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: " + NAME_PATTERN.pattern
        )
    return name


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

    def __repr__(self) -> str:
        return f"Job(name={self.name!r}, statuses={self.statuses!r}, times={self.times!r})"


def _ms(t: float) -> float:
    # AWS reports millisecond precision (short reprs keep bodies small too).
    # Rounding down keeps a transition due "now" from landing in the future.
    return t if t == _INF else math.floor(t * 1000) / 1000


class Simulation:
    """All jobs of one simulated account and Region.

    Args:
        lifecycle: The lifecycle of jobs made by CreateOptimizationJob.
        rng: The seeded random source for schedules and content.
        region: The Region in ARNs and image URIs.
        account_id: The 12-digit account id in ARNs.
        clock: Wall-clock epoch seconds; injectable for tests.

    Example:
        >>> import random
        >>> sim = Simulation(lifecycle=Lifecycle(), rng=random.Random(1))
        >>> sim.seed(2, prefix="demo")
        ['demo-00000', 'demo-00001']
        >>> sim.status("demo-00000")
        'STARTING'
    """

    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        rng: random.Random,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifecycle = lifecycle
        self.rng = rng
        self.region = region
        self.account_id = account_id
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        #: ``(CreationTime, name)`` of every job, ascending; List pages walk it.
        self.by_created: list[tuple[float, str]] = []
        #: Every job name, ascending.
        self.by_name: list[str] = []
        self._profiles = build_profiles(region, account_id)
        self._arn_prefix = f"arn:aws:sagemaker:{region}:{account_id}:optimization-job/"
        self._seed_next: dict[str, int] = {}

    # -- schedules -----------------------------------------------------------

    def _draw(self, bounds: Range, scale: float) -> float:
        lo, hi = bounds
        if hi == _INF:
            return _INF
        return (lo + (hi - lo) * self.rng.random()) * scale

    def _schedule(
        self, now: float, lifecycle: Lifecycle, outcome: Outcome | None
    ) -> tuple[tuple[str, ...], tuple[float, ...]]:
        scale = lifecycle.time_scale
        started = now + self._draw(lifecycle.starting, scale)
        run = self._draw(lifecycle.in_progress, scale)
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
            stopped = stop_at + self._draw(lifecycle.stopping, scale)
            return _PATH_STOPPED, (now, _ms(started), _ms(stop_at), _ms(stopped))
        path = _PATH_COMPLETED if outcome == "COMPLETED" else _PATH_FAILED
        return path, (now, _ms(started), _ms(started + run))

    def _make(
        self,
        name: str,
        now: float,
        lifecycle: Lifecycle,
        outcome: Outcome | None,
        fragment: str,
        instance_type: str,
        types: tuple[str, ...],
        image: str,
    ) -> Job:
        statuses, times = self._schedule(now, lifecycle, outcome)
        reason = FAILURE_REASONS[int(self.rng.random() * len(FAILURE_REASONS))]
        return Job(
            name=name,
            arn=self._arn_prefix + name.lower(),
            statuses=statuses,
            times=times,
            visible_at=now + lifecycle.not_found_for * lifecycle.time_scale,
            lifecycle=lifecycle,
            fragment=fragment,
            instance_type=instance_type,
            types=types,
            image=image,
            failure_reason=reason,
        )

    def _add(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self.jobs[job.name] = job
        created = [(job.created, job.name) for job in jobs]
        names = [job.name for job in jobs]
        if len(jobs) > 32:
            # Bulk seeding: one sort beats n insertions into a large list.
            self.by_created.extend(created)
            self.by_created.sort()
            self.by_name.extend(names)
            self.by_name.sort()
        else:
            for item in created:
                bisect.insort(self.by_created, item)
            for name in names:
                bisect.insort(self.by_name, name)

    # -- operations ----------------------------------------------------------

    def seed(
        self,
        count: int,
        *,
        prefix: str = "job",
        lifecycle: Lifecycle | None = None,
        outcome: Outcome | None = None,
    ) -> list[str]:
        """Add *count* jobs without CreateOptimizationJob calls.

        Names are ``{prefix}-{n:05d}``, numbered on from earlier seeds with
        the same prefix.

        Args:
            count: How many jobs to add.
            prefix: The name prefix.
            lifecycle: Their lifecycle; defaults to the simulation's.
            outcome: Force every job's final status instead of drawing it.

        Returns:
            The new job names, in order.

        Raises:
            ValueError: On a bad count, prefix or outcome, or a name in use.
        """
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"count must be an integer >= 0, got {count!r}")
        if outcome is not None and outcome not in _OUTCOMES:
            raise ValueError(f"outcome must be one of {_OUTCOMES} or None, got {outcome!r}")
        lifecycle = lifecycle or self.lifecycle
        start = self._seed_next.get(prefix, 0)
        names = [f"{prefix}-{n:05d}" for n in range(start, start + count)]
        for name in names[:1] + names[-1:]:
            if NAME_PATTERN.fullmatch(name) is None:
                raise ValueError(
                    f"prefix {prefix!r} makes invalid job names such as {name!r}: use letters, "
                    "digits and single hyphens, at most 57 characters"
                )
        taken = [name for name in names if name in self.jobs]
        if taken:
            raise ValueError(f"job name(s) already in use: {taken[:3]}")
        now = _ms(self.clock())
        profiles = self._profiles
        n_profiles = len(profiles)
        rng = self.rng
        jobs = []
        for name in names:
            profile = profiles[int(rng.random() * n_profiles)]
            jobs.append(
                self._make(
                    name,
                    now,
                    lifecycle,
                    outcome,
                    profile.fragment,
                    profile.instance_type,
                    profile.types,
                    profile.image,
                )
            )
        self._add(jobs)
        self._seed_next[prefix] = start + count
        return names

    def create(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Handle CreateOptimizationJob.

        Raises:
            AwsError: ``ValidationException`` or ``ResourceInUse``.
        """
        name = check_name(request.get("OptimizationJobName"))
        missing = [
            m
            for m in (
                "RoleArn",
                "ModelSource",
                "DeploymentInstanceType",
                "OptimizationConfigs",
                "OutputConfig",
                "StoppingCondition",
            )
            if m not in request
        ]
        if missing:
            field = missing[0][0].lower() + missing[0][1:]
            raise validation(
                f"1 validation error detected: Value null at '{field}' failed to satisfy "
                "constraint: Member must not be null"
            )
        instance = request["DeploymentInstanceType"]
        if not isinstance(instance, str) or not instance.startswith("ml."):
            raise validation(f"Value '{instance}' at 'deploymentInstanceType' is not valid.")
        configs = request["OptimizationConfigs"]
        if (
            not isinstance(configs, list)
            or len(configs) > 10
            or not all(
                isinstance(c, dict) and len(c) == 1 and next(iter(c)) in CONFIG_TYPES
                for c in configs
            )
        ):
            raise validation(
                "OptimizationConfigs must be a list of at most 10 items, each holding exactly "
                f"one of {sorted(CONFIG_TYPES)}."
            )
        if name in self.jobs:
            raise resource_in_use(name)
        members = {m: request[m] for m in OUTPUT_MEMBERS if m in request}
        job = self._make(
            name,
            _ms(self.clock()),
            self.lifecycle,
            None,
            static_fragment(members),
            instance,
            optimization_types(configs),
            inference_image(instance, self.region),
        )
        self._add([job])
        return {"OptimizationJobArn": job.arn}

    def _get(self, name: object) -> Job:
        job = self.jobs.get(name) if isinstance(name, str) else None
        if job is None:
            # Validated only on the miss path, so a hit costs one dict lookup.
            raise resource_not_found(check_name(name))
        return job

    def describe(self, name: object) -> bytes:
        """Handle DescribeOptimizationJob, returning the serialized response.

        Raises:
            AwsError: ``ResourceNotFound`` (also inside the not-found window)
                or ``ValidationException``.
        """
        job = self._get(name)
        now = self.clock()
        if now < job.visible_at:
            raise resource_not_found(job.name)
        i = job.index(now)
        status = job.statuses[i]
        times = job.times
        parts = [
            '{"OptimizationJobName":"',
            job.name,
            '","OptimizationJobArn":"',
            job.arn,
            '","OptimizationJobStatus":"',
            status,
            '","CreationTime":',
            repr(times[0]),
            ',"LastModifiedTime":',
            repr(times[i]),
        ]
        if i and job.statuses[1] == INPROGRESS:
            parts += (',"OptimizationStartTime":', repr(times[1]))
        if status in TERMINAL:
            parts += (',"OptimizationEndTime":', repr(times[i]))
            if status == COMPLETED:
                parts += (',"OptimizationOutput":{"RecommendedInferenceImage":"', job.image, '"}')
            elif status == FAILED:
                parts += (',"FailureReason":', dumps(job.failure_reason))
        parts += (",", job.fragment, "}")
        return "".join(parts).encode()

    def stop(self, name: object) -> None:
        """Handle StopOptimizationJob: the job goes STOPPING, then STOPPED.

        Stopping a job that is already STOPPING is a no-op.

        Raises:
            AwsError: ``ResourceNotFound``, or ``ValidationException`` when
                the job already ended.
        """
        job = self._get(name)
        now = _ms(self.clock())
        i = job.index(now)
        status = job.statuses[i]
        if status in TERMINAL:
            raise validation(
                f"Optimization job '{job.name}' is in status {status} and cannot be stopped: "
                "only STARTING or INPROGRESS jobs can be stopped."
            )
        if status == STOPPING:
            return
        lifecycle = job.lifecycle
        stopped = now + self._draw(lifecycle.stopping, lifecycle.time_scale)
        path = _PATH_STOPPED if status == INPROGRESS else _PATH_STOPPED_EARLY
        job.statuses = path
        job.times = (*job.times[: i + 1], now, _ms(stopped))

    def delete(self, name: object) -> None:
        """Handle DeleteOptimizationJob.

        Raises:
            AwsError: ``ResourceNotFound`` or ``ValidationException``.
        """
        job = self._get(name)
        del self.jobs[job.name]
        key = (job.created, job.name)
        i = bisect.bisect_left(self.by_created, key)
        if i < len(self.by_created) and self.by_created[i] == key:
            del self.by_created[i]
        j = bisect.bisect_left(self.by_name, job.name)
        if j < len(self.by_name) and self.by_name[j] == job.name:
            del self.by_name[j]

    # -- ground truth --------------------------------------------------------

    def status(self, name: str) -> str:
        """Return the true current status of job *name*.

        Raises:
            KeyError: If there is no such job.
        """
        return self.jobs[name].status(self.clock())

    def transitions(
        self, names: Iterable[str] | None = None, *, include_future: bool = False
    ) -> dict[str, list[tuple[str, float]]]:
        """Return each job's true transitions as ``(status, epoch seconds)``.

        Args:
            names: The jobs to report (unknown names are skipped); all by default.
            include_future: Also report scheduled transitions not yet reached
                (an unreachable one has time ``inf``).
        """
        until = _INF if include_future else self.clock()
        jobs = self.jobs
        selected = jobs.values() if names is None else (jobs[n] for n in names if n in jobs)
        return {job.name: job.transitions(until) for job in selected}

    def clear(self) -> None:
        """Forget every job."""
        self.jobs.clear()
        self.by_created.clear()
        self.by_name.clear()
        self._seed_next.clear()
