"""``python -m benchmarks``: run scenarios, then write JSON, Markdown and a PNG.

Outputs go under ``--output-dir`` (default ``benchmarks/``, or ``benchmarks/results/quick``
with ``--quick``): ``RESULTS.md``, ``results/latest.json`` and ``results/comparison.png``.
A run of some scenarios (``--scenario s2``) replaces only those in an existing
``latest.json``; each scenario records the command and time that measured it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .environment import configure_process, machine_info, package_versions, source_info
from .plot import PLOT_NAME, draw
from .registry import RunContext, Scenario, discover
from .report import load_document, render_headline, render_markdown, write_document

__all__ = ["main"]

HERE = Path(__file__).resolve().parent


def _parser(known: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark asyncoptjob against boto3, aiobotocore and raw aiohttp "
        "contenders on the mock SageMaker endpoint (127.0.0.1 only).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, one repeat: a smoke run of every code path in a few seconds",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="KEY",
        help=f"run only this scenario (repeatable): {', '.join(known)}",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="where RESULTS.md and results/ go (default: benchmarks/, "
        "or benchmarks/results/quick with --quick)",
    )
    parser.add_argument(
        "--repeats", type=int, help="repeats per measurement (default: per scenario)"
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: re-render RESULTS.md and the plot from results/latest.json",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _select(registry: dict[str, Scenario], wanted: Sequence[str] | None) -> list[Scenario]:
    if not wanted:
        return list(registry.values())
    by_any = {**{s.name: s for s in registry.values()}, **registry}
    chosen: list[Scenario] = []
    for item in wanted:
        for key in item.split(","):
            found = by_any.get(key.strip())
            if found is None:
                raise SystemExit(f"unknown scenario {key!r}: use one of {', '.join(registry)}")
            if found not in chosen:
                chosen.append(found)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; return 0, or 1 if a scenario crashed."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    configure_process()
    registry = discover()
    args = _parser(list(registry)).parse_args(args_list)
    if args.list:
        for s in registry.values():
            print(f"{s.key}  {s.name:<16} {s.title}")
        return 0
    if args.repeats is not None and args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    selected = _select(registry, args.scenario)
    out_dir: Path = args.output_dir or (HERE / "results" / "quick" if args.quick else HERE)
    json_path = out_dir / "results" / "latest.json"
    if args.render:
        stored = load_document(json_path)
        if not stored["scenarios"]:
            raise SystemExit(f"nothing to render: no results in {json_path}")
        (out_dir / "RESULTS.md").write_text(render_markdown(stored), encoding="utf-8")
        draw(stored, out_dir / "results" / PLOT_NAME)
        print(f"rendered {out_dir / 'RESULTS.md'} and {out_dir / 'results' / PLOT_NAME}")
        return 0
    full_selection = len(selected) == len(registry)
    document: dict[str, Any] = (
        {"schema": 1, "scenarios": {}} if full_selection else load_document(json_path)
    )
    command = shlex.join(["python", "-m", "benchmarks", *args_list])
    failed: list[str] = []
    for chosen in selected:
        ctx = RunContext(
            quick=args.quick,
            repeats=args.repeats,
            verbose=not args.quiet,
            _log_prefix=f"[{chosen.key}] ",
        )
        ctx.log(chosen.title)
        started = datetime.now(timezone.utc)
        source = source_info()
        t0 = time.perf_counter()
        try:
            result = chosen.run(ctx)
        except Exception:
            traceback.print_exc()
            failed.append(chosen.key)
            continue
        result.run.update(
            command=command,
            quick=args.quick,
            started_at=started.isoformat(timespec="seconds"),
            duration_s=round(time.perf_counter() - t0, 1),
            source=source,
        )
        document["scenarios"][chosen.name] = result.to_dict()
        document.update(
            schema=1,
            generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            machine=machine_info(),
            packages=package_versions(),
        )
        # Written after every scenario, so a long run that dies keeps what it measured.
        write_document(json_path, document)
        (out_dir / "RESULTS.md").write_text(render_markdown(document), encoding="utf-8")
        ctx.log(f"done in {result.run['duration_s']:.0f} s")
    if document["scenarios"]:
        draw(document, out_dir / "results" / PLOT_NAME)
        print(render_headline(document))
        print()
        for scenario in document["scenarios"].values():
            for target in scenario.get("targets", []):
                state = "met   " if target["met"] else "MISSED"
                print(f"{state} {target['goal']}: {target['measured']}")
        print(f"\nwrote {out_dir / 'RESULTS.md'} and {json_path.parent}/")
    if failed:
        print(f"scenario(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
