"""Bad answers never take the Poller down: checked at the boundary, one job at a time.

Every transport's answers pass the same checks (here through the testing kit's
``FakeTransport``): a malformed answer is a per-job ``MalformedResponse`` under the
retry policy, an unknown status is reported, a bug while handling one job's answer ends
that job alone, and a List that cannot finish its window fails the sweep (describes
take over).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from asyncoptjob import (
    Event,
    JobErrorEvent,
    JobStatus,
    Poller,
    PollPolicy,
    RetryPolicy,
    StatusChange,
    SweepPolicy,
    TransientError,
)
from asyncoptjob.testing import FakeRequest, FakeTransport, check_events, describe_response

FAST = {
    "poll_interval": PollPolicy(interval=0.005, max_interval=0.01, jitter=0.0),
    "retry": RetryPolicy(initial_wait=0.001, max_wait=0.005, max_elapsed=0.5),
    "initial_rate": None,
    "not_found_grace": 0.0,
}
LIST = "ListOptimizationJobs"


def scripted(answers: Mapping[str, Sequence[Any]]) -> Callable[[FakeRequest], Any]:
    """Each job's answers in turn; the last one again and again."""
    calls: Counter[str] = Counter()

    def handler(request: FakeRequest) -> Any:
        if request.operation == LIST:
            return {"OptimizationJobSummaries": []}
        name = request.job_name or ""
        script = answers[name]
        answer = script[min(calls[name], len(script) - 1)]
        calls[name] += 1
        return answer(name) if callable(answer) else answer

    return handler


def done(status: str) -> Callable[[str], dict[str, Any]]:
    return lambda name: describe_response(name, status)


async def watch_all(names: list[str], handler: Callable[[FakeRequest], Any], **extra: Any) -> Any:
    async with Poller(transport=FakeTransport(handler), **{**FAST, **extra}) as poller:
        with anyio.fail_after(30):
            events = [event async for event in poller.watch(names)]
        assert poller.health().alive
        return events, poller.stats


def forward(events: Sequence[Event]) -> None:
    """Per job, statuses never go back in the forward order."""
    ranks: dict[str, int] = {}
    for event in events:
        if isinstance(event, StatusChange):
            assert event.status.rank >= ranks.get(event.job_name, -1), events
            ranks[event.job_name] = event.status.rank


MALFORMED = [
    pytest.param({}, id="no status"),
    pytest.param({"OptimizationJobStatus": 5}, id="a number"),
    pytest.param({"OptimizationJobStatus": None}, id="null"),
    pytest.param({"OptimizationJobStatus": ""}, id="empty"),
    pytest.param({"OptimizationJobStatus": ["COMPLETED"]}, id="a list"),
    pytest.param({"message": "<html>not JSON</html>"}, id="a 200 that was not JSON"),
]


@pytest.mark.parametrize("bad", MALFORMED)
async def test_a_malformed_answer_is_retried_and_the_job_goes_on(bad: dict[str, Any]) -> None:
    events, stats = await watch_all(
        ["bad", "good"],
        scripted({"bad": [bad, bad, done("COMPLETED")], "good": [done("COMPLETED")]}),
    )
    by_job = check_events(events, ["bad", "good"])
    assert [e.status for e in by_job["bad"]] == [JobStatus.COMPLETED]  # type: ignore[union-attr]
    assert stats.requests["transient"] == 2


@pytest.mark.parametrize("bad", MALFORMED)
async def test_an_answer_malformed_for_good_ends_that_job_only(bad: dict[str, Any]) -> None:
    events, _ = await watch_all(
        ["bad", "good"], scripted({"bad": [bad], "good": [done("INPROGRESS"), done("COMPLETED")]})
    )
    by_job = check_events(events, ["bad", "good"])
    (ended,) = by_job["bad"]
    assert isinstance(ended, JobErrorEvent)
    assert isinstance(ended.error, TransientError)
    assert ended.error.code == "MalformedResponse"
    assert by_job["good"][-1].status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_an_unknown_status_is_reported_not_terminal_and_logged_once() -> None:
    paused = done("PAUSED-FOR-TEST")
    with capture_logs() as logs:
        events, _ = await watch_all(
            ["a", "b"],
            scripted(
                {
                    "a": [done("INPROGRESS"), paused, paused, paused, done("COMPLETED")],
                    "b": [paused, paused, done("COMPLETED")],
                }
            ),
        )
    by_job = check_events(events, ["a", "b"])
    assert [e.status for e in by_job["a"]] == [  # type: ignore[union-attr]
        "INPROGRESS",
        "PAUSED-FOR-TEST",
        "COMPLETED",
    ]
    unknown = JobStatus("PAUSED-FOR-TEST")
    assert unknown is by_job["a"][1].status  # type: ignore[union-attr]
    assert not unknown.is_terminal
    assert not unknown.is_known
    assert JobStatus.COMPLETED.is_known
    warned = [e for e in logs if e["event"] == "unknown_job_status"]
    assert [e["status"] for e in warned] == ["PAUSED-FOR-TEST"]
    assert warned[0]["log_level"] == "warning"


def test_a_status_that_is_not_a_printable_string_is_not_a_status() -> None:
    for bad in (5, None, "", "a\nb", "x" * 65):
        with pytest.raises(ValueError, match="is not a valid JobStatus"):
            JobStatus(bad)


