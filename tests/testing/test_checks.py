"""The testing kit's checks: each guarantee, kept and broken, names the job and sequence."""

from __future__ import annotations

import doctest
from datetime import datetime, timezone
from typing import Any

import pytest

import asyncoptjob.testing._checks
import asyncoptjob.testing._redis
from asyncoptjob import Event, JobErrorEvent, JobNotFoundError, JobStatus, StatusChange
from asyncoptjob.testing import (
    EventOrder,
    InvariantError,
    check_against_truth,
    check_events,
    check_truth,
)

AT = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
S, P, C, F = JobStatus.STARTING, JobStatus.INPROGRESS, JobStatus.COMPLETED, JobStatus.FAILED


def change(
    name: str, status: JobStatus, previous: JobStatus | None = None, **extra: Any
) -> StatusChange:
    fields: dict[str, Any] = {
        "description": {"OptimizationJobName": name},
        "observed_at": AT,
        **extra,
    }
    return StatusChange(name, previous, status, **fields)


def error(name: str) -> JobErrorEvent:
    return JobErrorEvent(name, JobNotFoundError(f"{name} not found"))


@pytest.mark.parametrize("module", [asyncoptjob.testing._checks, asyncoptjob.testing._redis])
def test_examples_run(module: Any) -> None:
    assert module.__doc__
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_a_good_watch_passes_and_is_grouped_by_job() -> None:
    events: list[Event] = [change("a", S), change("b", S), change("a", C, S), error("b")]
    by_job = check_events(events, ["a", "b"])
    assert by_job == {"a": [events[0], events[2]], "b": [events[1], events[3]]}


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([change("a", S), change("a", C, P)], "out of order"),
        ([change("a", S, P), change("a", C, S)], "out of order"),
        ([change("a", S), change("a", S, S)], "repeated"),
        ([change("a", C), change("a", F, C)], "after its terminal outcome"),
        ([change("a", S), error("a"), change("a", C, S)], "after its terminal outcome"),
        ([error("a"), error("a")], "after its terminal outcome"),
        ([change("a", S)], "no terminal outcome at the end"),
        ([change("a", C, observed_at=AT.replace(tzinfo=None))], "no time zone"),
        ([change("a", C, description={"OptimizationJobName": "b"})], "description of 'b'"),
    ],
)
def test_each_broken_guarantee_names_the_job_and_sequence(
    events: list[Event], message: str
) -> None:
    with pytest.raises(InvariantError, match=message) as info:
        check_events(events, ["a"])
    assert str(info.value).startswith("a: ")
    assert isinstance(info.value, AssertionError)


def test_missing_and_unexpected_jobs_fail() -> None:
    with pytest.raises(InvariantError, match=r"no events for \['b'\]; events for unwatched \[\]"):
        check_events([change("a", C)], ["a", "b"])
    with pytest.raises(InvariantError, match=r"unwatched \['c'\]"):
        check_events([change("a", C), change("c", C)], ["a"])


def test_event_order_records_and_goes_on_after_a_violation() -> None:
    order = EventOrder()
    order.add(change("a", S))
    with pytest.raises(InvariantError):
        order.add(change("a", S, S))
    order.add(change("a", C, S))
    assert order.histories == {"a": ["STARTING", "STARTING", "COMPLETED"]}
    order.add(error("b"))
    assert order.histories["b"] == ["!JobNotFoundError"]
    order.check_finished()


def test_truth_seen_statuses_are_true_statuses_in_true_order() -> None:
    truth = ["STARTING", "INPROGRESS", "COMPLETED"]
    check_truth("a", [S, C], truth)
    check_truth("a", [P], truth)
    check_truth("a", [], truth)
    with pytest.raises(InvariantError, match="a: saw"):
        check_truth("a", ["STOPPED"], truth)
    with pytest.raises(InvariantError, match="a: saw"):
        check_truth("a", [P, S], truth)
    with pytest.raises(InvariantError, match="a: ended"):
        check_truth("a", [S, P], ["STARTING", "INPROGRESS", "FAILED"], finished=True)
    with pytest.raises(InvariantError, match="no final status"):
        check_truth("a", [], truth, finished=True)


def test_against_truth_final_status_is_the_true_end() -> None:
    truth = {"a": ["STARTING", "INPROGRESS", "COMPLETED"], "b": ["STARTING", "FAILED"]}
    check_against_truth({"a": [change("a", S), change("a", C, S)], "b": [error("b")]}, truth)
    with pytest.raises(InvariantError, match="b: ended FAILED"):
        check_against_truth({"b": [change("b", F)]}, {"b": ["STARTING", "FAILED", "STOPPED"]})
    with pytest.raises(InvariantError, match="not terminal"):
        check_against_truth({"a": [change("a", P)]}, truth)
    with pytest.raises(InvariantError, match="unknown"):
        check_against_truth({"z": [change("z", C)]}, truth)
