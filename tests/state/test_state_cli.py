"""``asyncoptjob watch --state FILE --consumer NAME``, in-process through ``main(argv)``."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncoptjob.mock import MockSageMaker
from tests.cli.test_cli_commands import _no_instance_metadata, connect, invoke, lines

__all__ = ["_no_instance_metadata"]  # the fixture, used by every test here


def test_watch_with_state_shows_each_change_once_per_consumer(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    names = threaded_mock.seed_jobs(2, prefix="cli", outcome="COMPLETED")
    state = ["--output", "jsonl", "--state", str(tmp_path / "w.db")]
    code, out, _ = invoke(
        capsys, "watch", *names, *connect(threaded_mock), *state, "--consumer", "ops"
    )
    assert code == 0
    assert sorted(line["job_name"] for line in lines(out) if line["status"] == "COMPLETED") == names
    # Nothing new for ops; the run still ends with every job counted as completed.
    code, out, err = invoke(
        capsys, "watch", *names, *connect(threaded_mock), *state, "--consumer", "ops"
    )
    assert (code, out) == (0, "")
    assert "2/2 jobs finished" in err
    # Another consumer has its own cursors.
    code, out, _ = invoke(
        capsys, "watch", *names, *connect(threaded_mock), *state, "--consumer", "dev"
    )
    assert code == 0
    assert len([line for line in lines(out) if line["status"] == "COMPLETED"]) == 2


def test_consumer_without_state_and_a_bad_state_file_are_usage_errors(
    threaded_mock: MockSageMaker, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (name,) = threaded_mock.seed_jobs(1, prefix="cli", outcome="COMPLETED")
    code, _, err = invoke(capsys, "watch", name, *connect(threaded_mock), "--consumer", "ops")
    assert code == 2
    assert "--consumer needs --state" in err
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a database\n" * 100)
    code, _, err = invoke(capsys, "watch", name, *connect(threaded_mock), "--state", str(garbage))
    assert code == 2
    assert "notes.txt" in err
    assert "not a readable SQLite file" in err
