"""MkDocs hooks: publish the benchmark results from where they are generated; check the reference.

* ``benchmarks/RESULTS.md``, ``benchmarks/README.md`` and the plot
  ``benchmarks/results/comparison.png`` are served from their place in the repository
  (not copied into ``docs/``), so the site always shows what ``python -m benchmarks``
  last wrote, and a missing file fails the build.
* In table rows, ``\\|`` inside a code span becomes ``|``: GitHub needs the escape
  there, Python-Markdown already keeps a code span's pipes in their cell.
* After the build, the API reference must have an anchor for every name in
  ``__all__`` of ``asyncoptjob``, ``asyncoptjob.mock`` and ``asyncoptjob.testing``
  (``asyncoptjob.Poller``, ``asyncoptjob.mock.MockSageMaker``, ...): a public name the
  reference lost fails the build.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]

#: Files outside ``docs/`` that the site serves, relative to the repository root, and
#: where (``benchmarks/README.md`` would otherwise take ``benchmarks/``, the docs' own
#: benchmarks page).
BENCHMARK_FILES = {
    "benchmarks/RESULTS.md": "benchmarks/results/index.html",
    "benchmarks/README.md": "benchmarks/method/index.html",
    "benchmarks/results/comparison.png": "benchmarks/results/comparison.png",
}

#: The reference page, and the modules whose ``__all__`` it must cover.
REFERENCE_PAGE = "reference/api/index.html"
PUBLIC_MODULES = ("asyncoptjob", "asyncoptjob.mock", "asyncoptjob.testing")


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    for path, dest in BENCHMARK_FILES.items():
        if not (ROOT / path).is_file():
            raise PluginError(f"{path} is missing: the benchmarks page shows it")
        file = File(
            path,
            src_dir=str(ROOT),
            dest_dir=config.site_dir,
            use_directory_urls=config.use_directory_urls,
        )
        if config.use_directory_urls:
            file.dest_uri = dest
        files.append(file)
    return files


CODE_SPAN = re.compile(r"`[^`\n]*`")


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return "\n".join(
        CODE_SPAN.sub(lambda span: span.group(0).replace("\\|", "|"), line)
        if line.startswith("|")
        else line
        for line in markdown.split("\n")
    )


def required_anchors() -> list[str]:
    """``module.NAME`` for every public name, e.g. ``asyncoptjob.Poller``."""
    anchors = []
    for module_path in PUBLIC_MODULES:
        module = importlib.import_module(module_path)
        anchors += [f"{module_path}.{name}" for name in module.__all__]
    return anchors


def missing_anchors(html: str) -> list[str]:
    """The required anchors that ``html`` (the built reference page) does not define."""
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    return [anchor for anchor in required_anchors() if anchor not in ids]


def on_post_build(config: MkDocsConfig, **kwargs: Any) -> None:
    page = Path(config.site_dir) / REFERENCE_PAGE
    if not page.is_file():
        raise PluginError(f"the API reference page {REFERENCE_PAGE} was not built")
    missing = missing_anchors(page.read_text(encoding="utf-8"))
    if missing:
        raise PluginError(
            f"the API reference has no entry for {', '.join(missing)}: give each a docstring "
            "(mkdocstrings skips undocumented names) or check docs/reference/api.md"
        )
