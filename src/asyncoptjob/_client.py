"""What an aiobotocore client needs before it exists, prepared in a worker thread.

Creating a SageMaker client first reads botocore's data files (the service model, about
2.5 MB of JSON; the endpoint rules; the endpoints and partitions) and the AWS config
files. On the event loop that holds the loop for about 100 ms, and for every Poller that
opens, because each new session has its own data loader. Here that work runs in a worker
thread (``anyio.to_thread``), and once per process: the sessions the library creates
share one botocore data loader, whose caches are plain dicts that any thread and any
event loop may read. Concurrent opens wait for the same warm-up behind one lock.

A thread alone would not free the loop: ``json.loads`` holds the GIL for the whole of a
file, about 20 ms for the SageMaker model. The shared loader parses with a Python-level
``object_pairs_hook``, so the interpreter can hand the GIL to the loop's thread between
objects, and the hook offers it every few hundred objects (the interpreter alone would
take it from the parse only once the loop's thread had waited ``sys.getswitchinterval()``,
5 ms by default).

Nor would a thread free the loop from the garbage collector. A full collection walks every
object the collector tracks, holding the GIL meanwhile (40-60 ms after importing
aiobotocore and loading the model), in whichever thread happens to allocate when one is
due, and the model's containers are what makes one due. So the shared loader keeps them
few: it builds plain dicts (the collector does not track a dict of strings and numbers;
botocore's ``OrderedDict`` it always does), and it keeps of the SageMaker model only the
optimization-job operations, the only ones the library's clients call, and the shapes
they use (a few dozen of about 3,100). A ``session=`` or ``client=`` of the caller's keeps
its own loader and its full model.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import itertools
import json
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import PurePath
from typing import IO, Any, Final

import anyio.lowlevel
import anyio.to_thread
from aiobotocore.session import AioSession, get_session
from botocore import xform_name
from botocore.loaders import JSONFileLoader, Loader, create_loader
from botocore.utils import parse_timestamp

from . import _metrics

__all__ = [
    "ENDPOINT_PREFIX",
    "OWN_OPERATIONS",
    "SERVICE",
    "LibraryFileLoader",
    "SharedLoaders",
    "YieldingJSONFileLoader",
    "endpoints_subset",
    "import_off_loop",
    "new_session",
    "operations_subset",
    "prepare_session",
    "read_for_a_client",
    "shared_loaders",
]

#: The service whose model the library's clients need.
SERVICE: Final = "sagemaker"
#: Its endpoint prefix (the model's ``metadata.endpointPrefix``): its key in botocore's
#: ``endpoints`` data.
ENDPOINT_PREFIX: Final = "api.sagemaker"
#: What an operation the library's own clients call has in its name (Describe and List,
#: and Create, Stop, Delete for the Airflow operator and the tools around them).
OWN_OPERATIONS: Final = "OptimizationJob"


#: Objects parsed between two offers of the GIL to other threads (about 0.5 ms of work).
_OBJECTS_PER_TURN = 512
_parsed = itertools.count()


def _plain(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A Python function, not the dict type itself: calling it lets the interpreter pass
    # the GIL to another thread; a C callable would not. The interpreter only takes the
    # GIL from a thread after the loop's thread has waited a switch interval (5 ms) for
    # it; every few hundred objects the parse offers it at once instead.
    if not next(_parsed) % _OBJECTS_PER_TURN:
        time.sleep(0)
    return dict(pairs)


class YieldingJSONFileLoader(JSONFileLoader):
    """botocore's JSON file loader, parsing so that other threads (the loop's) can run.

    The data is botocore's, in plain dicts instead of ``OrderedDict`` objects (the same
    keys, values and order; botocore reads them as mappings): the garbage collector does
    not track a dict holding only strings and numbers, and a model has thousands. The
    GIL is released while a large file is parsed.
    """

    def _load_file(self, full_path: str, open_method: Callable[..., IO[bytes]]) -> Any:
        # botocore's own method (loaders.py), with a hook the interpreter can switch in.
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as fp:
            payload = fp.read().decode("utf-8")
        return json.loads(payload, object_pairs_hook=_plain)


def operations_subset(model: Mapping[str, Any], keep: Callable[[str], bool]) -> dict[str, Any]:
    """A service model with only the operations ``keep`` accepts and the shapes they use.

    Everything else of the model (metadata, version, documentation) is kept as it is;
    operations and shapes keep their order.
    """
    operations = {name: op for name, op in model["operations"].items() if keep(name)}
    shapes = model["shapes"]
    used: set[str] = set()
    todo = [
        ref["shape"]
        for op in operations.values()
        for ref in (op.get("input"), op.get("output"), *op.get("errors", ()))
        if ref is not None
    ]
    while todo:
        name = todo.pop()
        if name in used:
            continue
        used.add(name)
        shape = shapes[name]
        todo.extend(member["shape"] for member in shape.get("members", {}).values())
        todo.extend(shape[part]["shape"] for part in ("member", "key", "value") if part in shape)
    return {
        **model,
        "operations": operations,
        "shapes": {name: shape for name, shape in shapes.items() if name in used},
    }


def _own_operation(name: str) -> bool:
    return OWN_OPERATIONS in name


class LibraryFileLoader(YieldingJSONFileLoader):
    """The file loader of the library's own sessions: the SageMaker service model keeps
    only the optimization-job operations (:data:`OWN_OPERATIONS`) and their shapes.

    The garbage collector then tracks a few hundred of the model's containers instead of
    several thousand, and the client class has a handful of methods instead of 400-odd.
    botocore's ``endpoints`` data keeps, in each partition, only SageMaker's entry
    (:func:`endpoints_subset`). Every other file (another service's model, the endpoint
    rules) is read whole.
    """

    def load_file(self, file_path: str) -> Any:
        data = super().load_file(file_path)
        # <data path>/sagemaker/<api version>/service-2, without the extension.
        path = PurePath(file_path)
        if data is not None and path.name == "service-2" and path.parent.parent.name == SERVICE:
            data = operations_subset(data, _own_operation)
        elif data is not None and path.name == "endpoints" and "partitions" in data:
            data = endpoints_subset(data, ENDPOINT_PREFIX)
        return data


def endpoints_subset(endpoints: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """botocore's ``endpoints`` data with, in each partition, only service ``prefix``.

    Whole, it is some 16,000 containers the garbage collector walks at each full
    collection (more than the rest of a client), for the 300-odd services of every
    partition; a session of the library's makes clients of one service.
    """
    return {
        **endpoints,
        "partitions": [
            {**partition, "services": _only(partition.get("services", {}), prefix)}
            for partition in endpoints["partitions"]
        ],
    }


def _only(services: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {prefix: services[prefix]} if prefix in services else {}


def _library_loader(data_path: str | None) -> Loader:
    """botocore's ``create_loader(data_path)`` with a :class:`LibraryFileLoader`."""
    loader = create_loader(data_path)
    loader.file_loader = LibraryFileLoader()
    return loader


