"""Every Python example in README.md and docs/ runs, unchanged, against the mock endpoint.

Every ```` ```python ```` block of ``README.md`` and ``docs/**/*.md`` is an example: a
program, executed as ``__main__``; or, when it defines ``def test_``, a test module, run
by pytest in a subprocess. The examples are written for real AWS
(``region_name="us-east-1"``, no endpoint); ``AWS_ENDPOINT_URL`` sends their clients to
the mock instead, which holds jobs with the names the docs use (``JOBS``). A program
runs in a temporary working directory, so a file it writes goes nowhere else.

Two kinds of blocks are not run here: ```` ```py ```` blocks, fragments that cannot run
alone (a few lines of a replica's code in fleet mode), and a block that only includes a
file (``--8<-- "examples/service.py"``), which its own test runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import structlog

from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.helpers import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("**/*.md"))]

#: A fenced ```python block, possibly indented (inside an admonition).
FENCE = re.compile(r"^([ \t]*)```python\n(.*?)^\1```[ \t]*$", flags=re.DOTALL | re.MULTILINE)
#: A block that only includes a file (pymdownx.snippets).
INCLUDE = re.compile(r'\A(\s*--8<--\s+"[^"]+"\s*)+\Z')


@dataclass(frozen=True)
class Example:
    """One ```python block: where it is, and its code."""

    page: Path
    line: int
    code: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def examples(page: Path) -> list[Example]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        code = textwrap.dedent(match.group(2))
        if not INCLUDE.match(code):
            line = text.count("\n", 0, match.start()) + 2  # the code's first line
            found.append(Example(page, line, code))
    return found


EXAMPLES = [example for page in PAGES for example in examples(page)]
SNIPPETS = [example for example in EXAMPLES if "def test_" not in example.code]
PYTEST_SNIPPETS = [example for example in EXAMPLES if "def test_" in example.code]

QUICK = {"starting": (0.01, 0.02), "in_progress": (0.02, 0.05), "stopping": (0.01, 0.02)}
# A name the docs use -> the lifecycle its job follows on the mock.
JOBS = {
    "llama3-8b-int4": Lifecycle(**QUICK),  # type: ignore[arg-type]
    "qwen2-7b-eagle": Lifecycle(**QUICK),  # type: ignore[arg-type]
    "mistral-7b-fp8": Lifecycle(**QUICK, failure_rate=1.0),  # type: ignore[arg-type]
    "slow-job": Lifecycle(starting=(0.01, 0.01), in_progress=(float("inf"), float("inf"))),
}


def create_job(client: object, name: str) -> None:
    client.create_optimization_job(  # type: ignore[attr-defined]
        OptimizationJobName=name,
        RoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
        ModelSource={"S3": {"S3Uri": "s3://models/llama3-8b/"}},
        DeploymentInstanceType="ml.g5.2xlarge",
        OptimizationConfigs=[{"ModelQuantizationConfig": {"OverrideEnvironment": {}}}],
        OutputConfig={"S3OutputLocation": "s3://models/out/"},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )


@pytest.fixture(scope="module")
def sagemaker() -> Iterator[MockSageMaker]:
    """The mock, holding the docs' jobs, all but ``slow-job`` already finished."""
    with MockSageMaker(seed=3).run_in_thread() as mock:
        client = boto3.session.Session().client(
            "sagemaker",
            region_name="us-east-1",
            endpoint_url=mock.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for name, lifecycle in JOBS.items():
            mock.lifecycle = lifecycle
            create_job(client, name)
        client.close()
        # The examples' waits use the real default poll interval (20 s): let the jobs
        # finish first, so the first describe already sees each outcome.
        deadline = time.monotonic() + 30
        while any(mock.status(name) not in ("COMPLETED", "FAILED") for name in list(JOBS)[:3]):
            assert time.monotonic() < deadline, "the docs' jobs did not finish"
            time.sleep(0.01)
        yield mock


@pytest.fixture(autouse=True)
def _quiet_library_logs() -> None:
    """Keep structlog's default (print everything) from mixing logs into the output (the
    conftest's ``_structlog_as_it_was`` undoes it)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))


def test_the_docs_have_examples() -> None:
    pages = {example.page for example in EXAMPLES}
    assert README in pages  # the quickstart
    assert len(pages) >= 8
    assert len(SNIPPETS) >= 12
    assert len(PYTEST_SNIPPETS) == 2  # the mock endpoint, and the testing kit


def test_included_files_exist() -> None:
    """pymdownx.snippets fails the build on a missing file; this says so without a build."""
    for page in PAGES:
        for path in re.findall(r'--8<--\s+"([^"]+)"', page.read_text(encoding="utf-8")):
            assert (ROOT / path).is_file(), f"{page.relative_to(ROOT)} includes {path}"


@pytest.mark.parametrize("example", SNIPPETS, ids=lambda example: example.id)
def test_example_runs(
    example: Example,
    sagemaker: MockSageMaker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", sagemaker.url)
    monkeypatch.chdir(tmp_path)  # a file an example writes lands in the test's own folder
    code = "\n" * (example.line - 1) + example.code  # tracebacks point at the page's line
    exec(compile(code, str(example.page), "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    if "asyncio.run" in example.code:
        assert out.strip(), "the example printed nothing"
        assert "Traceback" not in out


@pytest.mark.parametrize("example", PYTEST_SNIPPETS, ids=lambda example: example.id)
def test_pytest_example_passes(example: Example, tmp_path: Path) -> None:
    snippet = example.code
    test_file = tmp_path / "test_docs_example.py"
    test_file.write_text(snippet)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            str(test_file),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{snippet.count('def test_')} passed" in result.stdout
