"""Before and after: asyncoptjob's figures in two benchmark runs, side by side.

``python -m benchmarks.compare BEFORE.json AFTER.json --title "..."`` (written to
``benchmarks/results/before_after.md``)

Reads two ``results/latest.json`` documents (an older one from git, say
``git show REV:benchmarks/results/latest.json``) and prints a Markdown section: for
every scenario in both, asyncoptjob's headline cells and every target's measured value,
before and after, with the commit and command that measured each. ``RESULTS.md``
includes ``results/before_after.md`` when it exists, so the comparison survives the
next render. Only asyncoptjob's column is compared: the contenders are the yardstick
within each run, and the machine's noise differs between runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["compare", "main"]

OURS = "asyncoptjob"


def _measured_by(scenario: Mapping[str, Any]) -> str:
    run = scenario.get("run", {})
    commit = (run.get("source") or {}).get("commit") or "?"
    return f"`{run.get('command', '?')}` at {commit[:7]}"


def _rows(before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[list[str]]:
    old_cells = {line["label"]: line["cells"].get(OURS, "-") for line in before.get("headline", [])}
    for line in after.get("headline", []):
        label = line["label"]
        if label in old_cells:
            yield [label, old_cells[label], line["cells"].get(OURS, "-")]
    old_targets = {t["goal"]: t for t in before.get("targets", [])}
    for target in after.get("targets", []):
        old = old_targets.get(target["goal"])
        if old is not None:
            yield [
                f"target: {target['goal']}",
                f"{old['measured']} ({'met' if old['met'] else 'missed'})",
                f"{target['measured']} ({'met' if target['met'] else 'missed'})",
            ]


def compare(before: Mapping[str, Any], after: Mapping[str, Any], title: str) -> list[str]:
    """The Markdown lines of the comparison."""
    out = [f"## {title}", ""]
    common = [key for key in after["scenarios"] if key in before["scenarios"]]
    out += ["| scenario | measured before by | measured after by |", "| --- | --- | --- |"]
    for key in common:
        out.append(
            f"| {key} | {_measured_by(before['scenarios'][key])} "
            f"| {_measured_by(after['scenarios'][key])} |"
        )
    out += ["", "| asyncoptjob | before | after |", "| --- | --- | --- |"]
    for key in common:
        for row in _rows(before["scenarios"][key], after["scenarios"][key]):
            out.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    return [*out, ""]


def main(argv: list[str] | None = None) -> None:
    """Print the comparison of two results documents."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--title", default="Before and after")
    args = parser.parse_args(argv)
    before = json.loads(args.before.read_text())
    after = json.loads(args.after.read_text())
    sys.stdout.write("\n".join(compare(before, after, args.title)))


if __name__ == "__main__":
    main()
