"""A good guest: opening a Poller and a large subscribe leave the caller's loop running.

Nothing here measures time. A ticker task counts its turns on the loop; a loader that
parses the SageMaker model notes on which thread it runs and, off the loop, waits until
the ticker has had a turn, which only happens if the loop is free meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from aiobotocore.session import AioSession, get_session
from botocore.loaders import JSONFileLoader, Loader, create_loader
from botocore.utils import parse_timestamp

from asyncoptjob import Poller, _client
from asyncoptjob._client import (
    SERVICE,
    SharedLoaders,
    YieldingJSONFileLoader,
    parse_epoch_timestamp,
    shared_loaders,
)
from asyncoptjob.mock import MockSageMaker
from asyncoptjob.testing import FakeTransport, ManualClock, RedisServer, describe_response
from tests.helpers import REGION

#: A real-time guard for a thread waiting on the loop, not a measurement.
GUARD = 30.0


class Ticker:
    """A task that counts its turns on the event loop; other threads may wait for one."""

    def __init__(self) -> None:
        self.ticks = 0
        self._turn = threading.Event()

    async def run(self) -> None:
        while True:
            self.ticks += 1
            self._turn.set()
            await anyio.sleep(0.001)

    def next_turn(self) -> bool:
        """From another thread: wait for the ticker's next turn; False if none came."""
        self._turn.clear()
        return self._turn.wait(GUARD)


@asynccontextmanager
async def ticking() -> AsyncIterator[Ticker]:
    ticker = Ticker()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker.run)
        yield ticker
        tg.cancel_scope.cancel()


@dataclass(frozen=True)
class Parse:
    """One parse of the SageMaker model: on the loop's thread, and did the loop run."""

    on_loop: bool
    loop_ran: bool


class RecordingFileLoader(YieldingJSONFileLoader):
    """A file loader noting where each SageMaker model parse runs.

    Off the loop it also waits for a turn of ``ticker``: the loop runs while it loads.
    """

    def __init__(self, loop_thread: int, ticker: Ticker | None = None) -> None:
        self.loop_thread = loop_thread
        self.ticker = ticker
        self.parses: list[Parse] = []

    def load_file(self, file_path: str) -> Any:
        data = super().load_file(file_path)
        path = Path(file_path)
        if data is not None and path.name == "service-2" and SERVICE in path.parts:
            on_loop = threading.get_ident() == self.loop_thread
            ran = not on_loop and self.ticker is not None and self.ticker.next_turn()
            self.parses.append(Parse(on_loop=on_loop, loop_ran=ran))
        return data


def recording_loader(files: RecordingFileLoader, data_path: str | None = None) -> Loader:
    loader = create_loader(data_path)
    loader.file_loader = files
    return loader


def session_on(loader: Loader) -> AioSession:
    session = get_session()
    session.register_component("data_loader", loader)
    return session


def poller(mock: MockSageMaker, **extra: Any) -> Poller:
    return Poller(region_name=REGION, endpoint_url=mock.url, **extra)


async def open_together(*pollers: Poller) -> None:
    """Open ``pollers`` concurrently, each kept open until all are."""
    all_open = anyio.Event()
    opened: list[Poller] = []

    async def hold(p: Poller) -> None:
        async with p:
            opened.append(p)
            if len(opened) == len(pollers):
                all_open.set()
            await all_open.wait()

    async with anyio.create_task_group() as tg:
        for p in pollers:
            tg.start_soon(hold, p)


async def test_the_model_of_a_session_passed_in_is_parsed_while_the_loop_runs(
    mock: MockSageMaker,
) -> None:
    async with ticking() as ticker:
        files = RecordingFileLoader(threading.get_ident(), ticker)
        async with poller(mock, session=session_on(recording_loader(files))):
            pass
    assert files.parses == [Parse(on_loop=False, loop_ran=True)]


