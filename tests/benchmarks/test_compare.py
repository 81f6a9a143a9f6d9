"""``benchmarks.compare`` puts asyncoptjob's figures of two runs side by side."""

from __future__ import annotations

from typing import Any

from benchmarks.compare import compare


def doc(commit: str, rate: str, measured: str, met: bool) -> dict[str, Any]:
    return {
        "scenarios": {
            "s1_overhead": {
                "run": {
                    "command": "python -m benchmarks --scenario s1",
                    "source": {"commit": commit},
                },
                "headline": [{"label": "S1 describes/s", "cells": {"asyncoptjob": rate, "x": "1"}}],
                "targets": [{"goal": "S1 fast", "measured": measured, "met": met}],
            },
            "only_before": {"run": {}, "headline": [], "targets": []},
        }
    }


def test_each_figure_and_target_before_and_after() -> None:
    after = doc("b" * 40, "950", "1.1 x", True)
    del after["scenarios"]["only_before"]
    lines = compare(doc("a" * 40, "900", "0.9 x", False), after, "T")
    text = "\n".join(lines)
    assert lines[0] == "## T"
    assert "| S1 describes/s | 900 | 950 |" in text
    assert "| target: S1 fast | 0.9 x (missed) | 1.1 x (met) |" in text
    assert "at aaaaaaa | `python -m benchmarks --scenario s1` at bbbbbbb |" in text
    assert "only_before" not in text  # only scenarios measured in both runs
