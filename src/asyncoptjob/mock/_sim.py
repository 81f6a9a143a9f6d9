"""The simulated account: its jobs, the operations on them, and their ground truth.

`Simulation` holds every job of one account and Region, with the two sorted
indexes List walks, and answers Create, Describe, Stop and Delete. A job's
status is read from its schedule (see `_lifecycle`) at the moment of the
request, so nothing runs between requests.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from ._catalog import (
    CONFIG_TYPES,
    FAILURE_REASONS,
    OUTPUT_MEMBERS,
    build_profiles,
    inference_image,
    optimization_types,
    static_fragment,
)
from ._lifecycle import (
    STATUSES,
    STOPPING,
    TERMINAL,
    Job,
    Lifecycle,
    Outcome,
    Schedules,
    epoch_ms,
)
from ._wire import (
    NAME_PATTERN,
    check_name,
    resource_in_use,
    resource_not_found,
    validation,
)

__all__ = ["Simulation"]

_OUTCOMES: Final = ("COMPLETED", "FAILED", "STOPPED")
_CREATE_REQUIRED: Final = (
    "RoleArn",
    "ModelSource",
    "DeploymentInstanceType",
    "OptimizationConfigs",
    "OutputConfig",
    "StoppingCondition",
)


def _check_create(request: Mapping[str, Any]) -> tuple[str, str, list[Any]]:
    """Return the name, instance type and configs of a valid CreateOptimizationJob *request*.

    Raises:
        AwsError: ``ValidationException`` worded like SageMaker's.
    """
    name = check_name(request.get("OptimizationJobName"))
    missing = [member for member in _CREATE_REQUIRED if member not in request]
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
            isinstance(c, dict) and len(c) == 1 and next(iter(c)) in CONFIG_TYPES for c in configs
        )
    ):
        raise validation(
            "OptimizationConfigs must be a list of at most 10 items, each holding exactly "
            f"one of {sorted(CONFIG_TYPES)}."
        )
    return name, instance, configs


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
        self._schedules = Schedules(rng)
        self._profiles = build_profiles(region, account_id)
        self._arn_prefix = f"arn:aws:sagemaker:{region}:{account_id}:optimization-job/"
        self._seed_next: dict[str, int] = {}

    # -- the job table -------------------------------------------------------

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
        statuses, times = self._schedules.draw(now, lifecycle, outcome)
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

    def _get(self, name: object) -> Job:
        job = self.jobs.get(name) if isinstance(name, str) else None
        if job is None:
            # Validated only on the miss path, so a hit costs one dict lookup.
            raise resource_not_found(check_name(name))
        return job

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
        now = epoch_ms(self.clock())
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
        name, instance, configs = _check_create(request)
        if name in self.jobs:
            raise resource_in_use(name)
        members = {m: request[m] for m in OUTPUT_MEMBERS if m in request}
        job = self._make(
            name,
            epoch_ms(self.clock()),
            self.lifecycle,
            None,
            static_fragment(members),
            instance,
            optimization_types(configs),
            inference_image(instance, self.region),
        )
        self._add([job])
        return {"OptimizationJobArn": job.arn}

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
        return job.description(now)

    def stop(self, name: object) -> None:
        """Handle StopOptimizationJob: the job goes STOPPING, then STOPPED.

        Stopping a job that is already STOPPING is a no-op.

        Raises:
            AwsError: ``ResourceNotFound``, or ``ValidationException`` when
                the job already ended.
        """
        job = self._get(name)
        now = epoch_ms(self.clock())
        status = job.status(now)
        if status in TERMINAL:
            raise validation(
                f"Optimization job '{job.name}' is in status {status} and cannot be stopped: "
                "only STARTING or INPROGRESS jobs can be stopped."
            )
        if status != STOPPING:
            self._schedules.stop(job, now)

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

    def status_counts(self) -> dict[str, int]:
        """Return how many jobs are in each status right now (every status, even at 0)."""
        now = self.clock()
        counts = dict.fromkeys(STATUSES, 0)
        for job in self.jobs.values():
            counts[job.status(now)] += 1
        return counts

    def transitions(
        self, names: Iterable[str] | None = None, *, include_future: bool = False
    ) -> dict[str, list[tuple[str, float]]]:
        """Return each job's true transitions as ``(status, epoch seconds)``.

        Args:
            names: The jobs to report (unknown names are skipped); all by default.
            include_future: Also report scheduled transitions not yet reached
                (an unreachable one has time ``inf``).
        """
        until = float("inf") if include_future else self.clock()
        jobs = self.jobs
        selected = jobs.values() if names is None else (jobs[n] for n in names if n in jobs)
        return {job.name: job.transitions(until) for job in selected}

    def clear(self) -> None:
        """Forget every job."""
        self.jobs.clear()
        self.by_created.clear()
        self.by_name.clear()
        self._seed_next.clear()
