"""The reliability suite's epilogue, as a fixture: every scenario ends with the same checks.

A test opens its mock endpoints through ``checked_mock``; once the test body is over
(passed or failed), each endpoint must show what every scenario promises:

* no window of requests above ``max_rate`` plus the burst (when the test gave one);
* no task left but the test's own, no connection left open to the endpoint;
* nothing reported to asyncio's exception handler (a never-retrieved exception...),
  closing the endpoints included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from asyncoptjob.mock import MockSageMaker
from tests.helpers import OpenMock, check_no_leaks, check_rate, loop_errors


@pytest.fixture
async def checked_mock() -> AsyncIterator[OpenMock]:
    """``mock = await checked_mock(seed=..., lifecycle=..., max_rate=...)``: checked at the end."""
    checked: list[tuple[MockSageMaker, float | None]] = []
    async with AsyncExitStack() as stack:
        reports = await stack.enter_async_context(loop_errors())

        async def open_mock(*, max_rate: float | None = None, **options: Any) -> MockSageMaker:
            mock = await stack.enter_async_context(MockSageMaker(**options))
            checked.append((mock, max_rate))
            return mock

        yield open_mock
        for mock, max_rate in checked:
            if max_rate is not None:
                check_rate(mock, max_rate)
            await check_no_leaks(mock)
    assert reports == []
