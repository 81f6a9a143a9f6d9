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
from pathlib import Path
from typing import Any

import pytest
import structlog

#: A throwaway Airflow home (config, the SQLite metadata database) and DAGs folder.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="asyncoptjob-airflow-home-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Airflow runs its in-process execution API (dag.test) through Starlette's test
    # client on httpx, which Starlette now deprecates: Airflow's business, not ours.
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(
                pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
            )


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
