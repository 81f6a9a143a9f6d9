"""Security: no credential in logs, reprs, events or errors; loopback only; no shell, no eval.

The secret key is a sentinel string set in the environment (and, once, passed to a
caller-owned client); a run that goes through every kind of outcome (changes, retries,
throttles, an unknown job, a timeout, a failed job, refused credentials) must never
show it anywhere a user could print or log.
"""

from __future__ import annotations

import ast
import os
import subprocess
import traceback
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from aiobotocore.session import get_session

import asyncoptjob
from asyncoptjob import (
    AdaptiveRateLimiter,
    AsyncOptJobError,
    CredentialsError,
    JobFailedError,
    Poller,
    PollPolicy,
    RetryPolicy,
    WaitTimeoutError,
    wait_until_done,
    watch,
)
from asyncoptjob._transport import AioBotocoreTransport
from asyncoptjob.mock import Faults, MockSageMaker
from asyncoptjob.mock._server import is_loopback
from tests.helpers import FAST, quick_retry_opts

SRC = Path(asyncoptjob.__file__).resolve().parent
SECRET = "SENTINEL-SECRET-do-not-leak-9f8e7d6c5b4a"
TOKEN = "SENTINEL-SESSION-TOKEN-do-not-leak-0a1b2c3d"
KEY_ID = "TESTSENTINELKEYID0001"  # a sentinel, shaped unlike a real key


def _texts(obj: object) -> list[str]:
    """Every way a user might print ``obj``: repr, str, and for errors the traceback."""
    texts = [repr(obj), str(obj)]
    if isinstance(obj, BaseException):
        texts.append("".join(traceback.format_exception(obj)))
        for attr in ("descriptions", "done", "pending", "error"):
            if hasattr(obj, attr):
                texts.append(repr(getattr(obj, attr)))
    return texts


def _default_instances() -> list[object]:
    """One instance of every public class that can be made without arguments."""
    made = []
    for name in asyncoptjob.__all__:
        obj = getattr(asyncoptjob, name)
        if isinstance(obj, type) and not getattr(obj, "_is_protocol", False):
            try:
                made.append(obj())
            except TypeError:
                continue
    return made


