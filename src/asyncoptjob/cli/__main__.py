"""``python -m asyncoptjob.cli``: the same as the ``asyncoptjob`` command."""

from ._app import main

main()
