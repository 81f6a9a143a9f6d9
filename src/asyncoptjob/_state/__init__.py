"""Durable watches: each consumer's cursors per job, the learned rate, the sweep watermark.

Two stores behind one small interface (:class:`~._store.BatchedStore`): a SQLite file
(``state=``, one process, here) and the fleet's Redis (``redis_url=``, any replica: the
fleet brings its own, ``_fleet._cursors``). The watch
layer reads a consumer's cursors when a subscription attaches and commits when the
consumer asks for the next event (:class:`~._consumer.ConsumerCursors`); the store
writes commits in batches off the event loop.
"""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from .._client import import_off_loop
from .._log import get_logger
from ._consumer import DEFAULT_CONSUMER, NO_STATE, ConsumerCursors, check_consumer
from ._store import BatchedStore, Cursor

if TYPE_CHECKING:
    from .._options import Options
    from .._ratelimit import AdaptiveRateLimiter
    from .._sweep import Sweeper

__all__ = [
    "DEFAULT_CONSUMER",
    "NO_STATE",
    "consumer_cursors",
    "BatchedStore",
    "ConsumerCursors",
    "Cursor",
    "check_consumer",
    "open_state",
    "remember",
]

log = get_logger()

RATE_KEY = "describe_rate"
WATERMARK_KEY = "sweep_watermark"


def consumer_cursors(options: Options, consumer: str | None) -> ConsumerCursors | None:
    """The cursors of one watch: ``consumer`` (default ``"default"``) when state is kept.

    With ``state=`` every watch is durable (as ``"default"`` unless named). In fleet mode
    only a watch that names its ``consumer`` is: a fleet's plain watches keep hearing
    every status change, as before durable watches existed.

    Raises:
        ValueError: ``consumer`` without ``state=`` or ``redis_url=``, or a bad name.
    """
    if options.state is not None:
        return ConsumerCursors(DEFAULT_CONSUMER if consumer is None else consumer)
    if consumer is None:
        return None
    if options.redis_url is None:
        raise ValueError(NO_STATE)
    return ConsumerCursors(consumer)


async def open_state(
    stack: AsyncExitStack, options: Options, elsewhere: BatchedStore | None = None
) -> BatchedStore | None:
    """The store for ``state=`` (SQLite), or ``elsewhere`` (the fleet's, in Redis); its
    last batch is written, and it is closed, when ``stack`` closes."""
    store: BatchedStore
    if options.state is not None:
        await import_off_loop(f"{__package__}._sqlite")  # sqlite3 and the store's codec
        from ._sqlite import SQLiteStore

        store = await SQLiteStore.open(options.state)
    elif elsewhere is not None:
        store = elsewhere
    else:
        return None
    stack.push_async_callback(store.aclose)
    return store


def remember(
    store: BatchedStore, limiter: AdaptiveRateLimiter | None, sweeper: Sweeper | None
) -> None:
    """Start ``limiter`` and ``sweeper`` from the learned rate and sweep watermark in
    ``store``; keep them there."""
    saved = {key: json.loads(value) for key, value in store.settings.items()}
    rate = saved.get(RATE_KEY)
    if limiter is not None and isinstance(rate, (int, float)) and rate > 0:
        limiter.restore(float(rate))
        log.debug("learned_rate_restored", rate=rate)
    watermark = saved.get(WATERMARK_KEY)
    if sweeper is not None and isinstance(watermark, (int, float)):
        # Sweeps go on from where the last run left off (never from the future).
        sweeper.watermark = min(float(watermark), time.time())

    def current() -> dict[str, str]:
        values: dict[str, str] = {}
        learned = limiter.snapshot() if limiter is not None else None
        if learned is not None:
            values[RATE_KEY] = json.dumps(round(learned, 6))
        if sweeper is not None:
            values[WATERMARK_KEY] = json.dumps(sweeper.watermark)
        return values

    store.remember(current)
