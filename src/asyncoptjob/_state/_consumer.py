"""One consumer's cursors for one watch: where it starts, and what it commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._breath import in_slices
from .._events import JobStatus, StatusChange

if TYPE_CHECKING:
    from .._events import Description, Event
    from ._store import BatchedStore

__all__ = ["DEFAULT_CONSUMER", "ConsumerCursors", "check_consumer"]

NO_STATE = (
    "consumer= needs somewhere to keep its cursors: give state='watch.db' (a SQLite file) "
    "or redis_url= (fleet mode)"
)
DEFAULT_CONSUMER = "default"
#: Jobs whose cursors are sorted out between two checkpoints when a watch starts.
START_SLICE = 5_000


def check_consumer(consumer: object) -> None:
    """Raise ``ValueError`` unless ``consumer`` is a usable consumer name."""
    if not isinstance(consumer, str) or not 1 <= len(consumer) <= 200 or not consumer.isprintable():
        raise ValueError(
            f"consumer must be a name of 1-200 printable characters, e.g. 'deployer'; "
            f"got {consumer!r}"
        )


class ConsumerCursors:
    """A durable consumer's side of one watch.

    At attach (:meth:`start`) it reads the consumer's cursors: a job whose terminal status
    was committed is *settled* (not watched again; its stored description is kept), and
    every other job starts from its committed status (the first event's
    ``previous_status``; the same status is not delivered again). While the watch runs it
    holds the event last handed to the consumer (:meth:`hold`) and commits it when the
    consumer asks for the next one or the watch ends cleanly (:meth:`commit`).
    """

    __slots__ = ("_held", "_store", "consumer", "settled")

    def __init__(self, consumer: str) -> None:
        check_consumer(consumer)
        self.consumer = consumer
        self._store: BatchedStore | None = None
        self._held: Event | None = None
        #: Jobs whose terminal status this consumer committed: their final descriptions.
        self.settled: dict[str, Description] = {}

    def use(self, store: BatchedStore | None) -> None:
        """Keep the cursors in ``store`` (the running Poller's; None: it keeps none)."""
        self._store = store

    async def start(self, names: Sequence[str]) -> tuple[list[str], dict[str, JobStatus]]:
        """Read the cursors of ``names``; return the jobs to watch and where each starts.

        Raises:
            ValueError: no store to keep them in (:meth:`use`).
        """
        store = self._store
        if store is None:
            raise ValueError(NO_STATE)
        cursors = await store.load(self.consumer, names)
        watched: list[str] = []
        since: dict[str, JobStatus] = {}
        unknown: list[str] = []  # jobs this consumer has no cursor of yet: registered below
        # 100,000 jobs: the loop runs between slices.
        async for part in in_slices(names, START_SLICE):
            for name in part:
                cursor = cursors.get(name)
                if cursor is None:
                    unknown.append(name)
                    watched.append(name)
                elif cursor.status is None:
                    watched.append(name)
                elif cursor.status.is_terminal:
                    minimal: Any = {
                        "OptimizationJobName": name,
                        "OptimizationJobStatus": cursor.status,
                    }
                    self.settled[name] = cursor.description or minimal
                else:
                    watched.append(name)
                    since[name] = cursor.status
        await store.register(self.consumer, unknown)
        return watched, since

    async def hold(self, event: Event) -> None:
        """Hand ``event`` out next; first make sure the job's last commit is written.

        Waiting here (rarely: only for two events of one job within one batch) keeps a
        restart to at most one re-delivered event per job.
        """
        store = self._store
        if (
            store is not None
            and isinstance(event, StatusChange)
            and not store.is_written(self.consumer, event.job_name)
        ):
            await store.wait_written(self.consumer, event.job_name)
        self._held = event

    def commit(self) -> None:
        """The consumer handled the event last handed out: commit it (a JobErrorEvent is not)."""
        event, self._held = self._held, None
        if isinstance(event, StatusChange) and self._store is not None:
            self._store.commit(self.consumer, event.job_name, event.status, event.description)
