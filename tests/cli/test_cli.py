"""The ``asyncoptjob`` command run as a user runs it: subprocesses, signals, exit codes.

Every test talks to the mock endpoint on 127.0.0.1 (served from a thread, so the
subprocess can reach it while the test blocks) with the dummy credentials that
``conftest.aws_env`` puts in the environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from asyncoptjob.mock import Lifecycle, MockProcess, MockSageMaker

FOREVER = Lifecycle(starting=(0.01, 0.01), in_progress=(float("inf"), float("inf")))
SCRIPT = Path(sys.executable).with_name("asyncoptjob")


def cli_env(**changes: str | None) -> dict[str, str]:
    """The test environment, never letting botocore look for credentials off this machine."""
    env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true", COLUMNS="120")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m asyncoptjob.cli ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "asyncoptjob.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=timeout,
        check=False,
    )


def connect(mock: MockSageMaker, poll: str = "0.05") -> list[str]:
    """The options that point the CLI at ``mock`` and poll it quickly."""
    return ["--endpoint-url", mock.url, "--region", "us-east-1", "--poll-interval", poll]


def json_lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def statuses_by_job(records: Sequence[dict[str, object]]) -> dict[str, list[object]]:
    by_job: dict[str, list[object]] = {}
    for record in records:
        by_job.setdefault(str(record["job_name"]), []).append(record.get("status"))
    return by_job


@pytest.fixture
def endpoint(threaded_mock: MockSageMaker) -> MockSageMaker:
    """The conftest's threaded mock (sub-second jobs), under a name that says what it is."""
    return threaded_mock


# -- watch ---------------------------------------------------------------------------------


def test_watch_prints_one_json_line_per_event_and_exits_0(endpoint: MockSageMaker) -> None:
    names = endpoint.seed_jobs(3, outcome="COMPLETED")
    result = run_cli("watch", *names, *connect(endpoint))
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    by_job = statuses_by_job(records)
    assert set(by_job) == set(names)
    for statuses in by_job.values():
        assert statuses[-1] == "COMPLETED"
        assert statuses.count("COMPLETED") == 1
    for record in records:
        assert set(record) == {"job_name", "previous_status", "status", "observed_at"}
        assert datetime.fromisoformat(str(record["observed_at"])).tzinfo is not None
    first = {r["job_name"]: r for r in reversed(records)}
    assert all(r["previous_status"] is None for r in first.values())
    assert "3/3 jobs finished" in result.stderr


def test_ctrl_c_stops_watch_with_a_summary_and_exit_130(endpoint: MockSageMaker) -> None:
    names = endpoint.seed_jobs(2, prefix="long", lifecycle=FOREVER)
    process = subprocess.Popen(
        [sys.executable, "-m", "asyncoptjob.cli", "watch", *names, *connect(endpoint)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert process.stdout is not None
        # The first event proves the run (and its signal handling) is under way.
        first = json.loads(process.stdout.readline())
        assert first["job_name"] in names
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "0/2 jobs finished" in stderr
    assert "(interrupted)" in stderr
    assert "Traceback" not in stderr


# -- wait ----------------------------------------------------------------------------------


def test_wait_prints_each_final_status(endpoint: MockSageMaker) -> None:
    (ok,) = endpoint.seed_jobs(1, prefix="ok", outcome="COMPLETED")
    (failed,) = endpoint.seed_jobs(1, prefix="bad", outcome="FAILED")
    result = subprocess.run(
        [str(SCRIPT), "wait", ok, failed, *connect(endpoint)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [ok, "COMPLETED"]
    assert lines[1].split()[:2] == [failed, "FAILED"]
    assert len(lines[1].split()) > 2  # the failure reason follows


# -- usage errors, demo, mock-server ----------------------------------------------------------


def test_invalid_names_are_one_line_on_stderr_and_exit_2() -> None:
    result = run_cli("watch", "ok-1", "bad_name", "trailing-", "--region", "us-east-1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "asyncoptjob: error: 2 job names are not valid: 'bad_name', 'trailing-'; "
        "use 1-63 letters, digits and hyphens, starting and ending with a letter or digit\n"
    )


def test_demo_runs_end_to_end_in_fast_mode() -> None:
    result = run_cli("demo", "--jobs", "30", "--duration", "2", "--no-live", timeout=90)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "30 optimization jobs on a mock SageMaker at http://127.0.0.1:" in out
    assert "throttling spell begins" in out
    assert "30/30 finished" in out
    # 10% fail and 8% are stopped, by construction: 3 + 2 of 30.
    rows = {cells[0]: cells[1] for cells in map(str.split, out.splitlines()) if len(cells) > 1}
    assert rows["COMPLETED"] == "25"
    assert rows["FAILED"] == "3"
    assert rows["STOPPED"] == "2"
    assert "every final status matches the mock's ground truth" in out


def test_mock_server_prints_its_url_and_serves_until_ctrl_c() -> None:
    process = MockProcess(
        ["--seed-jobs", "4"],
        command=[sys.executable, "-m", "asyncoptjob.cli", "mock-server"],
        env=cli_env(),
    )
    try:
        url = process.start()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/_mock/stats", timeout=10) as response:
            assert json.load(response)["jobs"] == 4
    finally:
        code = process.stop(signal.SIGINT, timeout=30)
    assert code == 0


def test_mock_server_refuses_a_non_loopback_host() -> None:
    result = run_cli("mock-server", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr
    assert "usage: asyncoptjob mock-server" in result.stderr
