"""Airflow tests: real apache-airflow, a throwaway AIRFLOW_HOME, connections to the mock.

Airflow is part of the ``dev`` extra, so CI (``CI`` set) always runs these tests: there a
missing Airflow is an error. A local venv made before Airflow joined the extra skips them.

Importing Airflow configures logging (structlog and the root logger) for the process;
that is put back right after, and after each test, so the rest of the suite still sees
a process whose logging nobody configured.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

_HOME = tempfile.mkdtemp(prefix="asyncoptjob-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")


def _logging_state() -> tuple[Any, ...]:
    root = logging.getLogger()
    return (
        structlog.is_configured(),
        structlog.get_config(),
        list(root.handlers),
        root.level,
        logging.root.manager.disable,
    )


def _restore(state: tuple[Any, ...]) -> None:
    configured, config, handlers, level, disable = state
    structlog.reset_defaults()
    if configured:
        structlog.configure(**config)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.disable(disable)


_BEFORE = _logging_state()
try:
    import airflow.providers.amazon  # noqa: F401
except ImportError:
    if os.environ.get("CI"):
        raise
    collect_ignore_glob = ["test_*.py"]  # a venv from before the airflow extra
finally:
    _restore(_BEFORE)


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    state = _logging_state()
    yield
    _restore(state)


def aws_connection(url: str, **extra: Any) -> str:
    """An ``AIRFLOW_CONN_...`` value: an AWS connection to ``url`` with dummy keys."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": url, "region_name": "us-east-1", **extra},
        }
    )
