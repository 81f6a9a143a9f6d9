"""Launching the mock endpoint as a child process, for tests and benchmarks.

`MockProcess` runs ``python -m asyncoptjob.mock ARGS`` (see `._process`), reads the
URL from its first stdout line and stops it cleanly. A separate process keeps the
endpoint's CPU time out of the caller's, and lets a test send it signals.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import IO

import anyio.to_thread

__all__ = ["MockProcess"]


class MockProcess:
    """The mock SageMaker endpoint in its own process: ``python -m asyncoptjob.mock ARGS``.

    Use it as a context manager (``with`` or ``async with``), or call :meth:`start`
    and :meth:`stop`. The mock binds 127.0.0.1 on a free port unless *args* say
    otherwise; change and inspect it through its control path (``url + "/_mock/..."``).

    Args:
        args: the mock's command-line options (``python -m asyncoptjob.mock --help``),
            e.g. ``["--seed", "1", "--seed-jobs", "100", "--describe-rate", "20"]``.
        command: the program to run instead of ``[sys.executable, "-m",
            "asyncoptjob.mock"]``, e.g. ``["asyncoptjob", "mock-server"]``; *args* follow it.
        env: the child's whole environment (default: this process's).
        startup_timeout: seconds to wait for the URL.

    Example:
        >>> import json, urllib.request
        >>> with MockProcess(["--seed", "1", "--seed-jobs", "3"]) as mock:
        ...     with urllib.request.urlopen(mock.url + "/_mock/stats") as response:
        ...         json.load(response)["jobs"]
        3
        >>> mock.returncode
        0
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        base = [sys.executable, "-m", "asyncoptjob.mock"] if command is None else list(command)
        self.argv: list[str] = [*base, *args]
        self.env = None if env is None else dict(env)
        self.startup_timeout = startup_timeout
        self._url: str | None = None
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self._stderr_tail = ""
        self._exit_status: int | None = None

    @property
    def url(self) -> str:
        """The endpoint's URL, e.g. ``http://127.0.0.1:43121``.

        Raises:
            RuntimeError: before :meth:`start`.
        """
        if self._url is None:
            raise RuntimeError("the mock process is not running: call start() first")
        return self._url

    @property
    def pid(self) -> int | None:
        """The child's process id (None before :meth:`start`), e.g. to measure it."""
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it ended (negative: killed by that signal)."""
        return self._exit_status if self._process is None else self._process.poll()

    def start(self) -> str:
        """Start the process and return its URL, read from its first stdout line.

        Raises:
            RuntimeError: it is started already, or it exited or printed something
                else first (the message quotes its stderr, e.g. a bad option), or no
                URL came within ``startup_timeout`` seconds.
        """
        if self._process is not None:
            raise RuntimeError(f"the mock process is already started: {self!r}")
        self._exit_status = None
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in stop())
        self._process = process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=self.env,
        )
        assert process.stdout is not None
        # select() on a pipe is POSIX only; elsewhere readline() blocks until the URL.
        timeout = self.startup_timeout
        ready = os.name != "posix" or select.select([process.stdout], [], [], timeout)[0]
        line = process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            if ready:  # EOF or another line: the process is ending, give it a moment
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            code = process.poll()
            self.stop()
            state = f"exit status {code}" if code is not None else "still running, killed"
            raise RuntimeError(
                f"the mock process did not start ({state}): first stdout line {line!r}; "
                f"stderr: {self.stderr()!r}; command: {self.argv}"
            )
        self._url = line
        return line

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 10.0) -> int | None:
        """Send *sig* (SIGTERM; SIGINT is Ctrl-C), wait, and return the exit status.

        A process that outlives *timeout* seconds is killed. Idempotent: stopping a
        stopped (or never started) process returns its status (None if never started).
        """
        process, self._process = self._process, None
        self._url = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(sig)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
            self._exit_status = process.returncode
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr_tail = self._read_stderr()
            self._stderr.close()
            self._stderr = None
        return self._exit_status

    def _read_stderr(self) -> str:
        assert self._stderr is not None
        self._stderr.seek(0)
        return self._stderr.read()[-4000:]

    def stderr(self) -> str:
        """The last 4,000 characters the process wrote to stderr (also after :meth:`stop`)."""
        return self._stderr_tail if self._stderr is None else self._read_stderr()

    def __enter__(self) -> MockProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> MockProcess:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await anyio.to_thread.run_sync(self.stop)

    def __repr__(self) -> str:
        return f"MockProcess(url={self._url!r}, pid={self.pid!r}, argv={self.argv!r})"
