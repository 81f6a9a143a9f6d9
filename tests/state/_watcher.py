"""A durable watcher for the SIGKILL tests, run as its own process.

``python -m tests.state._watcher URL STATE LOG NAME...``: watches NAME... against the
mock at URL with ``state=STATE``; each event is one JSON line appended to LOG (a single
``write``, so a kill never leaves half a line) before the handler "works" a little.
"""

from __future__ import annotations

import json
import os
import random
import sys

import anyio

from asyncoptjob import StatusChange, watch


async def main(url: str, state: str, log: str, names: list[str]) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        async for event in watch(
            names,
            state=state,
            consumer="killed",
            endpoint_url=url,
            region_name="us-east-1",
            poll_interval=0.1,
        ):
            assert isinstance(event, StatusChange), event
            previous = event.previous_status.value if event.previous_status else None
            line = {"job": event.job_name, "previous": previous, "status": event.status.value}
            os.write(fd, (json.dumps(line) + "\n").encode())
            # The handler's work: a kill may land here (handled, not committed).
            await anyio.sleep(random.uniform(0, 0.02))
    finally:
        os.close(fd)


if __name__ == "__main__":
    url, state, log, *names = sys.argv[1:]
    anyio.run(main, url, state, log, names)
