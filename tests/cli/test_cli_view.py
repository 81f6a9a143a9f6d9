"""What the command line shows: the board's numbers, JSON lines, the live view and summary."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

from asyncoptjob import JobErrorEvent, JobNotFoundError, JobStatus, PollerStats, StatusChange
from asyncoptjob.cli import ExitCode
from asyncoptjob.cli._board import Board
from asyncoptjob.cli._connect import Connection
from asyncoptjob.cli._demo import DemoSettings, run_demo
from asyncoptjob.cli._jsonl import event_record, event_to_json
from asyncoptjob.cli._run import Output, WatchSettings, run_wait, run_watch
from asyncoptjob.cli._view import final_lines, live_view, progress_line, summary
from asyncoptjob.mock import MockSageMaker
from asyncoptjob.testing import ManualClock

AT = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def change(
    name: str, previous: JobStatus | None, status: JobStatus, reason: str | None = None
) -> StatusChange:
    description: dict[str, object] = {"OptimizationJobName": name, "OptimizationJobStatus": status}
    if reason is not None:
        description["FailureReason"] = reason
    return StatusChange(name, previous, status, description, AT)  # type: ignore[arg-type]


def stats(total: int, throttled: int = 0) -> PollerStats:
    return PollerStats(
        requests={"ok": total - throttled, "throttled": throttled, "transient": 0},
        retries=throttled,
        events_emitted=0,
        jobs_watched=3,
        jobs_active=1,
        jobs_finished=2,
        subscribers=1,
        in_flight=2,
        rate_limit=12.5 if throttled else None,
        measured_rate=10.0,
        strategy="sweep",
        sweeps=3,
        list_requests={"ok": 6, "throttled": 1},
    )


def played_board() -> Board:
    """Three jobs: one completed, one failed with a reason, one still running."""
    clock = ManualClock(start=100.0)
    board = Board(["job-a", "job-b", "job-c"], clock=clock.now)
    board.record(change("job-a", None, JobStatus.INPROGRESS))
    board.record(change("job-b", None, JobStatus.STARTING))
    board.sample(stats(10))
    clock.jump(2)
    board.record(change("job-a", JobStatus.INPROGRESS, JobStatus.COMPLETED))
    board.record(change("job-b", JobStatus.STARTING, JobStatus.FAILED, "CapacityError: no GPUs"))
    board.sample(stats(50, throttled=4))
    return board


# -- the board -------------------------------------------------------------------------------


def test_board_counts_rates_and_exit_status() -> None:
    board = played_board()
    assert board.total == 3
    assert board.finished == 2
    assert board.counts()["COMPLETED"] == 1
    assert board.counts()["FAILED"] == 1
    assert board.counts()["PENDING"] == 1
    assert board.request_rate == pytest.approx(20.0)  # 40 requests in 2 s
    assert board.peak_rate == pytest.approx(20.0)
    assert board.unfinished() == {"job-c": "PENDING"}
    assert board.exit_code() == ExitCode.TIMEOUT  # a job is unfinished

    board.record(JobErrorEvent("job-c", JobNotFoundError("not found", code="ResourceNotFound")))
    assert board.exit_code() == ExitCode.FAILED
    board.interrupted = True
    assert board.exit_code() == ExitCode.INTERRUPTED


def test_board_counts_kept_as_events_come_match_a_recount() -> None:
    board = played_board()
    board.record(change("job-c", None, JobStatus("PAUSED")))  # a status this release lacks
    board.record(change("job-c", JobStatus("PAUSED"), JobStatus.STOPPED))
    recount: dict[str, int] = {}
    for state in board.status.values():
        recount[state] = recount.get(state, 0) + 1
    assert {state: n for state, n in board.counts().items() if n} == recount
    assert board.finished == 3
    assert re.search(r"STOPPED +1 ", summary_text(board))


def summary_text(board: Board) -> str:
    console = Console(file=io.StringIO(), width=100)
    console.print(summary(board))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_board_exit_status_is_ok_only_when_every_job_completed() -> None:
    board = Board(["job-a"])
    assert board.exit_code() == ExitCode.TIMEOUT
    board.record(change("job-a", None, JobStatus.COMPLETED))
    assert board.exit_code() == ExitCode.OK
    board.timed_out = True
    assert board.exit_code() == ExitCode.TIMEOUT


# -- JSON lines ------------------------------------------------------------------------------


def test_json_lines_carry_the_documented_fields() -> None:
    failed = change("job-b", JobStatus.INPROGRESS, JobStatus.FAILED, "CapacityError: no GPUs")
    assert json.loads(event_to_json(failed)) == {
        "job_name": "job-b",
        "previous_status": "INPROGRESS",
        "status": "FAILED",
        "observed_at": "2024-05-01T12:00:00+00:00",
        "failure_reason": "CapacityError: no GPUs",
    }
    error = JobErrorEvent("job-c", JobNotFoundError("job-c was not found", code="ResourceNotFound"))
    assert event_record(error) == {
        "job_name": "job-c",
        "error": "JobNotFoundError",
        "message": "job-c was not found",
        "code": "ResourceNotFound",
    }
    assert "code" not in event_record(JobErrorEvent("job-d", RuntimeError("boom")))


# -- rendering -------------------------------------------------------------------------------


def render(renderable: object, width: int = 100) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True)
    console.print(renderable)
    return console.export_text()


def test_live_view_shows_progress_statuses_rates_and_transitions() -> None:
    board = played_board()
    text = render(live_view(board, title="watching 3 jobs", notes=["throttling spell"]))
    assert "watching 3 jobs" in text
    assert "2/3 finished" in text
    assert "PENDING 1" in text
    assert "COMPLETED 1" in text
    assert "FAILED 1" in text
    assert "requests 57" in text  # 50 describes and 7 list calls
    assert "20.0 req/s" in text
    assert "throttled 4" in text
    assert "rate limit 12.5/s" in text
    assert "strategy sweep (3 sweeps, 7 list calls)" in text
    assert "throttling spell" in text
    newest = text.index("job-b STARTING -> FAILED  CapacityError: no GPUs")
    assert newest < text.index("job-a INPROGRESS -> COMPLETED")


def test_progress_line_is_one_plain_line() -> None:
    line = progress_line(played_board(), ["spell"])
    assert "\n" not in line
    assert "2/3 finished | PENDING 1  COMPLETED 1  FAILED 1 |" in line
    assert "4 throttled, rate limit 12.5/s, sweep | spell" in line


def test_summary_tables_and_final_lines() -> None:
    board = played_board()
    board.timed_out = True
    text = render(summary(board, title="the end"))
    assert "the end" in text
    rows = {cells[0]: cells[1:] for cells in map(str.split, text.splitlines()) if cells}
    assert rows["COMPLETED"][0] == "1"
    assert rows["FAILED"][0] == "1"
    assert rows["total"][0] == "3"
    # The requests table stands to the right of the jobs table, on the same lines.
    requests = {
        " ".join(cells[-3:-1]) if cells[-3] == "list" else cells[-2]: cells[-1]
        for cells in map(str.split, text.splitlines())
        if len(cells) >= 3
    }
    assert requests["throttled"] == "4"
    assert requests["list ok"] == "6"
    assert requests["list throttled"] == "1"
    assert rows["job-b"] == ["FAILED", "CapacityError:", "no", "GPUs"]
    assert "timed out" in text
    assert final_lines(board) == [
        "job-a  COMPLETED",
        "job-b  FAILED  CapacityError: no GPUs",
        "job-c  PENDING  (not finished)",
    ]


# -- the live view end to end ----------------------------------------------------------------


@pytest.fixture
def settings(mock: MockSageMaker) -> WatchSettings:
    names = mock.seed_jobs(3, outcome="COMPLETED") + mock.seed_jobs(1, outcome="FAILED")
    connection = Connection(region="us-east-1", endpoint_url=mock.url, max_concurrency=4)
    return WatchSettings(names=names, connection=connection, poll_interval=0.05, timeout=30)


async def test_watch_live_view_renders_progress_and_summary(settings: WatchSettings) -> None:
    out = Console(record=True, width=120, file=io.StringIO(), force_terminal=True)
    err = Console(record=True, width=120, file=io.StringIO())
    code = await run_watch(settings, Output.LIVE, console=out, err_console=err)
    assert code == ExitCode.FAILED
    text = out.export_text()
    assert "4/4 finished" in text
    assert "recent transitions" in text
    rows = {cells[0]: cells[1:] for cells in map(str.split, text.splitlines()) if cells}
    assert rows["COMPLETED"][0] == "3"
    assert rows["FAILED"][0] == "1"
    assert rows["total"][0] == "4"
    assert err.export_text() == ""


class _Terminal(io.StringIO):
    """A terminal's file that notes which thread wrote what."""

    def __init__(self) -> None:
        super().__init__()
        self.by_thread: dict[int, str] = {}

    def write(self, text: str) -> int:
        ident = threading.get_ident()
        self.by_thread[ident] = self.by_thread.get(ident, "") + text
        return super().write(text)


