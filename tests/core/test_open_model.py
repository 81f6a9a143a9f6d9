"""The SageMaker model the library's own sessions load: small, and enough for every call.

The library's shared loader keeps of the SageMaker model only the optimization-job
operations and the shapes they use, in plain dicts, so that loading it leaves few
objects for the garbage collector to walk. These tests check that clients built on it
still make every call the library and its Airflow operator make, over real HTTP to the
mock, and that a session of the caller's keeps its own loader and its whole model.
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Callable
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import AioSession, get_session
from botocore import xform_name
from botocore.exceptions import ProfileNotFound
from botocore.loaders import JSONFileLoader, Loader, create_loader
from botocore.model import ServiceModel, Shape
from botocore.parsers import ResponseParser

import asyncoptjob
from asyncoptjob import Poller
from asyncoptjob._client import (
    ENDPOINT_PREFIX,
    OWN_OPERATIONS,
    SERVICE,
    LibraryFileLoader,
    SharedLoaders,
    YieldingJSONFileLoader,
    operations_subset,
    prepare_session,
)
from asyncoptjob._transport import client_config
from asyncoptjob.mock import Lifecycle, MockSageMaker
from tests.helpers import REGION
from tests.mock.test_mock_protocol import CREATE_REQUEST

#: Every client method the library (``_transport.py``) and its Airflow operator and
#: sensor (``airflow/_operators.py``) call.
CALLED = {
    "create_optimization_job",
    "describe_optimization_job",
    "list_optimization_jobs",
    "stop_optimization_job",
}
#: The files botocore reads to create a SageMaker client.
CLIENT_FILES = [
    "endpoints",
    "sdk-default-configuration",
    "service-2",
    "endpoint-rule-set-1",
    "partitions",
    "_retry",
]
#: Jobs that stay STARTING, so a test can stop them at leisure.
SLOW = Lifecycle(starting=(math.inf, math.inf))


def _model_path() -> str:
    version = Loader().determine_latest_version(SERVICE, "service-2")
    return str(Path(Loader.BUILTIN_DATA_PATH, SERVICE, version, "service-2"))


def _tracked(data: Any) -> int:
    """How many containers of ``data`` the garbage collector tracks."""
    count, todo = 0, [data]
    while todo:
        item = todo.pop()
        count += gc.is_tracked(item)
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return count


def _methods_of_the_client_class(session: AioSession) -> Callable[[], set[str]]:
    """Note the methods of every SageMaker client class ``session`` builds."""
    seen: set[str] = set()

    def note(class_attributes: dict[str, Any], **_: Any) -> None:
        seen.update(class_attributes)

    session.register(f"creating-client-class.{SERVICE}", note)
    return lambda: seen


def test_the_plain_dicts_hold_botocore_s_data_in_botocore_s_order() -> None:
    path = _model_path()
    ours = YieldingJSONFileLoader().load_file(path)
    theirs = JSONFileLoader().load_file(path)
    # json.dumps writes keys in their order: the same keys, values and order.
    assert json.dumps(ours) == json.dumps(theirs)
    # A leaf dict of strings is left alone by the collector, an OrderedDict never is.
    assert _tracked(ours) * 2 < _tracked(theirs)


def test_the_library_s_model_keeps_the_optimization_job_operations_and_all_they_use() -> None:
    path = _model_path()
    whole = JSONFileLoader().load_file(path)
    ours = LibraryFileLoader().load_file(path)
    assert ours is not None
    expected = {name for name in whole["operations"] if OWN_OPERATIONS in name}
    assert set(ours["operations"]) == expected
    assert {xform_name(name) for name in expected} >= CALLED
    assert {key: ours[key] for key in ours if key not in ("operations", "shapes")} == {
        key: whole[key] for key in whole if key not in ("operations", "shapes")
    }
    # Every shape an operation reaches resolves (botocore raises on a missing one) and
    # is the model's own, unchanged.
    service = ServiceModel(ours, SERVICE)
    reached: set[str] = set()

    def walk(shape: Shape | None) -> None:
        if shape is None or shape.name in reached:
            return
        reached.add(shape.name)
        for child in (
            *getattr(shape, "members", {}).values(),
            getattr(shape, "member", None),
            getattr(shape, "key", None),
            getattr(shape, "value", None),
        ):
            walk(child)

    for name in service.operation_names:
        operation = service.operation_model(name)
        for shape in (operation.input_shape, operation.output_shape, *operation.error_shapes):
            walk(shape)
    assert reached == set(ours["shapes"])
    assert all(ours["shapes"][name] == whole["shapes"][name] for name in reached)
    # Far fewer containers for the collector to walk than botocore's own model.
    assert _tracked(ours) * 20 < _tracked(whole)


def test_a_subset_keeps_the_order_of_operations_and_shapes() -> None:
    model = {
        "metadata": {"protocol": "json"},
        "operations": {
            "B": {"input": {"shape": "BIn"}},
            "A": {"input": {"shape": "AIn"}, "errors": [{"shape": "Oops"}]},
            "Other": {"input": {"shape": "OtherIn"}},
        },
        "shapes": {
            "Oops": {"type": "structure", "members": {}},
            "OtherIn": {"type": "structure", "members": {}},
            "BIn": {"type": "structure", "members": {"Tags": {"shape": "Tags"}}},
            "AIn": {"type": "structure", "members": {"Name": {"shape": "String"}}},
            "Tags": {"type": "map", "key": {"shape": "String"}, "value": {"shape": "List"}},
            "List": {"type": "list", "member": {"shape": "String"}},
            "String": {"type": "string"},
        },
    }
    subset = operations_subset(model, lambda name: name != "Other")
    assert list(subset["operations"]) == ["B", "A"]
    assert list(subset["shapes"]) == ["Oops", "BIn", "AIn", "Tags", "List", "String"]
    assert subset["metadata"] == model["metadata"]


async def test_a_client_on_the_library_s_model_makes_every_call_over_http(
    mock: MockSageMaker,
) -> None:
    mock.lifecycle = SLOW
    session = await prepare_session(SharedLoaders().new_session())
    methods = _methods_of_the_client_class(session)
    async with session.create_client(
        SERVICE, region_name=REGION, endpoint_url=mock.url, config=client_config(4)
    ) as client:
        created = await client.create_optimization_job(
            OptimizationJobName="llama-awq", **CREATE_REQUEST
        )
        assert created["OptimizationJobArn"].endswith(":optimization-job/llama-awq")
        job = await client.describe_optimization_job(OptimizationJobName="llama-awq")
        assert job["OptimizationJobStatus"] == "STARTING"
        assert job["OptimizationConfigs"] == CREATE_REQUEST["OptimizationConfigs"]
        page = await client.list_optimization_jobs()
        assert [s["OptimizationJobName"] for s in page["OptimizationJobSummaries"]] == ["llama-awq"]
        await client.stop_optimization_job(OptimizationJobName="llama-awq")
        job = await client.describe_optimization_job(OptimizationJobName="llama-awq")
        assert job["OptimizationJobStatus"] == "STOPPING"
        await client.delete_optimization_job(OptimizationJobName="llama-awq")
        # An error the model declares still comes back as its modeled exception.
        with pytest.raises(client.exceptions.ResourceNotFound):
            await client.describe_optimization_job(OptimizationJobName="llama-awq")
    assert methods() >= CALLED
    assert "describe_endpoint" not in methods()  # the rest of SageMaker is left out
    assert mock.stats().counters == {
        "CreateOptimizationJob": {"ok": 1},
        "DescribeOptimizationJob": {"ok": 2, "ResourceNotFound": 1},
        "ListOptimizationJobs": {"ok": 1},
        "StopOptimizationJob": {"ok": 1},
        "DeleteOptimizationJob": {"ok": 1},
    }


async def test_a_session_passed_in_keeps_its_own_loader_and_the_whole_model(
    mock: MockSageMaker,
) -> None:
    session = get_session()
    loader = session.get_component("data_loader")
    methods = _methods_of_the_client_class(session)
    [name] = mock.seed_jobs(1, outcome="COMPLETED")
    async with Poller(region_name=REGION, endpoint_url=mock.url, session=session) as poller:
        await poller.wait_until_done(name)
    assert session.get_component("data_loader") is loader
    assert type(loader.file_loader) is JSONFileLoader
    operations = loader.load_service_model(SERVICE, "service-2")["operations"]
    assert len(operations) > 100
    assert "describe_endpoint" in methods()


class _NotingFileLoader(LibraryFileLoader):
    """The library's file loader, noting every file it reads."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def load_file(self, file_path: str) -> Any:
        data = super().load_file(file_path)
        if data is not None:
            self.read.append(Path(file_path).name)
        return data