#: Events aiobotocore awaits while it creates a client, between its longer steps (the
#: credentials; the 400-odd methods of the client class; the endpoint and signing setup).
_CREATION_EVENTS = ("choose-service-name", f"creating-client-class.{SERVICE}")
_LET_THE_LOOP_RUN = "asyncoptjob-let-the-loop-run"


async def _let_the_loop_run(**_: Any) -> None:
    # What is left of creating a client must run on the loop (it binds to it); a
    # checkpoint between its steps cuts one hold of several milliseconds into shorter ones.
    await anyio.lowlevel.checkpoint()


def parse_epoch_timestamp(value: Any) -> datetime:
    """botocore's ``parse_timestamp``, fast for the epoch seconds of JSON protocols.

    SageMaker's answers carry times as epoch numbers; botocore turns each into a
    ``datetime`` in dateutil's ``tzlocal()``, a new zone object and Python-level offset
    code per value: half the time of parsing a 100-item List page. Here an epoch number
    becomes an aware datetime in UTC (equal to botocore's: the same instant); anything
    else goes to botocore's parser.
    """
    if type(value) is float or type(value) is int:
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass  # botocore has a fallback for dates the platform cannot convert
    parsed: datetime = parse_timestamp(value)
    return parsed


def decode_blob(value: str) -> bytes:
    """botocore's default blob parser (base64), as a function rather than a parser's own
    bound method, which makes each parser a reference cycle."""
    return base64.b64decode(value)


class SharedLoaders:
    """The botocore data loaders the library's sessions share, one per data path.

    Its methods block (they read and parse files): call them in a worker thread.

    Args:
        create: makes the loader for a data path (``AWS_DATA_PATH``, None for botocore's
            own data); tests pass one that counts what it parses.
    """

    def __init__(self, create: Callable[[str | None], Loader] = _library_loader) -> None:
        self._create = create
        self._lock = threading.Lock()
        self._loaders: dict[str | None, Loader] = {}
        self._warm: weakref.WeakSet[Loader] = weakref.WeakSet()

    def new_session(self) -> AioSession:
        """A new aiobotocore session whose data loader is the shared one for its data path."""
        session = get_session()
        data_path = session.get_config_variable("data_path")
        with self._lock:
            loader = self._loaders.get(data_path)
            if loader is None:
                loader = self._loaders[data_path] = self._create(data_path)
        session.register_component("data_loader", loader)
        parsers = session.get_component("response_parser_factory")
        # botocore makes a parser per answer, and one with no blob parser given keeps its
        # own bound method: a reference cycle per request that only the garbage collector
        # frees. Those cycles drove most collections in a round of describes, and the full
        # ones hold the loop for the whole heap's walk (8 over a subscribe and first round
        # of 100,000 describes, 1 without them). botocore has kept these cycles
        # (boto/botocore#1450, closed).
        parsers.set_parser_defaults(timestamp_parser=parse_epoch_timestamp, blob_parser=decode_blob)
        for event in _CREATION_EVENTS:
            session.register(event, _let_the_loop_run, unique_id=_LET_THE_LOOP_RUN)
        return session

    def warm(self, session: AioSession) -> None:
        """Load what creating a client of :data:`SERVICE` reads, once per loader.

        A second caller waits for the first one's warm-up instead of parsing again.
        """
        loader = session.get_component("data_loader")
        if loader in self._warm:
            return
        with self._lock:
            if loader in self._warm:  # warmed while this caller waited for the lock
                return
            model = read_for_a_client(loader)
            # botocore caches each operation's Python name process-wide; the client
            # class built on the loop then finds all of them there (400-odd for a
            # session of the caller's, whose model is whole).
            for operation in model["operations"]:
                xform_name(operation)
            self._warm.add(loader)


