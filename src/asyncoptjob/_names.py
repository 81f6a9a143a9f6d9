"""Job-name validation, done before any request is sent."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["NAME_RULE", "validate_names"]

_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
NAME_RULE = "use 1-63 letters, digits and hyphens, starting and ending with a letter or digit"


def validate_names(names: str | Iterable[str]) -> list[str]:
    """Return the names, duplicates removed in first-seen order.

    Args:
        names: one job name or an iterable of them.

    Raises:
        TypeError: ``names`` is not a string or an iterable of strings.
        ValueError: one or more names do not match the API's pattern; the message lists
            every offender and the rule.
    """
    given: object = names
    if isinstance(given, str):
        names = [given]
    elif isinstance(given, (bytes, bytearray)) or not isinstance(given, Iterable):
        raise TypeError(
            f"job names must be a str or an iterable of str, not {type(given).__name__}"
        )
    unique: dict[str, None] = {}
    bad: list[str] = []
    for name in names:
        if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
            bad.append(repr(name))
        else:
            unique[name] = None
    if bad:
        shown = ", ".join(bad[:20]) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
        noun = "name is" if len(bad) == 1 else "names are"
        raise ValueError(f"{len(bad)} job {noun} not valid: {shown}; {NAME_RULE}")
    return list(unique)
