"""The benchmarks keep working: ``python -m benchmarks --quick`` runs every scenario and
contender and writes well-formed JSON, Markdown and a PNG.

Timings are never asserted on (they belong in ``benchmarks/RESULTS.md``); the quick run
writes to a temporary directory, so the committed results are left alone.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT

# The quick run covers every scenario (S5 sweeps and S6 fleet included): give it room.
pytestmark = pytest.mark.timeout(300)

#: The scenarios that compare every contender; later ones may compare fewer.
SCENARIOS = ("s1_overhead", "s2_quota", "s3_lifecycle", "s4_scale")


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("benchmarks")
    result = _run("--quick", "--quiet", "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def document(quick_dir: Path) -> dict[str, Any]:
    with (quick_dir / "results" / "latest.json").open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


@pytest.fixture
def contender_keys(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.contenders import CONTENDERS

    return [c.key for c in CONTENDERS]


def test_writes_json_markdown_and_plot(quick_dir: Path) -> None:
    assert (quick_dir / "results" / "latest.json").is_file()
    assert (quick_dir / "RESULTS.md").is_file()
    png = (quick_dir / "results" / "comparison.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_document_describes_the_run(document: dict[str, Any]) -> None:
    assert document["machine"]["cores"] >= 1
    assert document["machine"]["python"]
    assert document["packages"]["asyncoptjob"]
    # Later scenarios (S5, ...) add to these; none of these may go missing.
    assert set(SCENARIOS) <= set(document["scenarios"])
    for scenario in document["scenarios"].values():
        assert scenario["run"]["quick"] is True
        assert scenario["run"]["command"].startswith("python -m benchmarks --quick")
        assert scenario["run"]["repeats"] >= 1


def test_every_contender_has_numbers_or_a_reason(
    document: dict[str, Any], contender_keys: list[str]
) -> None:
    for name, scenario in document["scenarios"].items():
        _check_scenario(name, scenario, contender_keys)


def _check_scenario(name: str, scenario: dict[str, Any], contender_keys: list[str]) -> None:
    assert scenario["tables"]
    covered = set()
    for table in scenario["tables"]:
        columns = [c["key"] for c in table["columns"]]
        assert table["rows"]
        for row in table["rows"]:
            covered.add(row["contender"])
            if row["na"] is not None:
                assert row["na"].startswith("n/a (")
                continue
            assert row["repeats"], (name, row["label"])
            for column in columns:
                value = row["values"][column]
                assert isinstance(value, (int, float)), (name, row["label"], column, value)
                assert math.isfinite(value), (name, row["label"], column, value)
    assert covered <= set(contender_keys), name
    if name in SCENARIOS:
        assert covered == set(contender_keys), name


def test_targets_and_headline(document: dict[str, Any], contender_keys: list[str]) -> None:
    targets = [t for s in document["scenarios"].values() for t in s["targets"]]
    assert {t["key"][:2] for t in targets} >= {"s1", "s2", "s3", "s4"}
    for target in targets:
        assert isinstance(target["met"], bool)
        assert target["goal"]
        assert target["measured"]
    for name, scenario in document["scenarios"].items():
        for line in scenario["headline"]:
            assert set(line["cells"]) <= set(contender_keys), (name, line["label"])
            if name in SCENARIOS:
                assert set(line["cells"]) == set(contender_keys), (name, line["label"])


def test_loop_lag_census_covers_every_phase(document: dict[str, Any]) -> None:
    census = document["scenarios"]["s10_loop_lag"]
    phases = ("open", "subscribe", "first_round", "durable", "fleet", "sweep", "cli")
    # Per phase: the whole lag, and the loop's own holds on ticks no full GC overlapped.
    assert {t["key"] for t in census["targets"]} == {
        f"s10_{phase}{part}" for phase in phases for part in ("", "_no_gc")
    }
    rows = [row for table in census["tables"] for row in table["rows"] if row["na"] is None]
    mine = [row for row in rows if row["contender"] == "asyncoptjob"]
    # Every phase (and the fleet's first round, the CLI's render ticks, the two phases
    # again with the host's frozen heap, the opens with state= and redis_url=) saw the
    # ticker run.
    assert len(mine) == len(phases) + 6
    for row in mine:
        values = row["values"]
        assert values["ticks"] >= 1
        # A hold is a lag capped at the loop's CPU, on a subset of the ticks.
        assert values["worst_held_ms"] <= values["worst_no_gc_ms"] <= values["worst_ms"]
    # Contender 4 where its pattern has the phase: its client creation and its first round.
    assert sum(row["contender"] == "aiobotocore_gather" for row in rows) == 2


def test_markdown_has_every_section(quick_dir: Path, document: dict[str, Any]) -> None:
    text = (quick_dir / "RESULTS.md").read_text(encoding="utf-8")
    for heading in ("# Benchmark results", "## Headline", "## Targets", "## Contenders"):
        assert heading in text
    for scenario in document["scenarios"].values():
        assert f"## {scenario['title']}" in text
    assert "Quick (smoke) run" in text
    assert "Machine:" in text


def test_lists_scenarios_and_rejects_unknown_ones() -> None:
    listed = _run("--list", timeout=60)
    assert listed.returncode == 0, listed.stderr
    for name in SCENARIOS:
        assert name in listed.stdout
    unknown = _run("--scenario", "s99", "--quick", timeout=60)
    assert unknown.returncode != 0
    assert "unknown scenario" in unknown.stderr