def read_for_a_client(loader: Loader) -> Any:
    """Load into ``loader``'s caches what creating a :data:`SERVICE` client reads.

    The calls botocore makes while it creates one, with the same arguments (its caches
    are keyed by them), and nothing more: aiobotocore's ``warm_up_loader_caches`` also
    reads the paginators, waiters and examples, each after a walk of botocore's 400-odd
    service folders (about 10 ms each), none of which a client needs to exist.

    Returns:
        The service model.
    """
    loader.load_data_with_path("endpoints")
    loader.load_data("sdk-default-configuration")
    model = loader.load_service_model(SERVICE, "service-2", api_version=None)
    loader.load_service_model(SERVICE, "endpoint-rule-set-1", api_version=None)
    loader.load_data("partitions")
    loader.load_data("_retry")
    return model


_SHARED = SharedLoaders()


def shared_loaders() -> SharedLoaders:
    """The process's :class:`SharedLoaders`."""
    return _SHARED


def _prepare(session: AioSession | None) -> AioSession:
    shared = shared_loaders()
    if session is None:
        session = shared.new_session()
    if isinstance(session, AioSession):
        shared.warm(session)
        # Parses ~/.aws/config and ~/.aws/credentials once (the session keeps them):
        # create_client reads its settings (region, CA bundle, API versions) from them.
        session.get_scoped_config()
    return session


def new_session(profile: str | None = None) -> AioSession:
    """An aiobotocore session like the ones the library creates for itself.

    For an application that creates its SageMaker client itself (to pass it as
    ``client=``, or to call it too) and wants what a Poller's own client has: the
    service model read once per process and shared, answers' epoch timestamps parsed
    without dateutil (where botocore's default parser spends most of a 100-job List
    page's parsing), no reference cycle left per answer for the garbage collector,
    creating a client that holds the loop only briefly. Its clients know only the
    optimization-job operations (create, describe, list, stop, delete), and its endpoint
    data only SageMaker's: use a session of your own for other calls and services.

    Blocking: the first call in a process reads botocore's data files, and each call the
    AWS config files. From async code, call it in a worker thread::

        session = await anyio.to_thread.run_sync(asyncoptjob.new_session, "my-profile")
        async with session.create_client("sagemaker", region_name="us-east-1") as client:
            async with asyncoptjob.Poller(client=client) as poller:
                ...

    Args:
        profile: the AWS profile (default: ``AWS_PROFILE``, else the default profile).

    Raises:
        botocore.exceptions.ProfileNotFound: ``profile`` is in no AWS config file.
    """
    session = shared_loaders().new_session()
    if profile is not None:
        session.set_config_variable("profile", profile)
    return _prepare(session)


async def prepare_session(session: AioSession | None) -> AioSession:
    """``session`` (or a new one on the shared loader) ready to create a client cheaply.

    The data files and the config files are read in a worker thread; the caller's
    event loop keeps running meanwhile.
    """
    return await anyio.to_thread.run_sync(_prepare, session)


#: Imported on first use, 10-15 ms of module code: anyio's asyncio backend (the first
#: task group or worker thread needs it) and what the metrics need (``_metrics.warm``).
_BACKEND = "anyio._backends._asyncio"
_imports_done = False


def _import(modules: list[str]) -> None:
    importlib.import_module(_BACKEND)
    _metrics.warm()
    for name in modules:
        # One that is not installed is left to the code that needs it, which says what
        # to install.
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _imported(name: str) -> bool:
    module = sys.modules.get(name)
    # A module another thread is still importing would hold an import on the loop.
    return module is not None and not getattr(module.__spec__, "_initializing", False)


async def import_off_loop(*modules: str) -> None:
    """Import what opening a hub imports on first use, and ``modules`` (what a mode
    imports: SQLite's store for ``state=``, redis-py for a fleet), in a worker thread.

    The first Poller in a process would otherwise run those modules' code on the loop
    (redis-py's asyncio client alone is about 100 ms of it).
    """
    global _imports_done
    missing = [name for name in modules if not _imported(name)]
    if _imports_done and not missing:
        return
    # Not anyio.to_thread: that would import the backend here, on the loop.
    await asyncio.get_running_loop().run_in_executor(None, _import, missing)
    _imports_done = True