async def test_once_prepared_creating_a_client_reads_no_file(mock: MockSageMaker) -> None:
    files = _NotingFileLoader()

    def create(data_path: str | None) -> Loader:
        loader = create_loader(data_path)
        loader.file_loader = files
        return loader

    session = await prepare_session(SharedLoaders(create).new_session())
    # What a client needs, and nothing it does not: no paginators, waiters or examples.
    assert sorted(files.read) == sorted(CLIENT_FILES)
    files.read.clear()
    async with session.create_client(
        SERVICE, region_name=REGION, endpoint_url=mock.url, config=client_config(4)
    ) as client:
        assert files.read == []  # everything botocore read, it found in the caches
        await client.list_optimization_jobs()
    assert files.read == []


async def test_new_session_gives_the_library_s_model_and_epoch_timestamps(
    mock: MockSageMaker,
) -> None:
    [name] = mock.seed_jobs(1, outcome="COMPLETED")
    session = asyncoptjob.new_session()
    assert isinstance(session.get_component("data_loader").file_loader, LibraryFileLoader)
    methods = _methods_of_the_client_class(session)
    config = client_config(4, None)
    async with session.create_client(
        SERVICE, region_name=REGION, endpoint_url=mock.url, config=config
    ) as client:
        answer = await client.describe_optimization_job(OptimizationJobName=name)
        page = await client.list_optimization_jobs(MaxResults=10)
    assert "describe_optimization_job" in methods()
    assert "describe_endpoint" not in methods()  # the optimization-job part of the model
    created = answer["CreationTime"]
    # Parsed by the library's epoch parser: UTC, not dateutil's local zone.
    assert created.tzinfo is timezone.utc
    assert page["OptimizationJobSummaries"][0]["CreationTime"].tzinfo is timezone.utc


