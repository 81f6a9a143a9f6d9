"""The soak benchmark's quick mode still runs and finds no violation (a smoke test).

The real soak runs for minutes (``python -m benchmarks.soak --jobs 10000 --minutes 10``);
here it runs for a few seconds in its own process, mock endpoint included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def test_quick_soak_keeps_every_invariant(tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--quick", "--json", str(report_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "ok"
    assert report["violations"] == []
    invariants = report["invariants"]
    assert invariants["jobs_with_one_terminal_outcome"] == report["config"]["jobs"]
    assert invariants["waited_jobs_checked"] > 0
    resources = report["resources"]
    assert resources["tasks_after_close"] == 0
    assert resources["connections_after_close"] == 0
    assert report["samples"], "no resource samples were taken"
    # The faults really happened, and the endpoint saw exactly what the library sent.
    endpoint = report["requests"]["endpoint"]
    assert endpoint.get("ThrottlingException", 0) > 0
    assert report["requests"]["library_total"] == report["requests"]["endpoint_total"]
    assert "verdict: ok" in result.stdout
