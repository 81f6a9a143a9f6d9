"""Results as data (dataclasses -> JSON) and as a Markdown report rendered from that JSON.

The Markdown is rendered from the JSON document, not from live objects, so merging the
results of a partial run (``--scenario s2``) into an earlier full run re-renders cleanly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .contenders import CONTENDERS

__all__ = [
    "Column",
    "Headline",
    "Plot",
    "Row",
    "ScenarioResult",
    "Table",
    "Target",
    "fmt",
    "load_document",
    "render_markdown",
    "write_document",
]

SCHEMA = 1


@dataclass(slots=True)
class Column:
    """A table column: ``format(value, spec)`` renders each cell."""

    key: str
    label: str
    spec: str = ",.0f"


@dataclass(slots=True)
class Row:
    """One contender (or one variant of it) in a table.

    Attributes:
        contender: the contender's key (see :data:`benchmarks.contenders.CONTENDERS`).
        label: what the row is called in the table.
        values: the medians (or single values) shown, by column key.
        na: why this contender has no numbers here ("n/a (...)"), else None.
        repeats: each repeat's raw values, for the JSON.
    """

    contender: str
    label: str
    values: dict[str, float | None] = field(default_factory=dict)
    na: str | None = None
    repeats: list[dict[str, float]] = field(default_factory=list)


@dataclass(slots=True)
class Table:
    """Rows of contenders against metric columns."""

    key: str
    title: str
    columns: list[Column]
    rows: list[Row]
    note: str = ""


@dataclass(slots=True)
class Target:
    """A goal from the issue and whether this run met it."""

    key: str
    goal: str
    measured: str
    met: bool
    detail: str = ""


@dataclass(slots=True)
class Headline:
    """One line of the headline table: a short text per contender key."""

    label: str
    cells: dict[str, str]


@dataclass(slots=True)
class Plot:
    """A bar chart of one column of one table (drawn by :mod:`benchmarks.plot`)."""

    table: str
    column: str
    title: str
    log: bool = False


@dataclass(slots=True)
class ScenarioResult:
    """Everything one scenario measured."""

    key: str
    name: str
    title: str
    description: str
    params: dict[str, Any]
    tables: list[Table]
    targets: list[Target] = field(default_factory=list)
    headline: list[Headline] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (NaN becomes null)."""
        cleaned: dict[str, Any] = _clean(asdict(self))
        return cleaned


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def fmt(value: float | None, spec: str = ",.0f") -> str:
    """Render a number for a table; ``None``/NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


# -- the JSON document ----------------------------------------------------------------


def load_document(path: Path) -> dict[str, Any]:
    """The results document at ``path``, or an empty one."""
    try:
        with path.open(encoding="utf-8") as handle:
            document: dict[str, Any] = json.load(handle)
    except (OSError, ValueError):
        return {"schema": SCHEMA, "scenarios": {}}
    if document.get("schema") != SCHEMA:
        return {"schema": SCHEMA, "scenarios": {}}
    return document


def write_document(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as indented JSON (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(dict(document)), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


# -- Markdown ---------------------------------------------------------------------------


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    aligns = align or ("l" + "r" * (len(header) - 1))
    rule = ["---:" if a == "r" else "---" for a in aligns]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_headline(document: Mapping[str, Any]) -> str:
    """The headline table: one line per key number, one column per contender."""
    header = ["", *(c.title for c in CONTENDERS)]
    rows = []
    for scenario in _ordered(document):
        for line in scenario.get("headline", []):
            cells = line["cells"]
            rows.append([line["label"], *(cells.get(c.key, "-") for c in CONTENDERS)])
    return _md_table(header, rows) if rows else "_No scenario measured yet._"


def _ordered(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    scenarios: dict[str, dict[str, Any]] = document.get("scenarios", {})
    return [scenarios[k] for k in sorted(scenarios)]


def _render_table(table: Mapping[str, Any]) -> str:
    columns = table["columns"]
    header = ["contender", *(c["label"] for c in columns)]
    rows = []
    for row in table["rows"]:
        if row.get("na"):
            rows.append([row["label"], row["na"], *([""] * (len(columns) - 1))])
        else:
            values = row["values"]
            rows.append([row["label"], *(fmt(values.get(c["key"]), c["spec"]) for c in columns)])
    text = f"**{table['title']}**\n\n" + _md_table(header, rows)
    if table.get("note"):
        text += f"\n\n{table['note']}"
    return text


def _render_machine(document: Mapping[str, Any]) -> str:
    machine = document.get("machine", {})
    packages = document.get("packages", {})
    memory = machine.get("memory_gb")
    parts = [
        f"{machine.get('cores', '?')} cores ({machine.get('cpu_model', '?')})",
        f"{memory} GB RAM" if memory else None,
        machine.get("os"),
        machine.get("python"),
    ]
    shown = ", ".join(p for p in parts if p)
    versions = ", ".join(f"{name} {version}" for name, version in packages.items())
    return f"- Machine: {shown}.\n- Packages: {versions}."


def _source_text(source: Mapping[str, Any]) -> str:
    if not source.get("commit"):
        return ""
    dirty = source.get("src_changes")
    extra = f" plus uncommitted changes to {len(dirty)} path(s) in src/" if dirty else ""
    return f", commit {source['commit'][:7]}{extra}"


def render_markdown(document: Mapping[str, Any]) -> str:
    """The whole ``RESULTS.md`` for ``document``."""
    scenarios = _ordered(document)
    runs: dict[str, tuple[str, str]] = {}
    for s in scenarios:
        run = s.get("run", {})
        command = run.get("command", "?")
        started = run.get("started_at", "?")[:16]
        if command not in runs or started < runs[command][0]:
            runs[command] = (started, _source_text(run.get("source") or {}))
    quick = any(s.get("run", {}).get("quick") for s in scenarios)
    out = ["# Benchmark results", ""]
    if quick:
        out += ["> **Quick (smoke) run: tiny sizes, the numbers mean nothing.**", ""]
    out += [
        "Produced by the command(s) below; regenerate with `python -m benchmarks` "
        "(see [README.md](README.md) for what each scenario does and how it is measured).",
        "",
    ]
    out += [
        f"- `{command}` (started {started} UTC{source})"
        for command, (started, source) in sorted(runs.items())
    ]
    out += [_render_machine(document), ""]
    out += [
        "Medians of the repeats shown per scenario; in each repeat every contender runs back "
        "to back (interleaved, so machine noise hits all alike) and ratios between contenders "
        "are taken within a repeat, then their median is reported. Client CPU is "
        "`time.process_time()` of the benchmark process (all threads); the mock endpoint runs "
        "in its own process and its CPU is reported separately. structlog is filtered at "
        "WARNING in the benchmark process, as in an application with INFO logging off.",
        "",
        "## Headline",
        "",
        render_headline(document),
        "",
        "## Targets",
        "",
    ]
    target_rows = [
        [t["goal"], t["measured"], "met" if t["met"] else "**missed**", t.get("detail", "")]
        for s in scenarios
        for t in s.get("targets", [])
    ]
    out += [
        _md_table(["target", "measured", "", "detail"], target_rows, "llll")
        if target_rows
        else "_No targets measured._",
        "",
        "## Contenders",
        "",
    ]
    out += [f"{c.number}. **{c.label}**: {c.how}." for c in CONTENDERS]
    for scenario in scenarios:
        run = scenario.get("run", {})
        out += ["", f"## {scenario['title']}", "", scenario["description"], ""]
        params = ", ".join(f"{k}={v}" for k, v in scenario.get("params", {}).items())
        took = run.get("duration_s")
        out += [
            f"_Parameters: {params}. Repeats: {run.get('repeats', '?')}; took {took:.0f} s._"
            if isinstance(took, (int, float))
            else f"_Parameters: {params}._",
            "",
        ]
        for table in scenario.get("tables", []):
            out += [_render_table(table), ""]
        out += [f"- {note}" for note in scenario.get("notes", [])]
    # A before-and-after comparison written by ``benchmarks.compare``, kept across renders.
    before_after = Path(__file__).parent / "results" / "before_after.md"
    if before_after.exists():
        out += ["", before_after.read_text().rstrip()]
    return "\n".join(out).rstrip() + "\n"
