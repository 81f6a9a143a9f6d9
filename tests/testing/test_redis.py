"""The testing kit's throwaway redis-server: start, outage (stop, start), clear errors."""

from __future__ import annotations

import socket

import pytest

from asyncoptjob.testing import RedisServer


def test_stop_and_start_keep_the_port_and_lose_every_key() -> None:
    with RedisServer() as redis:
        assert redis.running
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert "running" in repr(redis)
        with socket.create_connection(("127.0.0.1", redis.port)) as sock:
            sock.sendall(b"SET k v\r\n")
            assert sock.recv(16) == b"+OK\r\n"
        with pytest.raises(RuntimeError, match="already running"):
            redis.start()
        redis.stop()
        assert not redis.running
        redis.stop()  # idempotent
        redis.start()
        with socket.create_connection(("127.0.0.1", redis.port)) as sock:
            sock.sendall(b"GET k\r\n")
            assert sock.recv(16) == b"$-1\r\n"  # no persistence
    assert "stopped" in repr(redis)


def test_a_missing_binary_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="redis-server is not installed"):
        RedisServer()


def test_a_taken_port_fails_clearly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        redis = RedisServer(taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="did not start"):
            redis.start(timeout=3)
        assert not redis.running
