"""The mock speaks AWS JSON 1.1: every operation through aiobotocore and boto3, raw HTTP edges."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import aiohttp
import anyio
import pytest
from botocore.exceptions import ClientError

from asyncoptjob.mock import Lifecycle, MockSageMaker

#: Jobs that stay STARTING, so a test can stop them at leisure.
SLOW = Lifecycle(starting=(math.inf, math.inf))
SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/x, Signature=0"}
CREATE_REQUEST: dict[str, Any] = {
    "RoleArn": "arn:aws:iam::123456789012:role/service-role/MyRole",
    "ModelSource": {
        "S3": {"S3Uri": "s3://my-bucket/llama/", "ModelAccessConfig": {"AcceptEula": True}}
    },
    "DeploymentInstanceType": "ml.g5.12xlarge",
    "OptimizationConfigs": [
        {"ModelQuantizationConfig": {"OverrideEnvironment": {"OPTION_QUANTIZE": "awq"}}},
        {"ModelShardingConfig": {}},
    ],
    "OutputConfig": {"S3OutputLocation": "s3://my-bucket/out/"},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}


async def _raw(
    url: str, target: str | None, body: bytes = b"{}", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    sent = {
        "Content-Type": "application/x-amz-json-1.1",
        **(headers if headers is not None else SIGNED),
    }
    if target is not None:
        sent["X-Amz-Target"] = target
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=sent) as response:
        return response.status, dict(response.headers), await response.read()


async def test_every_operation_through_aiobotocore(aio_client: Any, mock: MockSageMaker) -> None:
    mock.lifecycle = SLOW
    created = await aio_client.create_optimization_job(
        OptimizationJobName="llama-awq", **CREATE_REQUEST
    )
    assert created["OptimizationJobArn"] == (
        "arn:aws:sagemaker:us-east-1:123456789012:optimization-job/llama-awq"
    )

    job = await aio_client.describe_optimization_job(OptimizationJobName="llama-awq")
    assert job["OptimizationJobStatus"] == "STARTING"
    assert job["OptimizationConfigs"] == CREATE_REQUEST["OptimizationConfigs"]
    assert job["ModelSource"] == CREATE_REQUEST["ModelSource"]
    assert isinstance(job["CreationTime"], dt.datetime)
    assert job["CreationTime"].tzinfo is not None
    assert job["ResponseMetadata"]["RequestId"]

    page = await aio_client.list_optimization_jobs()
    (summary,) = page["OptimizationJobSummaries"]
    assert summary["OptimizationJobName"] == "llama-awq"
    assert summary["OptimizationTypes"] == ["Quantization", "Sharding"]
    assert summary["DeploymentInstanceType"] == "ml.g5.12xlarge"
    assert "NextToken" not in page

    await aio_client.stop_optimization_job(OptimizationJobName="llama-awq")
    job = await aio_client.describe_optimization_job(OptimizationJobName="llama-awq")
    assert job["OptimizationJobStatus"] == "STOPPING"

    await aio_client.delete_optimization_job(OptimizationJobName="llama-awq")
    with pytest.raises(ClientError) as info:
        await aio_client.describe_optimization_job(OptimizationJobName="llama-awq")
    assert info.value.response["Error"]["Code"] == "ResourceNotFound"
    assert mock.stats().counters == {
        "CreateOptimizationJob": {"ok": 1},
        "DescribeOptimizationJob": {"ok": 2, "ResourceNotFound": 1},
        "ListOptimizationJobs": {"ok": 1},
        "StopOptimizationJob": {"ok": 1},
        "DeleteOptimizationJob": {"ok": 1},
    }


def test_every_operation_through_boto3(boto3_client: Any, threaded_mock: MockSageMaker) -> None:
    threaded_mock.lifecycle = SLOW
    (seeded,) = threaded_mock.seed_jobs(1)
    boto3_client.create_optimization_job(OptimizationJobName="mistral", **CREATE_REQUEST)
    assert (
        boto3_client.describe_optimization_job(OptimizationJobName=seeded)["OptimizationJobName"]
        == seeded
    )
    names = [
        s["OptimizationJobName"]
        for s in boto3_client.list_optimization_jobs(SortBy="Name", SortOrder="Ascending")[
            "OptimizationJobSummaries"
        ]
    ]
    assert names == [seeded, "mistral"]
    boto3_client.stop_optimization_job(OptimizationJobName="mistral")
    boto3_client.delete_optimization_job(OptimizationJobName="mistral")
    with pytest.raises(ClientError) as info:
        boto3_client.stop_optimization_job(OptimizationJobName="mistral")
    assert info.value.response["Error"]["Code"] == "ResourceNotFound"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert threaded_mock.stats().count("StopOptimizationJob") == 2


def test_boto3_paginator_walks_every_page(boto3_client: Any, threaded_mock: MockSageMaker) -> None:
    names = threaded_mock.seed_jobs(23)
    paginator = boto3_client.get_paginator("list_optimization_jobs")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 5}))
    assert len(pages) == 5
    listed = [s["OptimizationJobName"] for p in pages for s in p["OptimizationJobSummaries"]]
    assert sorted(listed) == names


async def test_responses_are_aws_json(mock: MockSageMaker) -> None:
    (name,) = mock.seed_jobs(1)
    status, headers, body = await _raw(
        mock.url,
        "SageMaker.DescribeOptimizationJob",
        json.dumps({"OptimizationJobName": name}).encode(),
    )
    assert status == 200
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-RequestId"]
    description = json.loads(body)
    assert isinstance(description["CreationTime"], float)
    assert b'": ' not in body  # compact separators, as AWS sends


async def test_missing_authorization_is_rejected(mock: MockSageMaker) -> None:
    status, _, body = await _raw(mock.url, "SageMaker.ListOptimizationJobs", headers={})
    assert status == 403
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    assert mock.stats().counters == {
        "ListOptimizationJobs": {"MissingAuthenticationTokenException": 1}
    }


@pytest.mark.parametrize(
    "target", ["SageMaker.DescribeTrainingJob", "Other.ListOptimizationJobs", None]
)
async def test_unknown_target_is_an_aws_error(mock: MockSageMaker, target: str | None) -> None:
    status, _, body = await _raw(mock.url, target)
    assert status == 400
    error = json.loads(body)
    assert error["__type"] == "UnknownOperationException"
    assert error["message"]


async def test_unknown_target_is_counted_under_its_name(mock: MockSageMaker) -> None:
    status, _, _ = await _raw(mock.url, "SageMaker.CreateModel")
    assert status == 400
    assert mock.stats().count("SageMaker.CreateModel", "UnknownOperationException") == 1


async def test_body_that_is_not_a_json_object(mock: MockSageMaker) -> None:
    status, _, body = await _raw(mock.url, "SageMaker.ListOptimizationJobs", b"[1, 2]")
    assert status == 400
    assert json.loads(body)["__type"] == "SerializationException"
    status, _, body = await _raw(mock.url, "SageMaker.ListOptimizationJobs", b"{not json")
    assert json.loads(body)["__type"] == "SerializationException"
    # An empty body is an empty request, as botocore sends for no parameters.
    status, _, body = await _raw(mock.url, "SageMaker.ListOptimizationJobs", b"")
    assert status == 200


async def test_other_paths_are_not_operations(mock: MockSageMaker) -> None:
    async with aiohttp.ClientSession() as http, http.get(mock.url + "/") as response:
        assert response.status == 400
        assert (await response.json(content_type=None))["__type"] == "UnknownOperationException"


async def test_created_job_reaches_a_terminal_status(aio_client: Any, mock: MockSageMaker) -> None:
    await aio_client.create_optimization_job(OptimizationJobName="quick", **CREATE_REQUEST)
    seen: list[str] = []
    with anyio.fail_after(5):
        while not seen or seen[-1] not in ("COMPLETED", "FAILED"):
            job = await aio_client.describe_optimization_job(OptimizationJobName="quick")
            if not seen or seen[-1] != job["OptimizationJobStatus"]:
                seen.append(job["OptimizationJobStatus"])
            await anyio.sleep(0.02)
    truth = [status for status, _ in mock.transitions(["quick"])["quick"]]
    assert truth[:2] == ["STARTING", "INPROGRESS"]
    assert set(seen) <= set(truth)
    assert job["OptimizationEndTime"] >= job["OptimizationStartTime"] >= job["CreationTime"]


def test_lifecycle_is_configurable_on_the_fly(threaded_mock: MockSageMaker) -> None:
    threaded_mock.lifecycle = Lifecycle(starting=(float("inf"), float("inf")))
    assert threaded_mock.lifecycle.starting == (float("inf"), float("inf"))
