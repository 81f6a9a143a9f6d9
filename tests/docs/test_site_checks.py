"""The documentation site's own checks (``docs/_ext``), without building the site.

``mkdocs build --strict`` (in ``.ci/run``) runs them for real: the hook fails the build
when the API reference lacks a public name, and the griffe extension turns the
docstrings' Sphinx roles into links the build can resolve (and two other rST habits
into Markdown). These tests pin what they
check. They need the ``docs`` extra, which ``.ci/run`` installs.
"""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest

from tests.helpers import ROOT

pytest.importorskip("mkdocs")
pytest.importorskip("griffe")


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "_ext" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = load("hooks")
docstrings = load("docstrings")

#: The reference entries issue 16 names explicitly.
ISSUE_ANCHORS = [
    f"asyncoptjob.{name}"
    for name in (
        "Poller",
        "watch",
        "wait_until_done",
        "StatusChange",
        "RetryPolicy",
        "SweepPolicy",
        "WaitTimeoutError",
    )
]


def test_the_reference_must_cover_every_public_name() -> None:
    import asyncoptjob
    import asyncoptjob.mock
    import asyncoptjob.testing

    required = hooks.required_anchors()
    assert set(ISSUE_ANCHORS) <= set(required)
    for module in (asyncoptjob, asyncoptjob.mock, asyncoptjob.testing):
        assert {f"{module.__name__}.{name}" for name in module.__all__} <= set(required)


def test_a_missing_anchor_is_reported() -> None:
    required = hooks.required_anchors()
    html = "".join(
        f'<h2 id="{anchor}">x</h2>' for anchor in required if anchor != "asyncoptjob.watch"
    )
    assert hooks.missing_anchors(html) == ["asyncoptjob.watch"]
    assert hooks.missing_anchors(html + '<h2 class="doc" id="asyncoptjob.watch">') == []


def test_the_benchmark_files_exist() -> None:
    for path in hooks.BENCHMARK_FILES:
        assert (ROOT / path).is_file(), path


def test_escaped_pipes_in_table_code_become_plain() -> None:
    page = "| `a [b\\|c]` | d\\|e |\ntext `f\\|g`"
    assert hooks.on_page_markdown(page) == "| `a [b|c]` | d\\|e |\ntext `f\\|g`"


def test_docstrings_become_markdown_with_links_to_public_names() -> None:
    import griffe

    extension = docstrings.RestToMarkdown()
    package = griffe.load("asyncoptjob", search_paths=[ROOT / "src"], extensions=None)
    extension.on_package(pkg=package)
    api = package["_api"]
    watch_doc = api["watch"].docstring.value
    assert "[`Poller`][asyncoptjob.Poller]" in watch_doc
    assert "[`PollerOptions`][asyncoptjob.PollerOptions]" in watch_doc
    for obj in (package, api["watch"], package["testing"]):
        assert not re.search(r":(class|func|meth|mod):`", obj.docstring.value)
    assert "Examples:\n    >>> import asyncio" in package["mock"].docstring.value
    assert "minutes to hours:\n\n" in package["_policy.PollPolicy"].docstring.value
