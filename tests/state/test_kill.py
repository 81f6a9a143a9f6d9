"""SIGKILL mid-stream, several times, then a restart on the same state file.

A real child process (``tests/state/_watcher.py``) watches jobs of a mock that runs in
its own process (so the mock outlives every kill) and appends each event to a log. The
log of all runs together must be, per job: continuous, forward-only, ended by exactly
one terminal status (the mock's truth), with at most one re-delivery per kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from asyncoptjob import JobStatus
from asyncoptjob.mock import MockProcess
from asyncoptjob.testing import InvariantError
from tests.helpers import ROOT

KILL = "--- killed ---"
RUNS_KILLED = 4


def check_restarts(log: list[str], truth: dict[str, str]) -> dict[str, int]:
    """Check the concatenated log of every run; return the re-deliveries per job.

    ``log`` holds one JSON event per line and a ``KILL`` line where a run was killed.
    After a kill a job's first event may repeat its last one (handled, not committed),
    or start from the status before it (the same, when the job moved on meanwhile).

    Raises:
        InvariantError: a job's log breaks one of the rules.
    """
    last: dict[str, dict[str, Any]] = {}
    killed_since: dict[str, bool] = {}
    again: dict[str, int] = dict.fromkeys(truth, 0)
    again_this_kill: set[str] = set()
    for line in log:
        if line == KILL:
            killed_since = dict.fromkeys(last, True)
            again_this_kill = set()
            continue
        event = json.loads(line)
        name, previous, status = event["job"], event["previous"], event["status"]
        before = last.get(name)
        if before is None:
            if previous is not None:
                raise InvariantError(f"{name}: first event starts from {previous}")
        elif previous == before["status"] and _rank(status) > _rank(previous):
            pass  # continuous, forward
        elif killed_since.get(name) and previous == before["previous"]:
            # The last event again (or from the same start, the job moved on): once per kill.
            if name in again_this_kill:
                raise InvariantError(f"{name}: delivered again twice after one kill")
            if _rank(status) < _rank(before["status"]):
                raise InvariantError(f"{name}: went back from {before['status']} to {status}")
            again_this_kill.add(name)
            again[name] += 1
        else:
            raise InvariantError(f"{name}: {before} then {event}")
        if (
            before is not None
            and JobStatus(before["status"]).is_terminal
            and name not in (again_this_kill)
        ):
            raise InvariantError(f"{name}: {event} after the terminal {before}")
        last[name] = event
        killed_since[name] = False
    for name, final in truth.items():
        seen = last.get(name)
        if seen is None or seen["status"] != final:
            raise InvariantError(f"{name}: ended {seen}, truth {final}")
    return again


def _rank(status: str | None) -> int:
    return -1 if status is None else JobStatus(status).rank


def lines_of(path: Path) -> list[str]:
    if not path.exists():
        return []
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]
    return complete.splitlines()


def truth_of(url: str, names: list[str]) -> dict[str, str]:
    with urllib.request.urlopen(url + "/_mock/transitions") as response:
        jobs = json.load(response)["jobs"]
    return {name: jobs[name][-1][0] for name in names}


def test_check_restarts_rules() -> None:
    def e(job: str, previous: str | None, status: str) -> str:
        return json.dumps({"job": job, "previous": previous, "status": status})

    ok = [
        e("a", None, "STARTING"),
        KILL,
        e("a", None, "INPROGRESS"),
        e("a", "INPROGRESS", "COMPLETED"),
    ]
    assert check_restarts(ok, {"a": "COMPLETED"}) == {"a": 1}
    with pytest.raises(InvariantError, match=r"twice|then"):
        check_restarts(
            [e("a", None, "STARTING"), KILL, e("a", None, "STARTING"), e("a", None, "STARTING")],
            {"a": "STARTING"},
        )
    with pytest.raises(InvariantError, match="then"):  # a gap without a kill
        check_restarts(
            [e("a", None, "STARTING"), e("a", "INPROGRESS", "COMPLETED")], {"a": "COMPLETED"}
        )
    with pytest.raises(InvariantError, match="ended"):
        check_restarts([e("a", None, "COMPLETED")], {"a": "FAILED"})


def test_sigkill_mid_stream_loses_nothing_and_repeats_at_most_one_per_kill(
    tmp_path: Path,
) -> None:
    args = ["--seed", "13", "--seed-jobs", "24", "--seed-prefix", "kill"]
    args += ["--starting", "0.3", "1.0", "--in-progress", "0.5", "2.0", "--stopping", "0.2", "0.4"]
    args += ["--failure-rate", "0.2", "--stop-rate", "0.2"]
    state, log = tmp_path / "watch.db", tmp_path / "events.log"
    with MockProcess(args) as mock:
        names = [f"kill-{i:05}" for i in range(24)]
        command = [sys.executable, "-m", "tests.state._watcher", mock.url, str(state), str(log)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        kills = 0
        for run in range(RUNS_KILLED + 1):
            child = subprocess.Popen(
                [*command, *names], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
            )
            try:
                if run < RUNS_KILLED:
                    # Kill once a few more events were handled (or it ended by itself).
                    target = len(lines_of(log)) + 3 + 2 * run
                    deadline = time.monotonic() + 20
                    while len(lines_of(log)) < target and child.poll() is None:
                        assert time.monotonic() < deadline, "the watcher made no progress"
                        time.sleep(0.005)
                    if child.poll() is None:
                        child.send_signal(signal.SIGKILL)
                        kills += 1
                assert child.wait(timeout=25) in (0, -signal.SIGKILL)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            if run < RUNS_KILLED:
                with log.open("a") as out:
                    out.write(KILL + "\n")
        assert child.returncode == 0
        truth = truth_of(mock.url, names)
    assert kills >= 2
    again = check_restarts(lines_of(log), truth)
    assert sum(again.values()) <= kills * len(names)
