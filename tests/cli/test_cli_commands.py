"""The ``asyncoptjob`` commands run in-process through ``main(argv)``: outcomes and errors.

Same entry point as the console script, without a new interpreter per case, so the
many exit-status and error-message cases stay fast. ``test_cli.py`` covers what only a
real process shows (signals, the console script, the demo, the mock server).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from asyncoptjob.cli import ExitCode, main
from asyncoptjob.mock import Lifecycle, MockSageMaker

FOREVER = Lifecycle(starting=(0.01, 0.01), in_progress=(float("inf"), float("inf")))
# Long enough that the first describe sees STARTING even on a loaded machine, so a
# later status change (and its log line) is always observed.
SLOW_START = Lifecycle(starting=(1.5, 1.5), in_progress=(0.1, 0.1))


@pytest.fixture(autouse=True)
def _no_instance_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let botocore look for credentials beyond this machine (instance metadata).

    The CLI's structlog setup is undone by the conftest's ``_structlog_as_it_was``."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


def connect(mock: MockSageMaker) -> list[str]:
    return ["--endpoint-url", mock.url, "--region", "us-east-1", "--poll-interval", "0.05"]


def lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_watch_exits_1_when_a_job_fails_or_is_stopped(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    (ok,) = threaded_mock.seed_jobs(1, prefix="ok", outcome="COMPLETED")
    (failed,) = threaded_mock.seed_jobs(1, prefix="bad", outcome="FAILED")
    (stopped,) = threaded_mock.seed_jobs(1, prefix="halt", outcome="STOPPED")
    code, out, err = invoke(capsys, "watch", ok, failed, stopped, *connect(threaded_mock))
    assert code == ExitCode.FAILED, err
    final = {record["job_name"]: record for record in lines(out)}
    assert final[ok]["status"] == "COMPLETED"
    assert final[failed]["status"] == "FAILED"
    assert final[failed]["failure_reason"]
    assert final[stopped]["status"] == "STOPPED"
    assert "failure_reason" not in final[stopped]
    assert "3/3 jobs finished" in err


def test_watch_reports_an_unknown_job_as_an_error_line(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    (known,) = threaded_mock.seed_jobs(1, outcome="COMPLETED")
    code, out, err = invoke(
        capsys, "watch", known, "no-such-job", *connect(threaded_mock), "--not-found-grace", "0"
    )
    assert code == ExitCode.FAILED, err
    errors = [record for record in lines(out) if "error" in record]
    assert len(errors) == 1
    assert errors[0]["job_name"] == "no-such-job"
    assert errors[0]["error"] == "JobNotFoundError"
    assert errors[0]["code"] == "ResourceNotFound"
    assert "no-such-job" in str(errors[0]["message"])


def test_watch_times_out_with_exit_3(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    names = threaded_mock.seed_jobs(2, prefix="slow", lifecycle=FOREVER)
    code, out, err = invoke(capsys, "watch", *names, *connect(threaded_mock), "--timeout", "0.3")
    assert code == ExitCode.TIMEOUT
    assert "timed out after 0.3s with 2 job(s) unfinished" in err
    assert {record["status"] for record in lines(out)} <= {"STARTING", "INPROGRESS"}


def test_watch_reads_names_from_stdin(
    threaded_mock: MockSageMaker,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = threaded_mock.seed_jobs(2, outcome="COMPLETED")
    listing = f"# jobs to watch\n{names[0]}\n\n{names[1]}  # the second one\n{names[0]}\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(listing))
    code, out, err = invoke(capsys, "watch", "--from-file", "-", *connect(threaded_mock))
    assert code == ExitCode.OK, err
    assert {record["job_name"] for record in lines(out)} == set(names)


def test_watch_reads_names_from_a_file(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    names = threaded_mock.seed_jobs(2, outcome="COMPLETED")
    listing = tmp_path / "jobs.txt"
    listing.write_text("\n".join(names[1:]) + "\n")
    code, out, _ = invoke(
        capsys, "watch", names[0], "--from-file", str(listing), *connect(threaded_mock)
    )
    assert code == ExitCode.OK
    assert {record["job_name"] for record in lines(out)} == set(names)


def test_wait_exits_0_when_all_complete_and_3_on_timeout(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    names = threaded_mock.seed_jobs(2, outcome="COMPLETED")
    code, out, err = invoke(capsys, "wait", *names, *connect(threaded_mock), "--timeout", "30")
    assert code == ExitCode.OK, err
    assert [line.split() for line in out.splitlines()] == [[name, "COMPLETED"] for name in names]

    (slow,) = threaded_mock.seed_jobs(1, prefix="slow", lifecycle=FOREVER)
    code, out, err = invoke(capsys, "wait", slow, *connect(threaded_mock), "--timeout", "0.3")
    assert code == ExitCode.TIMEOUT
    assert out.split()[0] == slow
    assert out.rstrip().endswith("(not finished)")
    assert "timed out after 0.3s" in err


@pytest.mark.parametrize(
    ("args", "unset", "expected"),
    [
        pytest.param(
            ["watch", "bad_name", "ok-1", "x" * 64],
            (),
            "2 job names are not valid: 'bad_name', 'xxxx",
            id="invalid-names",
        ),
        pytest.param(["wait"], (), "no job names", id="no-names"),
        pytest.param(
            ["watch", "job-1", "--from-file", "/no/such/file"],
            (),
            "cannot read --from-file /no/such/file",
            id="missing-file",
        ),
        pytest.param(
            ["watch", "job-1", "--endpoint-url", "http://127.0.0.1:9"],
            ("AWS_DEFAULT_REGION", "AWS_REGION"),
            "no AWS region: pass --region, or set AWS_DEFAULT_REGION",
            id="no-region",
        ),
        pytest.param(
            ["watch", "job-1", "--endpoint-url", "http://127.0.0.1:9"],
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            id="no-credentials",
        ),
        pytest.param(
            ["wait", "job-1", "--profile", "nope", "--endpoint-url", "http://127.0.0.1:9"],
            (),
            "AWS profile 'nope' was not found",
            id="unknown-profile",
        ),
        pytest.param(
            ["watch", "job-1", "--endpoint-url", "not-a-url"],
            (),
            "--endpoint-url 'not-a-url' is not a URL",
            id="bad-url",
        ),
        pytest.param(
            # Port 9 (discard) on loopback: nothing listens, so connecting fails at once.
            ["watch", "job-1", "--endpoint-url", "http://127.0.0.1:9", "--region", "x-1"],
            (),
            "cannot reach the SageMaker endpoint http://127.0.0.1:9",
            id="unreachable",
        ),
    ],
)
def test_configuration_errors_are_one_line_and_exit_2(
    args: list[str],
    unset: tuple[str, ...],
    expected: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    code, out, err = invoke(capsys, *args)
    assert code == ExitCode.USAGE
    assert out == ""
    assert err.startswith("asyncoptjob: error: ")
    assert expected in err
    assert err.count("\n") == 1


def test_refused_credentials_are_a_configuration_error(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    threaded_mock.set_faults(error_code="ExpiredTokenException")
    code, _, err = invoke(capsys, "wait", "job-1", *connect(threaded_mock))
    assert code == ExitCode.USAGE
    assert "ExpiredTokenException" in err
    assert "refresh the credentials" in err


@pytest.mark.parametrize(
    "args",
    [
        ["watch", "job-1", "--max-rate", "0"],
        ["watch", "job-1", "--timeout", "-1"],
        ["watch", "job-1", "--output", "xml"],
        ["wait", "job-1", "--max-concurrency", "0"],
        ["demo", "--jobs", "0"],
    ],
)
def test_bad_option_values_are_usage_errors(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(capsys, *args)
    assert code == ExitCode.USAGE
    assert "Invalid value" in err


def test_log_format_json_sends_structured_logs_to_stderr(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    (name,) = threaded_mock.seed_jobs(1, outcome="COMPLETED", lifecycle=SLOW_START)
    args = ["--log-level", "info", "--log-format", "json"]
    code, out, err = invoke(capsys, "watch", name, *connect(threaded_mock), *args)
    assert code == ExitCode.OK, err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    changed = [entry for entry in logs if entry["event"] == "job_status_changed"]
    assert changed[-1]["status"] == "COMPLETED"
    assert changed[-1]["level"] == "info"
    assert changed[-1]["job_name"] == name
    # Stdout stays pure JSON lines of events.
    assert all("event" not in record for record in lines(out))


def test_default_log_level_keeps_info_logs_out(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    (name,) = threaded_mock.seed_jobs(1, outcome="COMPLETED", lifecycle=SLOW_START)
    code, _, err = invoke(capsys, "wait", name, *connect(threaded_mock))
    assert code == ExitCode.OK
    assert err == ""


def test_help_lists_every_command_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "--help")
    assert code == 0
    for command in ("demo", "watch", "wait", "mock-server"):
        assert command in out
    code, out, _ = invoke(capsys, "watch", "--help")
    assert code == 0
    assert "130 interrupted" in " ".join(out.split())
    code, out, _ = invoke(capsys, "--version")
    assert out.startswith("asyncoptjob ")


def test_strategy_sweep_lists_instead_of_describing_every_job(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    done = threaded_mock.seed_jobs(2, prefix="done", outcome="COMPLETED")
    running = threaded_mock.seed_jobs(3, prefix="long", lifecycle=FOREVER)
    args = [*connect(threaded_mock), "--strategy", "sweep", "--timeout", "1.5"]
    code, out, err = invoke(capsys, "watch", *done, *running, *args)
    assert code == ExitCode.TIMEOUT, err
    assert {r["job_name"] for r in lines(out) if r["status"] == "COMPLETED"} == set(done)
    # While the long jobs keep running, List calls (not describes) look for changes.
    assert threaded_mock.stats().count("ListOptimizationJobs", "ok") > 0
