"""``python -m asyncoptjob.mock``: serve the mock endpoint until SIGINT/SIGTERM."""

import sys

from ._process import main

sys.exit(main())
