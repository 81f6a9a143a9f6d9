"""Run one measurement in a fresh Python process, so several can run side by side.

Rate-limited measurements (S2) spend almost all their time waiting for the quota, so
the contenders run at the same time, each in its own process against its own mock (its
own "account"): CPU time stays attributable (``process_time`` of that process) and a
full run stays short. ``python -m benchmarks.isolation`` is the child side: it reads
``{"target": "module:function", "kwargs": {...}}`` as JSON on stdin, calls
``function(**kwargs)`` and writes its JSON-able result on stdout.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .environment import AWS_ENV, configure_process

__all__ = ["run_side_by_side"]

_ROOT = str(Path(__file__).resolve().parent.parent)


def run_side_by_side(
    calls: Sequence[tuple[str, Mapping[str, Any]]], *, timeout: float = 900
) -> list[Any]:
    """Run each ``(target, kwargs)`` in its own process, all at once; return the results.

    Raises:
        RuntimeError: a child failed (its stderr is in the message).
    """
    env = {**os.environ, **AWS_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (_ROOT, env.get("PYTHONPATH"))))
    with contextlib.ExitStack() as stack:
        children = []
        for target, kwargs in calls:
            # Files, not pipes: a chatty child can never block on a full pipe while we wait.
            out = stack.enter_context(tempfile.TemporaryFile("w+"))
            err = stack.enter_context(tempfile.TemporaryFile("w+"))
            child = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.isolation"],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                text=True,
                env=env,
                cwd=_ROOT,
            )
            stack.callback(_reap, child)
            assert child.stdin is not None
            child.stdin.write(json.dumps({"target": target, "kwargs": dict(kwargs)}))
            child.stdin.close()
            children.append((target, child, out, err))
        results = []
        for target, child, out, err in children:
            child.wait(timeout=timeout)
            out.seek(0)
            err.seek(0)
            if child.returncode != 0:
                raise RuntimeError(
                    f"{target} failed (exit {child.returncode}):\n{err.read()[-3000:]}"
                )
            results.append(json.loads(out.read().strip().splitlines()[-1]))
    return results


def _reap(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.kill()
        child.wait()


def _child() -> int:
    configure_process()
    request = json.loads(sys.stdin.read())
    module_name, _, function_name = request["target"].partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(**request["kwargs"])
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child())
