"""A throwaway ``redis-server`` on 127.0.0.1, for fleet-mode tests and benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

__all__ = ["RedisServer"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` child process on a free loopback port, with no persistence.

    Stopping and starting it again keeps the port and loses every key, as a Redis
    restart without persistence does: what an outage test needs.

    Args:
        port: the port to listen on (default: a free one).
        binary: the ``redis-server`` executable (default: the one on ``PATH``).

    Raises:
        RuntimeError: ``redis-server`` is not installed.

    Example::

        with RedisServer() as redis:
            async with Poller(redis_url=redis.url, ...) as poller:
                ...
            redis.stop()   # an outage
            redis.start()  # back, empty
    """

    def __init__(self, port: int | None = None, *, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RuntimeError(
                "redis-server is not installed: install it (e.g. apt-get install redis-server) "
                "or pass binary='/path/to/redis-server'"
            )
        self.binary = found
        self.port = port or _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, ``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop` while the process lives."""
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the server and return once it answers ``PING``.

        Raises:
            RuntimeError: it is running already, or did not answer within *timeout*
                seconds (the port may be taken).
        """
        if self._process is not None:
            raise RuntimeError(f"redis-server is already running on port {self.port}")
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._pong():
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the server (no goodbye, like a crash) and wait for it; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RedisServer(url={self.url!r}, {state})"