async def test_the_live_view_is_laid_out_and_written_off_the_loop(
    settings: WatchSettings,
) -> None:
    terminal = _Terminal()
    out = Console(width=120, file=terminal, force_terminal=True)
    err = Console(width=120, file=io.StringIO())
    assert await run_watch(settings, Output.LIVE, console=out, err_console=err) == ExitCode.FAILED
    on_the_loop = terminal.by_thread.pop(threading.get_ident(), "")
    assert "finished" not in on_the_loop  # at most the cursor's control codes
    assert "4/4 finished" in "".join(terminal.by_thread.values())  # the renders and summary


async def test_watch_jsonl_and_wait_in_process(settings: WatchSettings) -> None:
    stdout = _Terminal()
    err = Console(record=True, width=200, file=io.StringIO())
    code = await run_watch(
        settings, Output.JSONL, console=Console(file=io.StringIO()), err_console=err, stdout=stdout
    )
    assert code == ExitCode.FAILED
    assert threading.get_ident() not in stdout.by_thread  # the lines written off the loop
    records = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert {r["job_name"] for r in records if r["status"] in ("COMPLETED", "FAILED")} == set(
        settings.names
    )
    assert "4/4 jobs finished" in err.export_text()

    out = Console(record=True, width=200, file=io.StringIO())
    assert await run_wait(settings, console=out, err_console=err) == ExitCode.FAILED
    finals = [line.split()[:2] for line in out.export_text().splitlines()]
    assert finals == [[name, "COMPLETED"] for name in settings.names[:3]] + [
        [settings.names[3], "FAILED"]
    ]


