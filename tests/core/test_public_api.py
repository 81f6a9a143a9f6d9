"""The public surface: names, events, option validation, name validation."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncoptjob
from asyncoptjob import (
    JobErrorEvent,
    JobNotFoundError,
    JobStatus,
    Poller,
    StatusChange,
    WaitTimeoutError,
    wait_until_done,
    watch,
)
from tests.helpers import RecordingBudget

EXPECTED_ALL = {
    "watch",
    "wait_until_done",
    "Poller",
    "Watch",
    "PollerOptions",
    "validate_names",
    "Event",
    "StatusChange",
    "JobErrorEvent",
    "JobStatus",
    "Description",
    "JobSummary",
    "EventSource",
    "PollPolicy",
    "RetryPolicy",
    "SweepPolicy",
    "RateBudget",
    "AdaptiveRateLimiter",
    "RateLimiterStatistics",
    "Clock",
    "MonotonicClock",
    "Transport",
    "AioBotocoreTransport",
    "client_config",
    "new_session",
    "PollerStats",
    "PollerHealth",
    "FleetStats",
    "AsyncOptJobError",
    "TransportError",
    "ThrottledError",
    "TransientError",
    "JobNotFoundError",
    "InvalidRequestError",
    "CredentialsError",
    "ServiceError",
    "JobFailedError",
    "WaitTimeoutError",
    "PollerClosedError",
    "StateError",
    "__version__",
}


def test_all_is_exactly_the_public_names() -> None:
    assert set(asyncoptjob.__all__) == EXPECTED_ALL
    assert len(asyncoptjob.__all__) == len(EXPECTED_ALL)
    for name in asyncoptjob.__all__:
        assert hasattr(asyncoptjob, name), name


def test_the_old_error_event_name_still_works_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match="JobErrorEvent"):
        old = asyncoptjob.JobError  # type: ignore[attr-defined]
    assert old is JobErrorEvent
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = asyncoptjob.no_such_name  # type: ignore[attr-defined]


def test_the_testing_kit_exports_exactly_its_public_names() -> None:
    import asyncoptjob.testing as testing

    assert set(testing.__all__) == {
        "FakeTransport",
        "FakeRequest",
        "Handler",
        "describe_response",
        "ScriptedJobs",
        "ManualClock",
        "check_events",
        "EventOrder",
        "check_truth",
        "check_against_truth",
        "InvariantError",
        "RedisServer",
    }
    for name in testing.__all__:
        assert hasattr(testing, name), name


def test_statuses_move_forward_in_one_order() -> None:
    order = [JobStatus.STARTING, JobStatus.INPROGRESS, JobStatus.STOPPING]
    assert [status.rank for status in order] == [0, 1, 2]
    terminal = {status.rank for status in JobStatus if status.is_terminal}
    assert terminal == {3}


def test_job_status_is_a_str_enum_equal_to_the_api_strings() -> None:
    assert JobStatus.COMPLETED == "COMPLETED"
    assert JobStatus("INPROGRESS") is JobStatus.INPROGRESS
    assert str(JobStatus.FAILED) == "FAILED"
    assert {s for s in JobStatus if s.is_terminal} == {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.STOPPED,
    }
    assert not JobStatus.STOPPING.is_terminal


def test_events_are_frozen_slotted_dataclasses() -> None:
    now = datetime.now(timezone.utc)
    event = StatusChange("a", None, JobStatus.COMPLETED, {"OptimizationJobName": "a"}, now)  # type: ignore[typeddict-item]
    assert event.is_terminal
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.status = JobStatus.FAILED  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert "description" not in repr(event)  # whole responses stay out of reprs and logs
    error = JobErrorEvent("a", JobNotFoundError("gone", code="ResourceNotFound"))
    assert error.is_terminal
    assert not hasattr(error, "__dict__")


@pytest.mark.parametrize(
    "bad",
    ["", "a_b", "-abc", "abc-", "a" * 64, "ünïcode", "a b", "job.1"],
)
async def test_invalid_names_raise_before_any_call(bad: str) -> None:
    with pytest.raises(ValueError, match="not valid") as info:
        watch(["good-name", bad], endpoint_url="http://127.0.0.1:9")
    assert repr(bad) in str(info.value)
    assert "1-63" in str(info.value)
    with pytest.raises(ValueError, match="not valid"):
        await wait_until_done([bad], endpoint_url="http://127.0.0.1:9")


def test_every_offending_name_is_listed_once() -> None:
    with pytest.raises(ValueError, match="not valid") as info:
        watch(["ok-1", "bad_1", "bad_2", "ok--2", "-bad3"], endpoint_url="http://127.0.0.1:9")
    message = str(info.value)
    assert message.startswith("3 job names are not valid")
    for bad in ("'bad_1'", "'bad_2'", "'-bad3'"):
        assert bad in message
    assert "'ok--2'" not in message  # consecutive hyphens are allowed by the API pattern


@pytest.mark.parametrize("bad", [None, 42, b"job-a", [1, "a"], ["a", None]])
def test_names_that_are_not_strings(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        watch(bad, endpoint_url="http://127.0.0.1:9")  # type: ignore[arg-type]


async def test_empty_names_return_at_once_without_a_client() -> None:
    # Port 9 (discard) would fail if anything tried to connect.
    assert await wait_until_done([], endpoint_url="http://127.0.0.1:9") == {}
    assert [e async for e in watch([], endpoint_url="http://127.0.0.1:9")] == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_concurrency", 0),
        ("max_concurrency", -3),
        ("max_concurrency", 2.5),
        ("max_rate", 0),
        ("max_rate", -1.0),
        ("max_rate", float("inf")),
        ("poll_interval", 0),
        ("poll_interval", -5),
        ("not_found_grace", -1),
        ("timeout", 0),
        ("timeout", -1),
        ("timeout", float("nan")),
        ("retry", "fast"),
        ("loop_burst", 0),
        ("loop_burst", -0.001),
        ("loop_burst", float("inf")),
        ("loop_burst", "3ms"),
    ],
)
def test_invalid_option_values_name_the_option(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        Poller(**{option: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=option):
        watch(["a"], **{option: value})  # type: ignore[arg-type]


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="max_concurency"):
        Poller(max_concurency=3)  # type: ignore[call-arg]


def test_client_cannot_be_combined_with_transport() -> None:
    with pytest.raises(ValueError, match="client= or transport="):
        Poller(client=object(), transport=object())  # type: ignore[arg-type]


def test_timeout_error_is_a_builtin_timeout_error_with_last_statuses() -> None:
    error = WaitTimeoutError(5, {"a": JobStatus.INPROGRESS, "b": None})
    assert isinstance(error, TimeoutError)
    assert error.pending == {"a": JobStatus.INPROGRESS, "b": None}
    assert "a=INPROGRESS" in str(error)
    assert "b=unknown" in str(error)


@settings(deadline=None)
@given(st.text(alphabet="ab9Z-_ .é\n\t", max_size=70))
def test_fast_name_check_matches_the_api_pattern(name: str) -> None:
    from asyncoptjob._names import _NAME_RE, _is_valid

    assert _is_valid(name) == (_NAME_RE.fullmatch(name) is not None)


async def test_a_rate_budget_of_ones_own_is_used_for_every_call() -> None:
    from asyncoptjob.testing import FakeRequest, FakeTransport, describe_response

    def handler(request: FakeRequest) -> dict[str, object]:
        return dict(describe_response(request.job_name or "", "COMPLETED"))

    budget = RecordingBudget(asyncoptjob.AdaptiveRateLimiter(max_rate=1000))
    async with Poller(transport=FakeTransport(handler), rate_budget=budget) as poller:
        await poller.wait_until_done(["job-a", "job-b"], timeout=30)
    assert budget.acquired == 2
    assert len(budget.successes) == 2


@pytest.mark.parametrize(
    "other", [{"max_rate": 5}, {"initial_rate": 1}, {"redis_url": "redis://127.0.0.1:1/0"}]
)
def test_a_rate_budget_excludes_the_options_it_replaces(other: dict[str, object]) -> None:
    budget = asyncoptjob.AdaptiveRateLimiter()
    with pytest.raises(ValueError, match=f"rate_budget= or {next(iter(other))}="):
        Poller(rate_budget=budget, **other)  # type: ignore[arg-type]


def test_a_rate_budget_must_be_one() -> None:
    with pytest.raises(ValueError, match="rate_budget must be a RateBudget"):
        Poller(rate_budget=object())  # type: ignore[arg-type]
