"""The benchmark process's environment: dummy AWS settings, quiet logging, machine facts."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import structlog

__all__ = [
    "AWS_ENV",
    "REGION",
    "configure_process",
    "logging_left_unconfigured",
    "machine_info",
    "package_versions",
    "source_info",
]

REGION = "us-east-1"
_NOWHERE = "/nonexistent/asyncoptjob-benchmarks"

#: What every AWS SDK in the benchmark (and the mock's process) sees: dummy credentials,
#: no config files, no instance metadata, and no proxy for the loopback endpoint.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": f"{_NOWHERE}/config",
    "AWS_SHARED_CREDENTIALS_FILE": f"{_NOWHERE}/credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}

# Settings that would change what "default retries" or "the endpoint" mean for a contender.
_UNSET = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_DEFAULTS_MODE",
)

_PACKAGES = (
    "asyncoptjob",
    "aiobotocore",
    "botocore",
    "boto3",
    "aiohttp",
    "anyio",
    "tenacity",
    "structlog",
    "matplotlib",
)


def configure_process() -> None:
    """Set the dummy AWS environment and configure logging like an app with INFO off.

    structlog is filtered at WARNING, so the library's per-poll ``debug`` and per-change
    ``info`` calls cost what they cost in a real application that has INFO logging off
    (structlog's unconfigured default would print every one of them to stdout).
    """
    for name in _UNSET:
        os.environ.pop(name, None)
    os.environ.update(AWS_ENV)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )
    # boto3 with more threads than pooled connections logs "Connection pool is full" per
    # request; that is the contender's cost, not something to print.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    logging.getLogger("botocore").setLevel(logging.ERROR)
    logging.getLogger("aiobotocore").setLevel(logging.ERROR)


@contextlib.contextmanager
def logging_left_unconfigured() -> Iterator[None]:
    """structlog as a program that never configured it sees it (restored afterwards).

    The library then logs through ``logging``, where nothing is configured either: its
    per-poll ``debug`` is what an application that leaves logging alone pays for it.
    """
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        if was_configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, OS and Python of this machine."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
    }


def source_info() -> dict[str, Any]:
    """The git commit measured, and whether ``src/`` had uncommitted changes (read-only git)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=True
        ).stdout

    try:
        return {
            "commit": git("rev-parse", "HEAD").strip(),
            "src_changes": [
                line for line in git("status", "--porcelain", "--", "src").splitlines() if line
            ],
        }
    except (OSError, subprocess.SubprocessError):
        return {}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the benchmark exercises."""
    return {name: _version(name) for name in _PACKAGES}