async def test_a_transport_raising_something_unexpected_ends_that_job_alone() -> None:
    def handler(request: FakeRequest) -> Any:
        if request.job_name == "broken":
            raise KeyError("OptimizationJobStatus")  # a user's transport with a bug
        return describe_response(request.job_name or "", "COMPLETED")

    with capture_logs() as logs:
        events, _ = await watch_all(["broken", "fine"], handler)
    by_job = check_events(events, ["broken", "fine"])
    (ended,) = by_job["broken"]
    assert isinstance(ended, JobErrorEvent)
    assert isinstance(ended.error, KeyError)
    assert by_job["fine"][-1].status is JobStatus.COMPLETED  # type: ignore[union-attr]
    failed = [e for e in logs if e["event"] == "job_answer_failed"]
    assert [e["job_name"] for e in failed] == ["broken"]
    assert isinstance(failed[0]["exc_info"], KeyError)


def sweeping_handler(
    pages: Callable[[int], dict[str, Any]], finished: set[str]
) -> Callable[[FakeRequest], Any]:
    """Jobs INPROGRESS at their first describe, COMPLETED after; List from ``pages``."""
    lists = itertools.count()

    def handler(request: FakeRequest) -> Any:
        if request.operation == LIST:
            return pages(next(lists))
        name = request.job_name or ""
        status = "COMPLETED" if name in finished else "INPROGRESS"
        finished.add(name)
        return describe_response(name, status)

    return handler


SWEEP = {
    "strategy": "sweep",
    # Sweeps every 20 ms; while they run, a job's safety-net describe is an hour away.
    "sweep": SweepPolicy(interval=0.02, safety_interval=3600.0, max_rate=None, max_window_pages=5),
}


@pytest.mark.parametrize(
    "pages",
    [
        pytest.param(lambda n: {"OptimizationJobSummaries": [], "NextToken": "same"}, id="same"),
        pytest.param(
            lambda n: {"OptimizationJobSummaries": [], "NextToken": f"t{n}"}, id="endless"
        ),
    ],
)
async def test_a_sweep_that_cannot_finish_fails_and_describes_take_over(
    pages: Callable[[int], dict[str, Any]],
) -> None:
    names = [f"job-{i}" for i in range(20)]
    with capture_logs() as logs:
        events, stats = await watch_all(names, sweeping_handler(pages, set()), **SWEEP)
    by_job = check_events(events, names)
    assert all(by_job[name][-1].status is JobStatus.COMPLETED for name in names)  # type: ignore[union-attr]
    failures = [e for e in logs if e["event"] == "sweep_failed"]
    assert failures
    assert all(e["error"] == "SweepCannotFinish" for e in failures)
    assert stats.list_requests["ok"] <= 10 * len(failures) + 10


async def test_odd_list_pages_change_nothing() -> None:
    # Duplicates across pages, unwatched jobs, LastModifiedTime going backwards: only
    # hints; every job still ends once, in order.
    names = ["a", "b"]
    ancient = datetime(1970, 1, 1, tzinfo=timezone.utc)
    future = datetime(9999, 1, 1, tzinfo=timezone.utc)

    def pages(n: int) -> dict[str, Any]:
        summaries = [
            {
                "OptimizationJobName": "a",
                "OptimizationJobStatus": "COMPLETED",
                "LastModifiedTime": future,
            },
            {
                "OptimizationJobName": "a",
                "OptimizationJobStatus": "STARTING",
                "LastModifiedTime": ancient,
            },
            {"OptimizationJobName": "not-watched", "OptimizationJobStatus": "FAILED"},
            {"OptimizationJobName": "b", "OptimizationJobStatus": "COMPLETED", "Extra": {"x": 1}},
        ]
        return {
            "OptimizationJobSummaries": summaries,
            **({"NextToken": "p2"} if n % 2 == 0 else {}),
        }

    events, _ = await watch_all(names, sweeping_handler(pages, set()), **SWEEP)
    by_job = check_events(events, names)
    forward(events)
    assert all(by_job[name][-1].status is JobStatus.COMPLETED for name in names)  # type: ignore[union-attr]


# -- the invariants, for any answers --------------------------------------------------

WELL_FORMED = st.sampled_from(["STARTING", "INPROGRESS", "STOPPING", "PAUSED", "QUEUED-V2"])
TERMINAL = st.sampled_from(["COMPLETED", "FAILED", "STOPPED"])
ODD_TIMES = st.sampled_from(
    [
        datetime(1, 1, 1, tzinfo=timezone.utc),
        datetime(9999, 12, 31, tzinfo=timezone.utc),
        "yesterday",
        0,
    ]
)
EXTRA = st.dictionaries(
    st.sampled_from(["Foo", "LastModifiedTime", "CreationTime"]), ODD_TIMES, max_size=2
)


@st.composite
def answer(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        status, extra = draw(WELL_FORMED), draw(EXTRA)
        return lambda name: {
            **describe_response(name, "INPROGRESS"),
            **extra,
            "OptimizationJobStatus": status,
        }
    return draw(st.sampled_from([p.values[0] for p in MALFORMED]))


@st.composite
def script(draw: st.DrawFn) -> list[Any]:
    steps = draw(st.lists(answer(), max_size=4))
    return [*steps, done(draw(TERMINAL))]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=st.lists(script(), min_size=1, max_size=4))
async def test_any_answers_keep_every_invariant(scripts: list[list[Any]]) -> None:
    names = [f"job-{i}" for i in range(len(scripts))]
    events, _ = await watch_all(names, scripted(dict(zip(names, scripts, strict=True))))
    by_job = check_events(events, names)  # one terminal outcome each, in order
    forward(events)
    for name, steps in zip(names, scripts, strict=True):
        last = by_job[name][-1]
        # The terminal answer always comes: malformed ones before it are retried.
        assert isinstance(last, StatusChange), (name, steps, by_job[name])
        assert last.status.is_terminal
