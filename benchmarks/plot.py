"""The PNG of the main comparisons: one bar chart per ``Plot`` a scenario asked for."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from .contenders import CONTENDERS

__all__ = ["PLOT_NAME", "draw"]

PLOT_NAME = "comparison.png"

# One colour per contender, the same in every panel.
_COLOURS = dict(
    zip(
        (c.key for c in CONTENDERS),
        ("#8c8c8c", "#b07aa1", "#4e79a7", "#f28e2b", "#bab0ac", "#59a14f"),
        strict=True,
    )
)


def _panels(document: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    panels = []
    scenarios = document.get("scenarios", {})
    for key in sorted(scenarios):
        scenario = scenarios[key]
        tables = {t["key"]: t for t in scenario.get("tables", [])}
        for plot in scenario.get("plots", []):
            table = tables.get(plot["table"])
            if table is not None:
                panels.append((scenario["title"].split(":")[0], plot, table))
    return panels


def draw(document: Mapping[str, Any], path: Path) -> Path | None:
    """Draw every requested panel into one PNG at ``path``; None if there is nothing."""
    panels = _panels(document)
    if not panels:
        return None
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (prefix, plot, table) in zip(axes.flat, panels, strict=False):
        spec = next(c for c in table["columns"] if c["key"] == plot["column"])
        labels, values, colours = [], [], []
        for row in table["rows"]:
            value = None if row.get("na") else row["values"].get(plot["column"])
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            labels.append(row["label"])
            values.append(value)
            colours.append(_COLOURS.get(row["contender"], "#333333"))
        positions = list(range(len(values)))
        ax.barh(positions, values, color=colours)
        ax.set_yticks(positions, labels, fontsize=8)
        ax.invert_yaxis()
        if plot.get("log") and values:
            if min(values) > 0:
                ax.set_xscale("log")
            else:
                ax.set_xscale("symlog", linthresh=1.0)
        ax.set_title(f"{prefix}: {plot['title']}", fontsize=10)
        ax.set_xlabel(spec["label"], fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        for position, value in zip(positions, values, strict=True):
            ax.annotate(
                format(value, spec["spec"]),
                (value, position),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
