"""Logging: silent unless asked, through ``logging`` or structlog, debug nearly free when off."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from asyncoptjob import Poller
from asyncoptjob._log import LOGGER_NAME, get_logger
from asyncoptjob.mock import MockSageMaker
from tests.helpers import ROOT, opts

PROGRAM = textwrap.dedent(
    """
    import asyncio
    import sys

    from asyncoptjob import watch
    from asyncoptjob.mock import Lifecycle, MockSageMaker

    LIFE = Lifecycle(starting=(0.02, 0.05), in_progress=(0.05, 0.1), stopping=(0.01, 0.02))


    async def main(missing: bool) -> None:
        async with MockSageMaker(seed=3, lifecycle=LIFE) as mock:
            names = mock.seed_jobs(20, outcome="COMPLETED")
            if missing:
                names.append("no-such-job")
            options = dict(
                endpoint_url=mock.url, region_name="us-east-1", poll_interval=0.02,
                not_found_grace=0,
            )
            async for _event in watch(names, **options):
                pass


    asyncio.run(main(missing=sys.argv[1] == "missing"))
    """
)


def run_program(variant: str) -> subprocess.CompletedProcess[str]:
    """Run PROGRAM (no logging configured at all) in a fresh interpreter."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONPATH": str(ROOT / "src"),
    }
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, variant],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=True,
    )


def test_a_clean_run_with_no_logging_configured_prints_nothing() -> None:
    done = run_program("clean")
    assert done.stdout == ""
    assert done.stderr == ""


def test_warnings_still_reach_stderr_with_no_logging_configured() -> None:
    done = run_program("missing")
    assert done.stdout == ""
    # logging's last-resort handler: the message alone, on stderr, once.
    assert done.stderr.count("job_error job_name=no-such-job error=") == 1, done.stderr
    assert "job_polled" not in done.stderr


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """structlog as a program that never configured it sees it; restored afterwards."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.environment import logging_left_unconfigured  # the benchmarks' S1 setup

    with logging_left_unconfigured():
        yield


@pytest.mark.usefixtures("unconfigured")
async def test_an_app_configures_the_librarys_logs_with_logging(
    mock: MockSageMaker, aio_session: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    names = mock.seed_jobs(3, outcome="COMPLETED")
    async with Poller(**opts(mock, aio_session)) as poller:
        await poller.wait_until_done(names)
    polled = [r for r in caplog.records if r.getMessage().startswith("job_polled ")]
    assert {r.name for r in polled} == {LOGGER_NAME}
    assert {r.levelno for r in polled} == {logging.DEBUG}
    assert {name for name in names if any(f"job_name={name}" in r.getMessage() for r in polled)}
    assert all("status=" in r.getMessage() for r in polled)


class Unprintable:
    """A field value that fails the moment anything renders it."""

    def __str__(self) -> str:
        raise AssertionError("rendered")

    __repr__ = __str__


@pytest.mark.usefixtures("unconfigured")
def test_a_debug_call_renders_nothing_while_debug_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = get_logger().bind()
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    log.debug("job_polled", value=Unprintable())  # gated before any processor runs
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    log.info("job_status_changed", value=Unprintable())
    assert caplog.records == []
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    with pytest.raises(AssertionError, match="rendered"):
        log.debug("job_polled", value=Unprintable())  # the gate, not luck, saved the above


def test_an_app_configures_the_librarys_logs_with_structlogs_stdlib_integration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    structlog.configure(  # undone by the conftest's `_structlog_as_it_was`
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.processors.KeyValueRenderer(key_order=["event"]),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    log = get_logger().bind(fleet="blue")
    log.info("strategy_changed", strategy="sweep")
    log.debug("job_polled")
    (record,) = caplog.records
    assert record.name == LOGGER_NAME
    assert record.getMessage() == (
        "event='strategy_changed' fleet='blue' strategy='sweep' level='info'"
    )


def test_an_app_configures_the_librarys_logs_with_structlog() -> None:
    with structlog.testing.capture_logs() as logs:
        get_logger().warning("sweep_failed", error="ThrottlingException")
    assert logs == [
        {"event": "sweep_failed", "error": "ThrottlingException", "log_level": "warning"}
    ]
