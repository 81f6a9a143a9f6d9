"""AWS JSON 1.1 wire details shared by the simulation and the HTTP app.

SageMaker answers every error as HTTP 4xx/5xx with a body
``{"__type": "<Code>", "message": "..."}``; botocore reads ``__type`` into
``e.response["Error"]["Code"]``. `AwsError` carries those three parts from
wherever the error is decided to the one place that writes responses.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

__all__ = [
    "CONTENT_TYPE",
    "NAME_PATTERN",
    "AwsError",
    "check_name",
    "dumps",
    "error_body",
    "resource_in_use",
    "resource_not_found",
    "validation",
]

CONTENT_TYPE: Final = "application/x-amz-json-1.1"

#: The job-name pattern from the service model, anchored.
NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


class AwsError(Exception):
    """An error the mock answers in AWS's shape.

    Args:
        code: The AWS error code, sent as ``__type``.
        message: The human-readable ``message``.
        status: The HTTP status code.
    """

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def dumps(value: Any) -> str:
    """Serialize *value* as compact JSON, the way AWS sends it."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def error_body(code: str, message: str) -> bytes:
    """Return the JSON error body AWS JSON 1.1 services send."""
    return dumps({"__type": code, "message": message}).encode()


def validation(message: str) -> AwsError:
    """Return a ``ValidationException`` (HTTP 400)."""
    return AwsError("ValidationException", message)


def check_name(name: object, field: str = "optimizationJobName") -> str:
    """Return *name* if it is a valid job name.

    Raises:
        AwsError: ``ValidationException`` worded like SageMaker's.
    """
    if name is None:
        raise validation(
            f"1 validation error detected: Value null at '{field}' failed to satisfy "
            "constraint: Member must not be null"
        )
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise validation(
            f"1 validation error detected: Value '{name}' at '{field}' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: " + NAME_PATTERN.pattern
        )
    return name


def resource_not_found(name: str) -> AwsError:
    """Return the ``ResourceNotFound`` SageMaker sends for an unknown job."""
    return AwsError("ResourceNotFound", f"Could not find optimization job '{name}'.")


def resource_in_use(name: str) -> AwsError:
    """Return the ``ResourceInUse`` SageMaker sends for a duplicate job name."""
    return AwsError(
        "ResourceInUse",
        f"Optimization job name '{name}' is already in use: job names must be unique "
        "within an AWS account and Region.",
    )
