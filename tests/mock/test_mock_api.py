"""The public surface of asyncoptjob.mock: exact names, docstrings, runnable examples."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

import asyncoptjob.mock

MODULES = [
    "asyncoptjob.mock",
    "asyncoptjob.mock._app",
    "asyncoptjob.mock._bad_answers",
    "asyncoptjob.mock._catalog",
    "asyncoptjob.mock._control",
    "asyncoptjob.mock._endpoint",
    "asyncoptjob.mock._faults",
    "asyncoptjob.mock._injector",
    "asyncoptjob.mock._launcher",
    "asyncoptjob.mock._ledger",
    "asyncoptjob.mock._lifecycle",
    "asyncoptjob.mock._limits",
    "asyncoptjob.mock._listing",
    "asyncoptjob.mock._process",
    "asyncoptjob.mock._server",
    "asyncoptjob.mock._sim",
    "asyncoptjob.mock._wire",
]


def test_all_is_exactly_the_public_api() -> None:
    assert asyncoptjob.mock.__all__ == [
        "MockSageMaker",
        "Lifecycle",
        "Faults",
        "MockStats",
        "RequestRecord",
        "MockProcess",
        "build_parser",
        "main",
    ]
    public = {name for name in vars(asyncoptjob.mock) if not name.startswith("_")}
    assert public == set(asyncoptjob.mock.__all__)


def test_public_names_are_documented() -> None:
    assert asyncoptjob.mock.__doc__
    for name in asyncoptjob.mock.__all__:
        obj = getattr(asyncoptjob.mock, name)
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attribute, member in vars(obj).items():
                if not attribute.startswith("_") and callable(member):
                    assert inspect.getdoc(member), f"{name}.{attribute}"


@pytest.mark.parametrize("module_name", MODULES)
def test_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__, module_name
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
