"""Ways to run the mock: its own process, a thread, in-process; loopback only unless allowed."""

from __future__ import annotations

import json
import signal
import socket
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import aiohttp
import anyio
import pytest

from asyncoptjob.mock import Faults, MockProcess, MockSageMaker, build_parser, main
from asyncoptjob.mock._process import mock_from_args
from asyncoptjob.mock._server import is_loopback
from tests.helpers import ROOT


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_process_mode(
    make_aio_client: Callable[..., AbstractAsyncContextManager[Any]], sig: signal.Signals
) -> None:
    process = MockProcess(
        [
            "--port",
            "0",
            "--seed",
            "3",
            "--seed-jobs",
            "4",
            "--describe-rate",
            "100",
            "--list-rate",
            "10",
            "--latency-ms",
            "1",
            "--error-rate",
            "0",
            "--starting",
            "0",
            "inf",
        ],
        startup_timeout=30,
    )
    url = await anyio.to_thread.run_sync(process.start)
    try:
        assert url.startswith("http://127.0.0.1:")
        async with make_aio_client(url) as client:
            job = await client.describe_optimization_job(OptimizationJobName="job-00003")
            assert job["OptimizationJobStatus"] == "STARTING"
        async with aiohttp.ClientSession() as http, http.get(f"{url}/_mock/stats") as response:
            stats = await response.json()
        assert stats["jobs"] == 4
        assert stats["counters"] == {"DescribeOptimizationJob": {"ok": 1}}
        assert stats["faults"]["describe_rate"] == 100.0
        assert stats["faults"]["list_rate"] == 10.0
    finally:
        code = await anyio.to_thread.run_sync(partial(process.stop, sig, timeout=10))
    assert code == 0


async def test_process_refuses_non_loopback_host() -> None:
    process = MockProcess(["--host", "0.0.0.0"], startup_timeout=30)
    with pytest.raises(RuntimeError, match="did not start") as info:
        await anyio.to_thread.run_sync(process.start)
    assert process.returncode == 2
    assert "first stdout line ''" in str(info.value)  # nothing on stdout: no URL
    assert "--allow-non-loopback" in process.stderr()


def test_main_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--host", "192.0.2.10"], ["--describe-burst", "0.5"], ["--error-rate", "2"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "describe_burst" in capsys.readouterr().err


def test_parser_defaults_and_reuse() -> None:
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.seed_jobs, args.describe_rate) == ("127.0.0.1", 0, 0, None)
    import argparse

    outer = argparse.ArgumentParser(prog="asyncoptjob mock-server")
    build_parser(outer)
    assert outer.parse_args(["--list-rate", "2"]).list_rate == 2.0


def test_bad_answer_options_reach_the_faults() -> None:
    argv = [
        "--unknown-status-rate",
        "0.5",
        "--unknown-status",
        "ARCHIVED",
        "--stuck-list-rate",
        "1",
    ]
    faults = mock_from_args(build_parser().parse_args(argv)).faults
    assert (faults.unknown_status_rate, faults.unknown_status) == (0.5, "ARCHIVED")
    assert faults.stuck_list_rate == 1.0
    assert mock_from_args(build_parser().parse_args([])).faults == Faults()


def test_main_rejects_a_known_status_as_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--unknown-status", "COMPLETED"])
    assert info.value.code == 2
    assert "unknown_status" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    MockSageMaker(host=host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com"])
def test_non_loopback_hosts_need_consent(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ValueError, match="allow_non_loopback"):
        MockSageMaker(host=host)
    MockSageMaker(host=host, allow_non_loopback=True)  # constructed, never started here


def test_bad_account_id() -> None:
    with pytest.raises(ValueError, match="account_id"):
        MockSageMaker(account_id="1234")


async def test_in_process_lifecycle() -> None:
    mock = MockSageMaker(seed=1)
    with pytest.raises(RuntimeError, match="not running"):
        _ = mock.url
    async with mock:
        assert mock.url.startswith("http://127.0.0.1:")
        assert repr(mock).startswith("MockSageMaker(url='http://127.0.0.1:")
        with pytest.raises(RuntimeError, match="already running"):
            await mock.start()
    with pytest.raises(RuntimeError):
        _ = mock.url


async def test_ipv6_loopback_url() -> None:
    try:
        async with MockSageMaker(host="::1") as mock:
            assert mock.url.startswith("http://[::1]:")
    except OSError:  # pragma: no cover - hosts without IPv6
        pytest.skip("no IPv6 loopback here")


def test_thread_mode_startup_failure_propagates() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        mock = MockSageMaker(port=port)
        with pytest.raises(OSError, match="address"), mock.run_in_thread():
            pass  # pragma: no cover - never reached


def test_thread_mode_serves_and_stops(threaded_mock: MockSageMaker) -> None:
    import urllib.request

    threaded_mock.seed_jobs(2)
    with urllib.request.urlopen(f"{threaded_mock.url}/_mock/stats") as response:
        assert json.load(response)["jobs"] == 2
    threaded_mock.set_faults(latency_ms=1)
    assert threaded_mock.faults.latency_ms == 1.0


def test_benchmark_smoke() -> None:
    import subprocess

    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "mock_throughput.py"),
            "--jobs",
            "50",
            "--concurrency",
            "4",
            "--duration",
            "0.3",
            "--warmup",
            "0.05",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] > 0
    assert summary["non_200"] == 0
    assert summary["mock_counted_ok"] >= summary["ok"]
