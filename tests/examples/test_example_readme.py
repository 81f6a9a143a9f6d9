"""Every Python example in README.md runs, unchanged, against the mock endpoint.

The examples are written for real AWS (``region_name="us-east-1"``, no endpoint);
``AWS_ENDPOINT_URL`` sends their clients to the mock instead, which holds jobs with
the names the README uses.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import structlog

from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.helpers import ROOT

README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
SNIPPETS = [block for block in BLOCKS if "def test_" not in block]
PYTEST_SNIPPETS = [block for block in BLOCKS if "def test_" in block]

QUICK = {"starting": (0.01, 0.02), "in_progress": (0.02, 0.05), "stopping": (0.01, 0.02)}
# README name -> the lifecycle its job follows on the mock.
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
    """The mock, holding the README's jobs, all but ``slow-job`` already finished."""
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
        # The README's waits use the real default poll interval (20 s): let the jobs
        # finish first, so the first describe already sees each outcome.
        deadline = time.monotonic() + 30
        while any(mock.status(name) not in ("COMPLETED", "FAILED") for name in list(JOBS)[:3]):
            assert time.monotonic() < deadline, "the README's jobs did not finish"
            time.sleep(0.01)
        yield mock


@pytest.fixture(autouse=True)
def _quiet_library_logs() -> Iterator[None]:
    """Keep structlog's default (print everything) from mixing logs into the output."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    yield
    structlog.configure(**saved)


def test_the_readme_has_examples() -> None:
    assert len(SNIPPETS) >= 6
    assert len(PYTEST_SNIPPETS) == 2  # the mock endpoint, and the testing kit


@pytest.mark.parametrize("code", SNIPPETS, ids=lambda code: code.splitlines()[2][:40])
def test_readme_example_runs(
    code: str,
    sagemaker: MockSageMaker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", sagemaker.url)
    exec(compile(code, str(README), "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    if "asyncio.run" in code:
        assert out.strip(), "the example printed nothing"
        assert "Traceback" not in out


@pytest.mark.parametrize("snippet", PYTEST_SNIPPETS, ids=["mock", "testing_kit"])
def test_readme_pytest_example_passes(snippet: str, tmp_path: Path) -> None:
    test_file = tmp_path / "test_readme_mock.py"
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
