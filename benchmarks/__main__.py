"""``python -m benchmarks``: run the benchmark scenarios and write the results."""

import sys

from .runner import main

sys.exit(main())
