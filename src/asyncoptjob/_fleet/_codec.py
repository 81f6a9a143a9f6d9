"""Descriptions to and from JSON, keeping botocore's timezone-aware datetimes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["decode", "encode"]

_TAG = "$dt"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_TAG: value.isoformat()}
    raise TypeError(f"cannot store a {type(value).__name__} in Redis")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _TAG in obj:
        return datetime.fromisoformat(obj[_TAG])
    return obj


def encode(description: Any) -> str:
    """A description (as botocore parsed it) as compact JSON."""
    return json.dumps(description, default=_default, separators=(",", ":"))


def decode(text: str) -> Any:
    """The description :func:`encode` stored, datetimes restored."""
    return json.loads(text, object_hook=_hook)