def test_new_session_names_a_profile_no_config_file_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with pytest.raises(ProfileNotFound, match="nobody"):
        asyncoptjob.new_session("nobody")


def _turn_handlers(client: Any) -> list[str]:
    """The ids of the library's before-parse handlers registered on ``client``."""
    handlers = client.meta.events._emitter._unique_id_handlers
    return [key for key in handlers if str(key).startswith("asyncoptjob-turn-")]


async def test_a_caller_s_client_parses_in_turns_while_a_poller_uses_it_only(
    mock: MockSageMaker,
) -> None:
    [name] = mock.seed_jobs(1, outcome="COMPLETED")
    session = get_session()
    async with session.create_client(
        SERVICE, region_name=REGION, endpoint_url=mock.url, config=client_config(4, None)
    ) as client:
        assert _turn_handlers(client) == []
        async with Poller(client=client) as first, Poller(client=client) as second:
            assert len(_turn_handlers(client)) == 2  # one per Poller: each its own turns
            await first.wait_until_done(name)
            await second.wait_until_done(name)
        assert _turn_handlers(client) == []  # handed back as it was
        # The client still works for its owner.
        answer = await client.describe_optimization_job(OptimizationJobName=name)
        assert answer["OptimizationJobStatus"] == "COMPLETED"


async def test_answers_parsed_by_the_library_s_clients_leave_no_reference_cycles(
    mock: MockSageMaker,
) -> None:
    # botocore's parser keeps its own bound method as the blob parser unless given one: a
    # cycle per answer, freed only by the garbage collector (whose full collections hold
    # the loop for the whole heap's walk). The library's sessions give it a function.
    names = mock.seed_jobs(20, outcome="COMPLETED")
    async with Poller(endpoint_url=mock.url, region_name=REGION) as poller:
        await poller.wait_until_done(names[0])  # the client is made and warm
        gc.collect()
        flags = gc.get_debug()
        gc.set_debug(flags | gc.DEBUG_SAVEALL)  # keep what a collection finds, to look at
        try:
            async with poller.watch(names[1:]) as events:
                seen = [event async for event in events]
            gc.collect()
            parsers = [found for found in gc.garbage if isinstance(found, ResponseParser)]
        finally:
            gc.set_debug(flags)
            gc.garbage.clear()
    assert len(seen) == len(names) - 1  # every job answered: 19 answers parsed
    assert parsers == []


#: A region of each partition SageMaker has, and one it has not (botocore's default data).
REGIONS = ("us-east-1", "eu-west-3", "cn-north-1", "us-gov-west-1", "us-iso-east-1", "mars-1")


async def test_the_library_s_endpoint_data_resolves_as_botocore_s_whole_data_does() -> None:
    # The library's sessions keep only SageMaker's entry of each partition's services.
    ours = asyncoptjob.new_session()
    plain = get_session()
    endpoints = ours.get_component("data_loader").load_data("endpoints")
    whole = plain.get_component("data_loader").load_data("endpoints")
    assert [p["partition"] for p in endpoints["partitions"]] == [
        p["partition"] for p in whole["partitions"]
    ]
    kept = {name for p in endpoints["partitions"] for name in p["services"]}
    assert kept == {ENDPOINT_PREFIX}
    model = ours.get_component("data_loader").load_service_model(SERVICE, "service-2")
    assert model["metadata"]["endpointPrefix"] == ENDPOINT_PREFIX
    partitions = ("aws", "aws-cn", "aws-us-gov")
    regions = {p: await ours.get_available_regions(SERVICE, p) for p in partitions}
    assert regions == {p: await plain.get_available_regions(SERVICE, p) for p in partitions}
    assert "us-east-1" in regions["aws"]
    for region in REGIONS:
        met = []
        for session in (ours, plain):
            async with session.create_client(
                SERVICE, region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
            ) as client:
                signer = client._request_signer
                met.append((client.meta.endpoint_url, signer.region_name, signer.signing_name))
        assert met[0] == met[1], region
