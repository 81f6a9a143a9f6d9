"""The calls the library makes, and what can become of them: one vocabulary for all.

The request pipeline counts every call by operation and outcome, the statistics and
the metrics report them by the same names, and the testing kit's fake records them.
"""

from __future__ import annotations

__all__ = ["DESCRIBE", "LIST", "OPERATIONS", "OUTCOMES"]

DESCRIBE = "DescribeOptimizationJob"
LIST = "ListOptimizationJobs"
OPERATIONS = (DESCRIBE, LIST)
#: What became of a call: accepted, throttled, a transient failure (5xx, timeout,
#: dropped connection), an unknown job, or any other error.
OUTCOMES = ("ok", "throttled", "transient", "not_found", "error")
