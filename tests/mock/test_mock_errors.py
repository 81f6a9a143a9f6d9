"""botocore raises ClientError with AWS's code and HTTP status for every error the mock makes."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from asyncoptjob.mock import Faults, Lifecycle, MockSageMaker

NO_CLIENT_VALIDATION = Config(parameter_validation=False)
ClientFactory = Callable[..., AbstractAsyncContextManager[Any]]


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


async def test_not_found(aio_client: Any) -> None:
    with pytest.raises(ClientError) as info:
        await aio_client.describe_optimization_job(OptimizationJobName="missing")
    assert _error(info) == ("ResourceNotFound", 400)
    assert "missing" in info.value.response["Error"]["Message"]


@pytest.mark.parametrize("operation", ["describe", "stop", "delete"])
@pytest.mark.parametrize("name", ["a_b", "-lead", "trail-", "x" * 64, ""])
async def test_bad_job_names(
    mock: MockSageMaker, make_aio_client: ClientFactory, operation: str, name: str
) -> None:
    async with make_aio_client(mock.url, NO_CLIENT_VALIDATION) as client:
        call = getattr(client, f"{operation}_optimization_job")
        with pytest.raises(ClientError) as info:
            await call(OptimizationJobName=name)
    assert _error(info) == ("ValidationException", 400)
    assert "regular expression pattern" in info.value.response["Error"]["Message"]


async def test_missing_name(mock: MockSageMaker, make_aio_client: ClientFactory) -> None:
    async with make_aio_client(mock.url, NO_CLIENT_VALIDATION) as client:
        with pytest.raises(ClientError) as info:
            await client.describe_optimization_job()
    assert _error(info) == ("ValidationException", 400)


@pytest.mark.parametrize(
    ("request_args", "fragment"),
    [
        ({"MaxResults": 0}, "greater than or equal to 1"),
        ({"MaxResults": 101}, "less than or equal to 100"),
        ({"StatusEquals": "RUNNING"}, "statusEquals"),
        ({"SortBy": "LastModifiedTime"}, "sortBy"),
        ({"SortOrder": "Up"}, "sortOrder"),
        ({"NameContains": "under_score"}, "nameContains"),
        ({"NextToken": "not-a-token"}, "NextToken"),
    ],
)
async def test_invalid_list_requests(
    mock: MockSageMaker, make_aio_client: ClientFactory, request_args: Any, fragment: str
) -> None:
    async with make_aio_client(mock.url, NO_CLIENT_VALIDATION) as client:
        with pytest.raises(ClientError) as info:
            await client.list_optimization_jobs(**request_args)
    assert _error(info) == ("ValidationException", 400)
    assert fragment in info.value.response["Error"]["Message"]


def test_invalid_list_requests_through_boto3(boto3_client: Any) -> None:
    with pytest.raises(ClientError) as info:
        boto3_client.list_optimization_jobs(MaxResults=101)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as info:
        boto3_client.list_optimization_jobs(SortOrder="Sideways")
    assert info.value.response["Error"]["Code"] == "ValidationException"


async def test_duplicate_create(aio_client: Any, mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1)
    with pytest.raises(ClientError) as info:
        await aio_client.create_optimization_job(
            OptimizationJobName=name,
            RoleArn="arn:aws:iam::123456789012:role/MyRole",
            ModelSource={"S3": {"S3Uri": "s3://bucket/model/"}},
            DeploymentInstanceType="ml.g5.xlarge",
            OptimizationConfigs=[{"ModelCompilationConfig": {}}],
            OutputConfig={"S3OutputLocation": "s3://bucket/out/"},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
        )
    assert _error(info) == ("ResourceInUse", 400)


@pytest.mark.parametrize(
    "missing",
    ["RoleArn", "ModelSource", "DeploymentInstanceType", "OptimizationConfigs", "OutputConfig"],
)
async def test_create_missing_members(
    mock: MockSageMaker, make_aio_client: ClientFactory, missing: str
) -> None:
    request: dict[str, Any] = {
        "OptimizationJobName": "incomplete",
        "RoleArn": "arn:aws:iam::123456789012:role/MyRole",
        "ModelSource": {"S3": {"S3Uri": "s3://bucket/model/"}},
        "DeploymentInstanceType": "ml.g5.xlarge",
        "OptimizationConfigs": [{"ModelCompilationConfig": {}}],
        "OutputConfig": {"S3OutputLocation": "s3://bucket/out/"},
        "StoppingCondition": {},
    }
    del request[missing]
    async with make_aio_client(mock.url, NO_CLIENT_VALIDATION) as client:
        with pytest.raises(ClientError) as info:
            await client.create_optimization_job(**request)
    assert _error(info) == ("ValidationException", 400)
    assert "incomplete" not in mock.job_names()


async def test_create_bad_configs(mock: MockSageMaker, make_aio_client: ClientFactory) -> None:
    async with make_aio_client(mock.url, NO_CLIENT_VALIDATION) as client:
        with pytest.raises(ClientError) as info:
            await client.create_optimization_job(
                OptimizationJobName="bad-configs",
                RoleArn="arn:aws:iam::123456789012:role/MyRole",
                ModelSource={},
                DeploymentInstanceType="ml.g5.xlarge",
                OptimizationConfigs=[{"ModelCompilationConfig": {}, "ModelShardingConfig": {}}],
                OutputConfig={"S3OutputLocation": "s3://bucket/out/"},
                StoppingCondition={},
            )
    assert _error(info) == ("ValidationException", 400)


async def test_stop_terminal_job(aio_client: Any, mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(
        1, lifecycle=Lifecycle(starting=(0, 0), in_progress=(0, 0)), outcome="COMPLETED"
    )
    with pytest.raises(ClientError) as info:
        await aio_client.stop_optimization_job(OptimizationJobName=name)
    assert _error(info) == ("ValidationException", 400)
    assert "COMPLETED" in info.value.response["Error"]["Message"]


async def test_throttling_from_rate_limit(aio_client: Any, mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1)
    mock.set_faults(describe_rate=0.001, describe_burst=1)
    await aio_client.describe_optimization_job(OptimizationJobName=name)
    with pytest.raises(ClientError) as info:
        await aio_client.describe_optimization_job(OptimizationJobName=name)
    assert _error(info) == ("ThrottlingException", 400)
    assert info.value.response["Error"]["Message"] == "Rate exceeded"


async def test_server_errors(aio_client: Any, mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1)
    mock.faults.error_rate = 1.0
    seen = set()
    for _ in range(30):
        with pytest.raises(ClientError) as info:
            await aio_client.describe_optimization_job(OptimizationJobName=name)
        seen.add(_error(info))
    assert seen == {("InternalFailure", 500), ("ServiceUnavailable", 503)}


@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "ExpiredTokenException", "UnrecognizedClientException"]
)
async def test_forced_error_codes(aio_client: Any, mock: MockSageMaker, code: str) -> None:
    mock.set_faults(error_code=code)
    with pytest.raises(ClientError) as info:
        await aio_client.list_optimization_jobs()
    assert _error(info) == (code, 400)


async def test_forced_error_code_with_status(aio_client: Any, mock: MockSageMaker) -> None:
    mock.set_faults(error_code="RequestTimeout", error_code_status=408)
    with pytest.raises(ClientError) as info:
        await aio_client.list_optimization_jobs()
    assert _error(info) == ("RequestTimeout", 408)


def test_forced_error_code_through_boto3(boto3_client: Any, threaded_mock: MockSageMaker) -> None:
    threaded_mock.set_faults(error_code="ExpiredTokenException")
    with pytest.raises(ClientError) as info:
        boto3_client.list_optimization_jobs()
    assert info.value.response["Error"]["Code"] == "ExpiredTokenException"
    threaded_mock.set_faults(error_code=None)
    assert boto3_client.list_optimization_jobs()["OptimizationJobSummaries"] == []


async def test_dropped_connection(aio_client: Any, mock: MockSageMaker) -> None:
    mock.set_faults(drop_rate=1.0)
    with pytest.raises(ConnectionClosedError):
        await aio_client.list_optimization_jobs()
    assert mock.stats().counters == {"ListOptimizationJobs": {"dropped": 1}}


async def test_malformed_body_reaches_botocore_as_an_empty_success(
    aio_client: Any, mock: MockSageMaker
) -> None:
    # botocore swallows a JSON parse error on a 200 and returns no fields at all:
    # a poller must check for the status itself.
    (name,) = mock.seed_jobs(1)
    mock.set_faults(malformed_rate=1.0)
    job = await aio_client.describe_optimization_job(OptimizationJobName=name)
    assert "OptimizationJobStatus" not in job
    assert job["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert mock.stats().counters == {"DescribeOptimizationJob": {"malformed": 1}}


async def test_not_found_window_then_found(make_aio_client: ClientFactory) -> None:
    lifecycle = Lifecycle(not_found_for=math.inf)
    async with MockSageMaker(seed=1, lifecycle=lifecycle, faults=Faults()) as mock:
        (name,) = mock.seed_jobs(1)
        async with make_aio_client(mock.url) as client:
            with pytest.raises(ClientError) as info:
                await client.describe_optimization_job(OptimizationJobName=name)
            assert _error(info) == ("ResourceNotFound", 400)
            # The job exists all along: it is listed, and it can be stopped.
            page = await client.list_optimization_jobs()
            assert [s["OptimizationJobName"] for s in page["OptimizationJobSummaries"]] == [name]