async def test_credentials_never_appear_in_logs_reprs_events_or_errors(
    aio_session: Any, monkeypatch: pytest.MonkeyPatch, make_aio_client: Any
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    session = get_session()  # a fresh session reads the sentinel environment
    credentials = await session.get_credentials()
    assert credentials is not None
    assert credentials.secret_key == SECRET  # the requests below are signed with it
    seen: list[object] = []
    async with MockSageMaker(seed=501, lifecycle=FAST, faults=Faults(error_rate=0.2)) as mock:
        ok = mock.seed_jobs(3, prefix="ok", outcome="COMPLETED")
        bad = mock.seed_jobs(2, prefix="bad", outcome="FAILED")
        with structlog.testing.capture_logs() as logs:
            async with Poller(
                **quick_retry_opts(mock, session, not_found_grace=0.1, max_rate=50)
            ) as poller:
                seen += [poller, poller.stats, poller.watch(ok)]
                seen += [e async for e in poller.watch([*ok, *bad, "no-such-job"])]
                try:
                    await poller.wait_until_done(bad, raise_on_failure=True)
                except JobFailedError as exc:
                    seen.append(exc)
                mock.set_faults(throttle_rate=0.9)
                never = mock.seed_jobs(
                    1,
                    prefix="never",
                    lifecycle=FAST.__class__(
                        starting=(0.01, 0.01), in_progress=(float("inf"), float("inf"))
                    ),
                )
                try:
                    await poller.wait_until_done(never, timeout=0.3)
                except WaitTimeoutError as exc:
                    seen.append(exc)
                mock.set_faults(throttle_rate=0.0, error_code="ExpiredTokenException")
                try:
                    await poller.wait_until_done(ok)
                except CredentialsError as exc:
                    seen.append(exc)
                seen.append(poller.stats)
                mock.set_faults(error_code=None)
            seen.append(poller)  # closed
            # A caller-owned client created with the secret passed explicitly.
            async with session.create_client(
                "sagemaker",
                region_name="us-east-1",
                endpoint_url=mock.url,
                aws_access_key_id=KEY_ID,
                aws_secret_access_key=SECRET,
                aws_session_token=TOKEN,
            ) as client:
                seen.append(AioBotocoreTransport(client))
                async with Poller(client=client, poll_interval=0.05) as borrowed:
                    seen += [borrowed, await borrowed.wait_until_done(ok[0])]
                    seen += [e async for e in watch(ok, client=client, poll_interval=0.05)]
        limiter = AdaptiveRateLimiter(max_rate=5)
        seen += [limiter, limiter.statistics(), PollPolicy(), RetryPolicy(), mock]
        seen += _default_instances()
    kinds = {type(obj).__name__ for obj in seen}
    assert {"StatusChange", "JobErrorEvent", "PollerStats", "Poller", "Watch"} <= kinds, kinds
    assert {"JobFailedError", "WaitTimeoutError", "CredentialsError"} <= kinds, kinds
    texts = [text for obj in seen for text in _texts(obj)]
    texts += [repr(entry) for entry in logs]
    assert len(logs) > 10
    for secret in (SECRET, TOKEN):
        leaks = [text for text in texts if secret in text]
        assert leaks == [], leaks[:3]
    # Not a secret, but nothing of ours needs the key id either.
    assert [text for text in texts if KEY_ID in text] == []
    # Whole responses stay out of info-level (and higher) logs.
    for entry in logs:
        if entry["log_level"] != "debug":
            assert not any(isinstance(v, dict) for v in entry.values()), entry


def test_errors_carry_no_credentials_when_pickled_or_chained() -> None:
    error = CredentialsError(
        "DescribeOptimizationJob(a) was refused (ExpiredTokenException: expired)",
        code="ExpiredTokenException",
        operation="DescribeOptimizationJob",
        job_name="a",
        http_status=400,
    )
    import pickle

    again = pickle.loads(pickle.dumps(error))
    assert (again.code, again.job_name, again.http_status) == ("ExpiredTokenException", "a", 400)
    assert isinstance(again, AsyncOptJobError)


# -- the mock endpoint stays on this machine ------------------------------------------------


async def test_the_mock_binds_loopback_by_default() -> None:
    async with MockSageMaker() as mock:
        assert mock.host == "127.0.0.1"
        assert mock.url.startswith("http://127.0.0.1:")
        runner = mock._runner
        assert runner is not None
        assert all(is_loopback(address[0]) for address in runner.addresses)


@pytest.mark.parametrize(
    "host",
    [
        "",  # aiohttp would bind every interface
        "0.0.0.0",
        "::",
        "10.0.0.1",
        "::ffff:0.0.0.0",
        "localhost.example.com",
        "127.0.0.1.nip.io",
        "LOCALHOST ",
        "0",
    ],
)
def test_the_mock_refuses_non_loopback_addresses_unless_allowed(host: str) -> None:
    with pytest.raises(ValueError, match="allow_non_loopback"):
        MockSageMaker(host=host)
    with pytest.raises(SystemExit) as info:
        asyncoptjob.mock.main(["--host", host])
    assert info.value.code == 2


# -- no input reaches a shell or an evaluator ---------------------------------------------------

HOSTILE = [
    "$(rm -rf ~)",
    "; ls",
    "`id`",
    "job && reboot",
    "job | cat /etc/passwd",
    "../../etc/passwd",
    "job\nX-Injected: 1",
    "job\x00",
    "__import__('os').system('ls')",
    "{{7*7}}",
    "${HOME}",
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "jób",  # a look-alike letter
    "job-\u200b",  # zero-width space
]


async def test_hostile_names_are_rejected_before_anything_runs(
    aio_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args!r}")

    for target, name in (
        (os, "system"),
        (os, "popen"),
        (subprocess, "Popen"),
        (subprocess, "run"),
    ):
        monkeypatch.setattr(target, name, refuse)
    async with MockSageMaker(seed=502) as mock:
        for name in HOSTILE:
            with pytest.raises(ValueError, match="not valid") as info:
                watch(["fine", name], **quick_retry_opts(mock, aio_session))
            assert repr(name) in str(info.value)
            with pytest.raises(ValueError, match="not valid"):
                await wait_until_done(name, **quick_retry_opts(mock, aio_session))
        async with Poller(**quick_retry_opts(mock, aio_session)) as poller:
            with anyio.fail_after(5), pytest.raises(ValueError, match="not valid") as info:
                await poller.wait_until_done(HOSTILE)
            assert f"{len(HOSTILE)} job names are not valid" in str(info.value)
        assert mock.stats().counters == {}  # not one request


_FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint", "input"}
_FORBIDDEN_ATTRS = {
    ("os", "system"),
    ("os", "popen"),
    ("os", "execv"),
    ("os", "execvp"),
    ("os", "execl"),
    ("os", "spawnv"),
    ("os", "spawnl"),
    ("asyncio", "create_subprocess_shell"),
    ("pickle", "loads"),
    ("pickle", "load"),
    ("marshal", "loads"),
    ("yaml", "load"),
}


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        where = f"{path.name}:{node.lineno}"
        if isinstance(func, ast.Name) and func.id in _FORBIDDEN_CALLS:
            found.append(f"{where}: {func.id}()")
        if isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else ""
            if (owner, func.attr) in _FORBIDDEN_ATTRS or func.attr in {"eval", "exec"}:
                found.append(f"{where}: {owner}.{func.attr}()")
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                found.append(f"{where}: shell=...")
    return found


def test_the_source_never_evaluates_or_shells_out() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    problems = [problem for path in files for problem in _problems(path)]
    assert problems == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scan above is not vacuous: each forbidden form in a sample file is reported."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os, subprocess, asyncio, pickle\n"
        "eval('1')\nexec('x=1')\nos.system('ls')\n"
        "subprocess.run('ls', shell=True)\nasyncio.create_subprocess_shell('ls')\n"
        "pickle.loads(b'')\n__import__('os')\n",
        encoding="utf-8",
    )
    assert len(_problems(sample)) == 7