async def test_the_library_s_own_sessions_parse_the_model_while_the_loop_runs(
    mock: MockSageMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ticking() as ticker:
        files = RecordingFileLoader(threading.get_ident(), ticker)
        monkeypatch.setattr(_client, "_SHARED", SharedLoaders(lambda p: recording_loader(files, p)))
        async with poller(mock):
            pass
    assert files.parses == [Parse(on_loop=False, loop_ran=True)]


async def test_pollers_opening_together_parse_the_model_once(
    mock: MockSageMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = RecordingFileLoader(threading.get_ident())
    monkeypatch.setattr(_client, "_SHARED", SharedLoaders(lambda p: recording_loader(files, p)))
    await open_together(poller(mock), poller(mock), poller(mock))
    assert files.parses == [Parse(on_loop=False, loop_ran=False)]
    # A later Poller finds the model parsed.
    async with poller(mock):
        pass
    assert len(files.parses) == 1


async def test_pollers_opening_together_on_one_session_parse_its_model_once(
    mock: MockSageMaker,
) -> None:
    files = RecordingFileLoader(threading.get_ident())
    session = session_on(recording_loader(files))
    await open_together(*(poller(mock, session=session) for _ in range(3)))
    assert files.parses == [Parse(on_loop=False, loop_ran=False)]


def test_the_shared_loader_reads_the_same_data_as_botocore() -> None:
    loader = Loader()
    version = loader.determine_latest_version(SERVICE, "service-2")
    path = str(Path(Loader.BUILTIN_DATA_PATH, SERVICE, version, "service-2"))
    ours = YieldingJSONFileLoader().load_file(path)
    assert ours is not None
    theirs = JSONFileLoader().load_file(path)
    # The same keys and values (plain dicts against botocore's OrderedDicts), and, as
    # serialised, the same order.
    assert ours == theirs
    assert json.dumps(ours) == json.dumps(theirs)


async def test_a_large_subscribe_lets_the_loop_run_while_it_attaches() -> None:
    names = [f"job-{i}" for i in range(100_000)]
    transport = FakeTransport(lambda request: describe_response(request.job_name, "INPROGRESS"))
    turns = 0

    async def spin() -> None:
        nonlocal turns
        while True:
            turns += 1
            await anyio.lowlevel.checkpoint()

    async with (
        Poller(transport=transport, clock=ManualClock(), strategy="describe") as p,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(spin)
        await anyio.lowlevel.checkpoint()
        before = turns
        watch = p.watch(names)
        async with watch:
            during = turns - before
        tg.cancel_scope.cancel()
    # The loop had a turn at least every 2,000 names (the hub yields every 1,000).
    assert during >= len(names) // 2_000


@pytest.mark.parametrize("value", [0, 1_700_000_000, 1_700_000_000.125, "2024-01-02T03:04:05Z"])
def test_timestamps_parse_to_the_instant_botocore_parses(value: object) -> None:
    ours = parse_epoch_timestamp(value)
    assert ours == parse_timestamp(value)
    assert ours.tzinfo is not None  # aware, as botocore's


async def test_the_library_s_clients_parse_timestamps_fast_and_aware(mock: MockSageMaker) -> None:
    session = shared_loaders().new_session()
    parser = session.get_component("response_parser_factory").create_parser("json")
    assert parser._timestamp_parser is parse_epoch_timestamp
    [name] = mock.seed_jobs(1, outcome="COMPLETED")
    async with poller(mock) as p:
        description = await p.wait_until_done(name)
    assert description["CreationTime"].tzinfo is not None


#: A fresh process opens a Poller with ``state=``, then one with ``redis_url=``, each
#: answering one job; a finder first on ``sys.meta_path`` notes, for each module below,
#: whether its import ran on the main thread (the loop's).
_MODES_SCRIPT = """
import asyncio, json, sys, threading

WATCHED = ("asyncoptjob._state._sqlite", "asyncoptjob._fleet", "redis.asyncio")
on_main = {}

class Where:
    def find_spec(self, name, path=None, target=None):
        if name in WATCHED:
            on_main.setdefault(name, threading.current_thread() is threading.main_thread())
        return None

sys.meta_path.insert(0, Where())
from asyncoptjob import Poller
from asyncoptjob.testing import FakeTransport, describe_response

def answer(request):
    return dict(describe_response(request.job_name or "", "COMPLETED"))

async def main(state, redis_url):
    for mode in ({"state": state}, {"redis_url": redis_url}):
        async with Poller(transport=FakeTransport(answer), **mode) as poller:
            await poller.wait_until_done(["job-a"], timeout=60)

asyncio.run(main(sys.argv[1], sys.argv[2]))
print(json.dumps(on_main))
"""


def test_a_mode_s_modules_are_imported_off_the_loop(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # redis-py's asyncio client is about 100 ms of module code, the fleet's and the SQLite
    # store's 15-20 ms: the first Poller of a mode in a process imports them in a thread.
    child = subprocess.run(
        [sys.executable, "-c", _MODES_SCRIPT, str(tmp_path / "state.db"), redis_server.url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
    )
    assert child.returncode == 0, child.stderr
    on_main = json.loads(child.stdout.strip().splitlines()[-1])
    assert on_main == {
        "asyncoptjob._state._sqlite": False,
        "asyncoptjob._fleet": False,
        "redis.asyncio": False,
    }


async def test_a_mode_s_module_not_installed_is_left_to_the_code_that_needs_it() -> None:
    # redis-py missing: the fleet's own import says what to install, not this one.
    await _client.import_off_loop("asyncoptjob_test_no_such_module")
    assert "asyncoptjob_test_no_such_module" not in sys.modules
