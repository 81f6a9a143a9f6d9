"""Every response body the mock sends conforms to botocore's own SageMaker model."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import botocore.session
import pytest

from asyncoptjob.mock import Lifecycle, MockSageMaker

INF = math.inf
AUTH_HEADERS = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/x, Signature=0"}
OUTPUT_SHAPES = {
    "DescribeOptimizationJob": "DescribeOptimizationJobResponse",
    "ListOptimizationJobs": "ListOptimizationJobsResponse",
    "CreateOptimizationJob": "CreateOptimizationJobResponse",
}


@pytest.fixture(scope="module")
def model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def _pattern(shape: Any) -> re.Pattern[str] | None:
    pattern = shape.metadata.get("pattern")
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error:  # pragma: no cover - \p{...} classes appear only in input shapes
        return None


def validate(value: Any, shape: Any, path: str = "$") -> list[str]:
    """Return every way *value* (raw JSON) breaks botocore *shape*."""
    errors: list[str] = []
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        errors += [
            f"{path}: missing required member {name}"
            for name in shape.required_members
            if name not in value
        ]
        for name, member in value.items():
            if name not in shape.members:
                errors.append(f"{path}: unknown member {name}")
                continue
            errors += validate(member, shape.members[name], f"{path}.{name}")
        if meta.get("union") and len(value) != 1:
            errors.append(f"{path}: a union must set exactly one member, got {sorted(value)}")
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected array, got {type(value).__name__}"]
        if not meta.get("min", 0) <= len(value) <= meta.get("max", INF):
            errors.append(f"{path}: length {len(value)} outside {meta}")
        for i, item in enumerate(value):
            errors += validate(item, shape.member, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        if not meta.get("min", 0) <= len(value) <= meta.get("max", INF):
            errors.append(f"{path}: size {len(value)} outside {meta}")
        for key, item in value.items():
            errors += validate(key, shape.key, f"{path}<key>")
            errors += validate(item, shape.value, f"{path}[{key!r}]")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected string, got {type(value).__name__}"]
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} is not one of the enum values")
        if not meta.get("min", 0) <= len(value) <= meta.get("max", INF):
            errors.append(f"{path}: length {len(value)} outside {meta}")
        pattern = _pattern(shape)
        if pattern is not None and pattern.fullmatch(value) is None:
            errors.append(f"{path}: {value!r} does not match {pattern.pattern}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: expected integer, got {type(value).__name__}"]
        if not meta.get("min", -INF) <= value <= meta.get("max", INF):
            errors.append(f"{path}: {value} outside {meta}")
    elif kind in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{path}: expected number, got {type(value).__name__}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected boolean, got {type(value).__name__}")
    elif kind == "timestamp":
        # JSON protocols send epoch seconds.
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{path}: expected epoch seconds, got {value!r}")
        elif not 1e9 < value < 1e10:
            errors.append(f"{path}: {value} is not a plausible epoch time")
    else:  # pragma: no cover - no other shape kinds in these outputs
        errors.append(f"{path}: unchecked shape kind {kind}")
    return errors


def test_validator_catches_mistakes(model: Any) -> None:
    shape = model.shape_for("DescribeOptimizationJobResponse")
    bad = {
        "OptimizationJobStatus": "DONE",
        "CreationTime": "yesterday",
        "OptimizationJobName": "a_b",
        "Extra": 1,
        "OptimizationConfigs": [{}],
    }
    errors = "\n".join(validate(bad, shape))
    for expected in (
        "missing required member OptimizationJobArn",
        "'DONE' is not one of the enum values",
        "expected epoch seconds",
        "does not match",
        "unknown member Extra",
        "exactly one member",
    ):
        assert expected in errors


async def _post(http: aiohttp.ClientSession, url: str, operation: str, body: Any) -> Any:
    headers = {
        **AUTH_HEADERS,
        "X-Amz-Target": f"SageMaker.{operation}",
        "Content-Type": "application/x-amz-json-1.1",
    }
    async with http.post(url, data=json.dumps(body), headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
        return json.loads(await response.read())


def _seed_each_status(mock: MockSageMaker) -> dict[str, str]:
    """Seed one job that is (or will be) in each status; return status -> name."""
    now = (0.0, 0.0)
    never = (INF, INF)
    names = {
        "STARTING": mock.seed_jobs(1, prefix="starting", lifecycle=Lifecycle(starting=never)),
        "INPROGRESS": mock.seed_jobs(
            1, prefix="inprogress", lifecycle=Lifecycle(starting=now, in_progress=never)
        ),
        "COMPLETED": mock.seed_jobs(
            1, prefix="completed", lifecycle=Lifecycle(starting=now, in_progress=now)
        ),
        "FAILED": mock.seed_jobs(
            1,
            prefix="failed",
            lifecycle=Lifecycle(starting=now, in_progress=now, failure_rate=1.0),
        ),
        "STOPPING": mock.seed_jobs(
            1,
            prefix="stopping",
            lifecycle=Lifecycle(starting=now, in_progress=never, stopping=never),
        ),
        "STOPPED": mock.seed_jobs(
            1,
            prefix="stopped",
            lifecycle=Lifecycle(starting=now, in_progress=now, stopping=now),
            outcome="STOPPED",
        ),
    }
    return {status: found[0] for status, found in names.items()}


async def test_every_response_kind_matches_the_service_model(model: Any) -> None:
    async with MockSageMaker(seed=7) as mock, aiohttp.ClientSession() as http:
        names = _seed_each_status(mock)
        mock.seed_jobs(60)  # varied catalog profiles
        await _post(
            http, mock.url, "StopOptimizationJob", {"OptimizationJobName": names["STOPPING"]}
        )
        created = await _post(
            http,
            mock.url,
            "CreateOptimizationJob",
            {
                "OptimizationJobName": "created-job",
                "RoleArn": "arn:aws:iam::123456789012:role/MyRole",
                "ModelSource": {"S3": {"S3Uri": "s3://bucket/model/"}},
                "DeploymentInstanceType": "ml.g5.2xlarge",
                "OptimizationConfigs": [
                    {"ModelCompilationConfig": {"OverrideEnvironment": {"A": "1"}}}
                ],
                "OutputConfig": {"S3OutputLocation": "s3://bucket/out/"},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                "Tags": [{"Key": "team", "Value": "ml"}],
            },
        )
        checked: list[tuple[str, Any]] = [("CreateOptimizationJob", created)]

        seen_statuses = set()
        for name in [*names.values(), "created-job", *mock.job_names()]:
            body = await _post(
                http, mock.url, "DescribeOptimizationJob", {"OptimizationJobName": name}
            )
            seen_statuses.add(body["OptimizationJobStatus"])
            checked.append(("DescribeOptimizationJob", body))
        assert seen_statuses == {
            "STARTING",
            "INPROGRESS",
            "COMPLETED",
            "FAILED",
            "STOPPING",
            "STOPPED",
        }

        for request in (
            {},
            {"MaxResults": 5, "SortBy": "Name", "SortOrder": "Ascending"},
            {"StatusEquals": "FAILED"},
            {"SortBy": "Status", "MaxResults": 100},
        ):
            page = await _post(http, mock.url, "ListOptimizationJobs", request)
            checked.append(("ListOptimizationJobs", page))
            assert page["OptimizationJobSummaries"]

        for operation, body in checked:
            errors = validate(body, model.shape_for(OUTPUT_SHAPES[operation]))
            assert errors == [], f"{operation}: {errors}"

        # Operations without an output shape answer an empty object.
        assert model.operation_model("DeleteOptimizationJob").output_shape is None
        assert (
            await _post(
                http, mock.url, "DeleteOptimizationJob", {"OptimizationJobName": "created-job"}
            )
            == {}
        )


async def test_descriptions_carry_status_specific_fields(mock: MockSageMaker) -> None:
    names = _seed_each_status(mock)
    async with aiohttp.ClientSession() as http:
        await _post(
            http, mock.url, "StopOptimizationJob", {"OptimizationJobName": names["STOPPING"]}
        )
        described = {
            status: await _post(
                http, mock.url, "DescribeOptimizationJob", {"OptimizationJobName": name}
            )
            for status, name in names.items()
        }
    assert "OptimizationStartTime" not in described["STARTING"]
    assert "OptimizationEndTime" not in described["INPROGRESS"]
    assert "OptimizationOutput" in described["COMPLETED"]
    assert described["COMPLETED"]["OptimizationOutput"]["RecommendedInferenceImage"]
    assert described["FAILED"]["FailureReason"]
    for status in ("COMPLETED", "FAILED", "STOPPED"):
        body = described[status]
        assert body["OptimizationEndTime"] == body["LastModifiedTime"]
        assert body["CreationTime"] <= body["OptimizationStartTime"] <= body["OptimizationEndTime"]
    for status, body in described.items():
        assert body["OptimizationJobStatus"] == status
        assert "FailureReason" not in body or status == "FAILED"
        assert body["OptimizationJobArn"].endswith(
            f"optimization-job/{body['OptimizationJobName']}"
        )
        assert ":123456789012:" in body["OptimizationJobArn"]
        transitions = mock.transitions([body["OptimizationJobName"]])[body["OptimizationJobName"]]
        assert body["LastModifiedTime"] == transitions[-1][1]


def test_seeded_configs_cover_every_optimization_type() -> None:
    mock = MockSageMaker(seed=3)
    mock.seed_jobs(300)
    body_types: set[str] = set()
    for name in mock.job_names():
        description = json.loads(mock._sim.describe(name))
        for config in description["OptimizationConfigs"]:
            body_types.update(config)
    assert body_types == {
        "ModelQuantizationConfig",
        "ModelCompilationConfig",
        "ModelShardingConfig",
        "ModelSpeculativeDecodingConfig",
    }


async def test_region_and_account_reach_arns(
    make_aio_client: Callable[..., AbstractAsyncContextManager[Any]],
) -> None:
    async with MockSageMaker(seed=1, region="eu-west-1", account_id="210987654321") as mock:
        (name,) = mock.seed_jobs(1)
        async with make_aio_client(mock.url) as client:
            job = await client.describe_optimization_job(OptimizationJobName=name)
    assert job["OptimizationJobArn"] == (
        f"arn:aws:sagemaker:eu-west-1:210987654321:optimization-job/{name}"
    )
    assert job["RoleArn"].startswith("arn:aws:iam::210987654321:role/")
