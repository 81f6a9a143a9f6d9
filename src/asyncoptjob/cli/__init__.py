"""The ``asyncoptjob`` command line: demo, watch, wait and mock-server.

Needs the ``cli`` extra (``pip install "asyncoptjob[cli]"``: typer and rich); the
library itself never imports this package. Run ``asyncoptjob --help``, or::

    python -m asyncoptjob.cli demo --jobs 50
"""

from __future__ import annotations

from ._app import app, main
from ._exit import ExitCode

__all__ = ["ExitCode", "app", "main"]