def test_watch_on_a_terminal_defaults_to_the_live_view(threaded_mock: MockSageMaker) -> None:
    (name,) = threaded_mock.seed_jobs(1, outcome="COMPLETED")
    primary, secondary = pty.openpty()
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", TERM="xterm", COLUMNS="100")
    args = ["watch", name, "--endpoint-url", threaded_mock.url, "--poll-interval", "0.05"]
    process = subprocess.Popen(
        [sys.executable, "-m", "asyncoptjob.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side closed, the process ended
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
        process.wait(timeout=60)
    screen = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, screen
    assert "1/1 finished" in screen
    assert "COMPLETED" in screen
    assert '"job_name"' not in screen  # not JSON lines


def test_observed_times_are_shown_in_local_time() -> None:
    board = Board(["job-a"])
    board.record(change("job-a", None, JobStatus.STARTING))
    local = (AT + timedelta(0)).astimezone().strftime("%H:%M:%S")
    assert local in render(live_view(board, title=""))


async def test_demo_live_view_in_process() -> None:
    console = Console(record=True, width=120, file=io.StringIO(), force_terminal=True)
    settings = DemoSettings(jobs=12, duration=1.5, live=True, seed=1)
    assert await run_demo(settings, console=console) == ExitCode.OK
    text = console.export_text()
    assert "12 optimization jobs on a mock SageMaker" in text
    assert "throttling spell: the mock now allows only 10 describes/s" in text
    assert "12/12 finished" in text
    rows = {cells[0]: cells[1:] for cells in map(str.split, text.splitlines()) if cells}
    assert rows["COMPLETED"][0] == "10"  # 12 jobs: 1 fails, 1 is stopped
    assert rows["FAILED"][0] == "1"
    assert rows["STOPPED"][0] == "1"
    assert "every final status matches the mock's ground truth" in text
