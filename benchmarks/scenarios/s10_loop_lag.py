"""S10 loop-lag census: how long each phase of a watch holds the caller's event loop.

A ticker task sleeps 1 ms at a time on the caller's loop; each tick's lag (how late it
woke up) is the time the loop was busy with something else. Per phase: the worst and the
99th-percentile lag, the ticks counted and how long the phase took. Target (issue 21):
worst <= 10 ms in every phase. Everything goes over real HTTP to the mock endpoint in its
own process, through the public API, at the library's defaults unless said. Each phase
runs in a fresh process of its own, so no phase pays for the heap another left (a full
garbage collection walks every object of the process, and holds the loop meanwhile); a
window opens after a tick, so a block before it is not counted in it.

1. **Open** (the first client in the process, the service model cold, as a new user's
   first open): ``async with Poller(endpoint_url=...)`` entered, then
   ``wait_until_done`` of one finished job. Contender 4: its client (``create_client``,
   adaptive retries) entered, then one describe. Then, in the same process (rows of their
   own, no target), the first Poller with ``state=`` and the first with ``redis_url=``:
   what a mode adds to an open (its modules imported, SQLite opened, Redis joined).
2. **Subscribe** 100,000 names at once: ``async with poller.watch(names)`` entered,
   until it returns (every job attached), with ``strategy="describe"``; the Poller is
   open before.
3. **First round**: from there until every job's first event (the jobs are finished, so
   a job's first describe is its last). Contender 4: its gather + Semaphore loop
   (:mod:`benchmarks.watchers`) over the same jobs, from the ``gather`` call (making its
   100,000 tasks, its subscribe, included) until every job was described; its client is
   built before.
   Phases 2 and 3 run once more in a process where the host called ``gc.freeze()``
   once the Poller was open (rows "the host froze its heap"; no target): what a service
   that freezes its start-up heap sees. The library never calls it.
4. **Durable**: ``poller.watch(names, consumer=...)`` of 10,000 jobs with ``state=``
   (SQLite), each going STARTING, INPROGRESS, COMPLETED within seconds, polled every
   second: the whole watch, every event delivered and committed.
5. **Fleet**: ``redis_url=`` (a real ``redis-server``): ``async with poller.watch(names)``
   of 10,000 jobs entered (attaching them); then, as a second row, the first round.
6. **List pages**: ``strategy="sweep"`` watching 10,000 running jobs, with sweeps that
   read 100-item pages of every job the mock holds (``overlap`` of an hour, so each
   window lists them all; no List rate limit, so pages come as fast as the mock answers
   them): measured from the end of the watched jobs' first round until 1,000 more pages
   (100,000 listed jobs) were read and applied.
7. **CLI live view**: ``asyncoptjob watch --output live`` of 100,000 jobs for 30 s
   (``--timeout``) through ``asyncoptjob.cli.main`` (the public entry point), its output
   forced to a terminal's and thrown away. The ticker runs on the CLI's own loop: an
   event-loop policy starts it in the loop ``anyio.run`` creates. Two rows: the whole
   run (client creation, subscribe and first describes included), and the ticks during
   which the live board was rendered (a tick spanning a write to the terminal).

The machine's floor, the same ticker alone on an idle loop for 10 s (a fresh process
too), is given under the table, and so is the floor of a full garbage collection: its
length in a fresh process that has imported only contender 4's client
(``aiobotocore.session``), and one that has imported ``asyncoptjob``, nothing else
running (the median of five).

Two things hold a loop besides the work under test, and the table tells them apart.
Python's full (generation-2) garbage collections: each walks every tracked object of
the process (imported modules, botocore's service model, whatever the host holds), so
its length is the whole heap's, whichever code triggered it; the run records each one
(``gc.callbacks``) and gives their count and the longest. And the machine: on 2 shared
cores another process can take the core for tens of milliseconds; each tick also notes
the loop thread's CPU time, and a tick's *hold* is its lag capped at the CPU time the
loop thread spent since the tick before. The second target of each phase bounds the
worst hold over the ticks no full collection overlapped: the library's own stretches of
work on the loop.

Contenders 1, 2, 3 and 5 are left out (threads, or the same client as contender 4 with
fewer guards); contender 4 appears where its pattern has the phase. All numbers come
from one run on a shared 2-core machine, where another process can hold a core for
several ms at any tick.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import inspect
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from asyncoptjob import Poller, PollPolicy, SweepPolicy
from asyncoptjob.testing import RedisServer

from ..contenders import ADAPTIVE_RETRIES, CONTENDERS, aio_client
from ..environment import REGION
from ..isolation import run_side_by_side
from ..measure import FullCollections, LagMeter, LagProbe, medians, percentile
from ..mockserver import MockServer
from ..registry import RunContext, scenario
from ..report import Column, Headline, Plot, Row, ScenarioResult, Table, Target, fmt
from ..watchers import WATCHERS

TICK = 0.001
TARGET_MS = 10.0
CONCURRENCY = 16
CONSUMER = "census"
_ONE_HOUR = PollPolicy(interval=3600.0, max_interval=3600.0)
_FINISHED = {"starting": [0, 0], "in_progress": [0, 0]}
_RUNNING = {"starting": [0, 0], "in_progress": [1e9, 1e9]}

#: The idle-loop baseline's key in the samples (it is no contender's).
IDLE = "machine"
#: The samples' key of a full collection's floor (:func:`collection_floor`).
GC_FLOOR = "gc_floor"

#: What a phase measured: figures by row key (a phase may fill two rows).
Figures = dict[str, dict[str, float]]


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each phase is.

    Attributes:
        jobs: subscribed at once, described in the first round, watched by the CLI.
        few: the durable watch's jobs, the fleet's, and the jobs a sweep watches.
        pages: List pages a sweep reads in the measured window.
        step_s: the durable jobs' pace: each is STARTING for 2-8 steps, then INPROGRESS
            for 4-12, polled every step.
        cli_s: how long the CLI runs (``--timeout``).
        idle_s: how long the idle loop is probed.
    """

    jobs: int
    few: int
    pages: int
    step_s: float
    cli_s: float
    idle_s: float

    @property
    def durable_lifecycle(self) -> dict[str, list[float]]:
        step = self.step_s
        return {"starting": [2 * step, 8 * step], "in_progress": [4 * step, 12 * step]}


FULL = Sizes(jobs=100_000, few=10_000, pages=1_000, step_s=1.0, cli_s=30.0, idle_s=10.0)
QUICK = Sizes(jobs=2_000, few=300, pages=20, step_s=0.025, cli_s=2.0, idle_s=0.5)


@dataclass(frozen=True, slots=True)
class Phase:
    """One row of the census: a phase as one contender meets it."""

    key: str
    contender: str
    label: str
    target: bool = True


def _phases(sizes: Sizes) -> list[Phase]:
    jobs, few = f"{sizes.jobs:,}", f"{sizes.few:,}"
    mine, c4 = "asyncoptjob", "aiobotocore_gather"
    return [
        Phase("open", mine, "1. open a Poller + first describe, fresh process"),
        Phase("open", c4, "1. create_client + first describe, fresh process"),
        Phase("open_state", mine, "1. then a first Poller with state=, + first describe", False),
        Phase(
            "open_fleet", mine, "1. then a first Poller with redis_url=, + first describe", False
        ),
        Phase("subscribe", mine, f"2. subscribe {jobs} jobs (watch entered)"),
        Phase("first_round", mine, f"3. first round of {jobs} describes"),
        Phase("first_round", c4, f"3. gather+Semaphore first round of {jobs} describes"),
        Phase("frozen_subscribe", mine, "2. subscribe, the host froze its heap (gc.freeze)", False),
        Phase("frozen_round", mine, "3. first round, the host froze its heap (gc.freeze)", False),
        Phase("durable", mine, f"4. deliver + commit with state=, {few} jobs"),
        Phase("fleet", mine, f"5. attach {few} jobs, redis_url="),
        Phase("fleet_round", mine, f"5. first round of {few} jobs, redis_url=", False),
        Phase("sweep", mine, f"6. read + apply {sizes.pages:,} List pages"),
        Phase("cli", mine, f"7. CLI live view of {jobs} jobs, whole run"),
        Phase("cli_render", mine, "7. CLI live view: ticks spanning a render", False),
    ]


#: Contender 4's row after the phase's last one, where its pattern has no such phase.
NOT_APPLICABLE = {
    "subscribe": "n/a (no subscribe step: its tasks are made by the first round's gather)",
    "durable": "n/a (no durable state)",
    "fleet_round": "n/a (no fleet mode)",
    "sweep": "n/a (describes every job: no List sweeps)",
    "cli_render": "n/a (no command line)",
}


#: This process's full garbage collections (recording from ``in_fresh_process`` on).
_COLLECTIONS = FullCollections()


def _figures(probe: LagProbe, wall: float, ticks: Sequence[int] | None = None) -> dict[str, float]:
    """A window's figures from ``probe``'s ticks (``ticks``: only those, by index).

    Besides the worst and p99 lag: the full collections that ran in the window and the
    longest of them; on the ticks no full collection held, the worst lag, and the worst
    hold, a tick's lag capped at the CPU time the loop thread spent since the tick
    before (what the lag would have been had no other process taken the core).
    """
    chosen = list(range(len(probe.lags)) if ticks is None else ticks)
    lags = [probe.lags[i] for i in chosen]
    spans = [(probe.due[i], probe.woke[i]) for i in chosen]
    collections = _COLLECTIONS.within(spans[0][0], spans[-1][1]) if spans else []
    free = [
        i
        for i, (due, woke) in zip(chosen, spans, strict=True)
        if not any(a < woke and b > due for a, b in collections)
    ]
    held = [min(probe.lags[i], probe.cpu_since(i)) for i in free]
    return {
        "worst_ms": 1000 * max(lags, default=0.0),
        "p99_ms": 1000 * percentile(lags, 99) if lags else 0.0,
        "ticks": float(len(lags)),
        "wall_s": wall,
        "full_gcs": float(len(collections)),
        "longest_gc_ms": 1000 * max((b - a for a, b in collections), default=0.0),
        "worst_no_gc_ms": 1000 * max((probe.lags[i] for i in free), default=0.0),
        "worst_held_ms": 1000 * max(held, default=0.0),
    }


class _Window:
    """One window of a probe: opened after a tick, so that blocks before it stay out.

    A tick pending when a window opens would carry the lag of whatever came before into
    it; a tick taken at the close counts a block that has just ended.
    """

    def __init__(self, probe: LagProbe) -> None:
        self.probe = probe
        self.started = 0.0

    async def open(self) -> None:
        await self.probe.settle()
        self.probe.reset()
        self.started = time.perf_counter()

    async def close(self) -> dict[str, float]:
        await self.probe.settle()
        return _figures(self.probe, time.perf_counter() - self.started)


def _poller(url: str, **options: Any) -> Poller:
    return Poller(endpoint_url=url, region_name=REGION, **options)


# Each phase runs in a fresh process (``in_fresh_process``): the first client of phase 1
# is cold, and no phase pays for the heap another left (a full garbage collection walks
# every object of the process, so its pauses grow with the heap).


async def _idle(url: str, seconds: float) -> Figures:
    """The machine's floor: the ticker alone on an idle loop (``url`` is not used)."""
    async with LagProbe(TICK) as probe:
        window = _Window(probe)
        await window.open()
        await asyncio.sleep(seconds)
        return {"idle": await window.close()}


async def _open(url: str, name: str, contender: str, redis_url: str | None = None) -> Figures:
    """Phase 1: open a client and describe ``name`` once; for asyncoptjob also (rows of
    their own) a Poller with ``state=``, and one with ``redis_url=`` if given, each the
    first of its mode in the process."""
    async with LagProbe(TICK) as probe:
        window = _Window(probe)
        if contender != "asyncoptjob":
            await window.open()
            async with aio_client(url, pool=CONCURRENCY, retries=ADAPTIVE_RETRIES) as client:
                await client.describe_optimization_job(OptimizationJobName=name)
            return {"open": await window.close()}
        found: Figures = {}
        with tempfile.TemporaryDirectory() as folder:
            modes: dict[str, dict[str, Any]] = {
                "open": {},
                "open_state": {"state": os.path.join(folder, "census.db")},
            }
            if redis_url is not None:
                modes["open_fleet"] = {"redis_url": redis_url}
            for key, options in modes.items():
                await window.open()
                async with _poller(url, strategy="describe", **options) as poller:
                    await poller.wait_until_done(name)
                found[key] = await window.close()
        return found


async def _attach_and_first_round(poller: Poller, names: list[str], keys: list[str]) -> Figures:
    """Two windows: ``poller.watch(names)`` entered, then until every job's first event."""
    async with LagProbe(TICK) as probe:
        window = _Window(probe)
        await window.open()
        async with poller.watch(names) as events:
            attach = await window.close()
            await window.open()
            async for _ in events:
                pass  # each job's first event is terminal: the watch ends with the round
            return dict(zip(keys, [attach, await window.close()], strict=True))


async def _subscribe_and_first_round(url: str, names: list[str], freeze: bool = False) -> Figures:
    """Phases 2 and 3: subscribe, then the first round (every job is finished).

    ``freeze``: as a host may, once the Poller is open, ``gc.freeze()`` moves every object
    there is to a generation full collections no longer walk (the rows "the host froze
    its heap"; the library never does it for the host).
    """
    async with _poller(url, strategy="describe", poll_interval=_ONE_HOUR) as poller:
        if freeze:
            gc.freeze()
        keys = ["frozen_subscribe", "frozen_round"] if freeze else ["subscribe", "first_round"]
        return await _attach_and_first_round(poller, names, keys)


def _gather_first_round(url: str, names: list[str]) -> Figures:
    """Phase 3 for contender 4: its watcher, the span of its ``gather`` probed."""
    meter = LagMeter(interval=TICK)
    WATCHERS["aiobotocore_gather"](url, lambda: names, 3600.0, CONCURRENCY, meter)
    assert meter.span is not None
    return {"first_round": _figures(meter.probe, meter.span.wall)}


async def _durable(url: str, names: list[str], interval: float) -> Figures:
    """Phase 4: a durable consumer's whole watch, every event committed."""
    policy = PollPolicy(interval=interval, max_interval=interval, jitter=0.0)
    with tempfile.TemporaryDirectory() as folder:
        async with (
            _poller(
                url,
                strategy="describe",
                poll_interval=policy,
                state=os.path.join(folder, "census.db"),
            ) as poller,
            LagProbe(TICK) as probe,
        ):
            window = _Window(probe)
            await window.open()
            async for _ in poller.watch(names, consumer=CONSUMER):
                pass  # the consumer asks for the next event: the one before is committed
            return {"durable": await window.close()}


async def _fleet(url: str, names: list[str], redis_url: str) -> Figures:
    """Phase 5: attach in fleet mode, then the first round (every job is finished)."""
    options: dict[str, Any] = {"poll_interval": _ONE_HOUR, "redis_url": redis_url}
    async with _poller(url, strategy="describe", **options) as poller:
        return await _attach_and_first_round(poller, names, ["fleet", "fleet_round"])


def _pages(poller: Poller) -> int:
    return sum(poller.stats.list_requests.values())


async def _sweep(url: str, names: list[str], pages: int) -> Figures:
    """Phase 6: List pages read and applied, after the watched jobs' first round."""
    sweep = SweepPolicy(
        interval=1.0,
        overlap=3600.0,  # every window lists every job the mock holds
        safety_interval=3600.0,
        max_rate=None,
        max_window_pages=100_000,
    )
    async with (
        _poller(url, strategy="sweep", sweep=sweep, poll_interval=_ONE_HOUR) as poller,
        LagProbe(TICK) as probe,
        poller.watch(names) as events,
    ):
        for _ in names:
            await anext(events)  # the first round: every job's first event
        window = _Window(probe)
        await window.open()
        read = _pages(poller)
        while _pages(poller) - read < pages:
            await asyncio.sleep(0.05)
        return {"sweep": await window.close()}


class _ProbedLoops(asyncio.DefaultEventLoopPolicy):
    """An event-loop policy that starts ``probe`` in every loop it makes."""

    def __init__(self, probe: LagProbe) -> None:
        super().__init__()
        self.probe = probe

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.call_soon(self.probe.start)
        return loop


class _Terminal(io.TextIOBase):
    """A terminal that shows nothing: it notes the loop time of every write."""

    def __init__(self) -> None:
        self.writes: list[float] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.writes.append(time.monotonic())  # the loop's clock (asyncio: time.monotonic)
        return len(text)

    def isatty(self) -> bool:
        return True


def _cli(url: str, names_file: str, seconds: float) -> Figures:
    """Phase 7: ``asyncoptjob watch --output live`` for ``seconds``, probed on its loop."""
    from asyncoptjob.cli import main  # the cli extra: imported only where it is used

    probe = LagProbe(TICK)
    terminal = _Terminal()
    os.environ.update(TTY_COMPATIBLE="1", TTY_INTERACTIVE="1", COLUMNS="120", LINES="40")
    asyncio.set_event_loop_policy(_ProbedLoops(probe))
    argv = ["watch", "--from-file", names_file, "--endpoint-url", url, "--region", REGION]
    argv += ["--output", "live", "--timeout", f"{seconds:g}"]
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(terminal):
            main(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, 3):  # 3: --timeout ran out, as asked
            raise RuntimeError(f"asyncoptjob watch exited with {exit_.code}") from None
    finally:
        asyncio.set_event_loop_policy(None)
    wall = time.perf_counter() - started
    # A tick spans a render when the board was written out between its wake-up and the last.
    rendered = {bisect.bisect_left(probe.woke, at) for at in terminal.writes}
    ticks = [i for i in sorted(rendered) if 0 < i < len(probe.lags)]
    return {"cli": _figures(probe, wall), "cli_render": _figures(probe, wall, ticks)}


_PHASES: dict[str, Callable[..., Figures | Coroutine[Any, Any, Figures]]] = {
    "open": _open,
    "first_round": _subscribe_and_first_round,
    "gather": _gather_first_round,
    "durable": _durable,
    "fleet": _fleet,
    "sweep": _sweep,
    "cli": _cli,
    "idle": _idle,
}


def in_fresh_process(phase: str, args: dict[str, Any]) -> Figures:
    """Run one phase here, in a process of its own (``benchmarks.isolation``'s child)."""
    with _COLLECTIONS:
        result = _PHASES[phase](**args)
        return asyncio.run(result) if inspect.iscoroutine(result) else result


#: A full collection's length in a fresh process that has imported only ``argv[1]``:
#: the import's own garbage collected first, then five collections timed (the median).
_FLOOR = """
import gc, json, sys, time
gc.disable()
__import__(sys.argv[1])
gc.collect()
lengths = []
for _ in range(5):
    start = time.perf_counter()
    gc.collect()
    lengths.append(time.perf_counter() - start)
print(json.dumps({"full_gc_ms": 1000 * sorted(lengths)[2], "tracked": len(gc.get_objects())}))
"""

#: Whose full collections are measured alone: contender 4's client, and the library.
FLOOR_IMPORTS = {"aiobotocore_gather": "aiobotocore.session", "asyncoptjob": "asyncoptjob"}


def collection_floor(module: str) -> dict[str, float]:
    """How long one full garbage collection takes in a fresh process that has imported
    ``module`` and nothing else: the floor of any full collection in a process using it,
    whichever code sets the collection off."""
    child = subprocess.run(
        [sys.executable, "-c", _FLOOR, module],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    found: dict[str, float] = json.loads(child.stdout)
    return found


# -- the scenario -----------------------------------------------------------------------------

Samples = dict[tuple[str, str], list[dict[str, float]]]


def _note(samples: Samples, contender: str, found: Figures) -> None:
    for phase, figures in found.items():
        samples.setdefault((phase, contender), []).append(figures)


#: One phase to run: the contender, the phase, and its arguments (made just before it runs,
#: so that jobs seeded for it start their lifecycle then).
Call = tuple[str, str, Callable[[], dict[str, Any]]]


def _calls(
    sizes: Sizes, mock: MockServer, names: list[str], repeat: int, redis: str, listed: str
) -> list[Call]:
    mine, c4 = "asyncoptjob", "aiobotocore_gather"
    order = [mine, c4] if repeat % 2 == 0 else [c4, mine]
    return [
        *(
            (c, "open", lambda c=c: {"name": names[0], "contender": c, "redis_url": redis})
            for c in order
        ),
        *((c, "first_round" if c == mine else "gather", lambda: {"names": names}) for c in order),
        (mine, "first_round", lambda: {"names": names, "freeze": True}),
        (
            mine,
            "durable",
            lambda: {
                "names": mock.seed(
                    sizes.few, prefix=f"dur{repeat}", lifecycle=sizes.durable_lifecycle
                ),
                "interval": sizes.step_s,
            },
        ),
        (mine, "fleet", lambda: {"names": names[: sizes.few], "redis_url": redis}),
        (
            mine,
            "sweep",
            lambda: {
                "names": mock.seed(sizes.few, prefix=f"sweep{repeat}", lifecycle=_RUNNING),
                "pages": sizes.pages,
            },
        ),
        (mine, "cli", lambda: {"names_file": listed, "seconds": sizes.cli_s}),
        (IDLE, "idle", lambda: {"seconds": sizes.idle_s}),
    ]


def _repeat(
    ctx: RunContext, sizes: Sizes, mock: MockServer, names: list[str], repeat: int
) -> Samples:
    samples: Samples = {}
    with RedisServer() as redis, tempfile.NamedTemporaryFile("w", suffix=".txt") as listed:
        listed.write("\n".join(names) + "\n")
        listed.flush()
        calls = _calls(sizes, mock, names, repeat, redis.url, listed.name)
        # One phase at a time, so that no two share the machine; a quick run's numbers
        # mean nothing, so its phases run all at once.
        for batch in [calls] if ctx.quick else [[call] for call in calls]:
            results = run_side_by_side(
                [
                    (
                        f"{__name__}:in_fresh_process",
                        {"phase": phase, "args": {"url": mock.url, **args()}},
                    )
                    for _, phase, args in batch
                ]
            )
            for (contender, _, _), found in zip(batch, results, strict=True):
                _note(samples, contender, found)
                ctx.log(f"  repeat {repeat + 1}: {_brief(contender, found)}")
    for contender, module in FLOOR_IMPORTS.items():
        floor = collection_floor(module)
        samples.setdefault((GC_FLOOR, contender), []).append(floor)
        ctx.log(f"  repeat {repeat + 1}: a full collection, {module} imported: {floor}")
    return samples


def _brief(contender: str, found: Figures) -> str:
    return (
        ", ".join(f"{phase} {figures['worst_ms']:,.1f} ms" for phase, figures in found.items())
        + f" ({contender})"
    )


#: The census table's columns: key, label, format.
COLUMNS = (
    ("worst_ms", "worst lag ms", ",.1f"),
    ("p99_ms", "p99 lag ms", ",.1f"),
    ("ticks", "ticks", ",.0f"),
    ("wall_s", "phase s", ",.2f"),
    ("full_gcs", "full GCs", ",.0f"),
    ("longest_gc_ms", "longest full GC ms", ",.1f"),
    ("worst_no_gc_ms", "worst lag ms, ticks no full GC held", ",.1f"),
    ("worst_held_ms", "worst hold ms (loop CPU), ticks no full GC held", ",.1f"),
)


@scenario("s10", "S10 loop-lag census: the caller's loop, phase by phase")
def run(ctx: RunContext) -> ScenarioResult:
    sizes = QUICK if ctx.quick else FULL
    repeats = ctx.repeats_or(1)
    samples: Samples = {}
    with ctx.mock(seed=10) as mock:
        names = mock.seed(sizes.jobs, prefix="lag", lifecycle=_FINISHED)
        for repeat in range(repeats):
            for key, runs in _repeat(ctx, sizes, mock, names, repeat).items():
                samples.setdefault(key, []).extend(runs)
    titles = {c.key: c.title for c in CONTENDERS}
    rows: list[Row] = []
    targets: list[Target] = []
    for phase in _phases(sizes):
        label = f"{phase.label} ({titles[phase.contender]})"
        runs = samples[(phase.key, phase.contender)]
        values = medians(runs)
        rows.append(Row(phase.contender, label, dict(values), repeats=runs))
        if phase.key in NOT_APPLICABLE:
            c4 = "aiobotocore_gather"
            rows.append(Row(c4, f"{phase.label} ({titles[c4]})", na=NOT_APPLICABLE[phase.key]))
        if phase.contender == "asyncoptjob" and phase.target:
            targets.append(_target(phase, values, samples))
            targets.append(_own_target(phase, values))
    whole = [t for t in targets if not t.key.endswith("_no_gc")]
    met = sum(t.met for t in whole)
    own = [t for t in targets if t.key.endswith("_no_gc")]
    return ScenarioResult(
        key="s10",
        name="s10_loop_lag",
        title="S10 loop-lag census: the caller's loop, phase by phase",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        params={
            **asdict(sizes),
            "tick_ms": 1000 * TICK,
            "concurrency": CONCURRENCY,
        },
        tables=[
            Table(
                "census",
                "Loop lag per phase (a 1 ms ticker on the caller's loop)",
                [Column(*column) for column in COLUMNS],
                rows,
                "lag = how late a 1 ms ticker woke up (the longest stretch the loop was busy "
                "elsewhere); p99 is over ticks, so a phase that mostly waits has a low p99 "
                f"whatever its worst. {_floor(samples, sizes)}",
            )
        ],
        targets=targets,
        headline=[
            Headline(
                "S10 worst loop lag opening the first client, ms",
                _cells(samples, "open", "worst_ms"),
            ),
            Headline(
                f"S10 worst loop lag, first round of {sizes.jobs:,}, ms",
                _cells(samples, "first_round", "worst_ms"),
            ),
            Headline(f"S10 phases within {TARGET_MS:g} ms", {"asyncoptjob": f"{met}/{len(whole)}"}),
            Headline(
                f"S10 phases whose loop holds (CPU) stay within {TARGET_MS:g} ms, no full GC",
                {"asyncoptjob": f"{sum(t.met for t in own)}/{len(own)}"},
            ),
            Headline(
                "S10 one full GC in a fresh process, the client alone imported, ms",
                {
                    contender: fmt(medians(samples[(GC_FLOOR, contender)])["full_gc_ms"], ".1f")
                    for contender in FLOOR_IMPORTS
                },
            ),
        ],
        plots=[Plot("census", "worst_ms", "worst loop lag per phase, ms", log=True)],
        run={"repeats": repeats},
    )


def _floor(samples: Samples, sizes: Sizes) -> str:
    idle = medians(samples[("idle", IDLE)])
    c4, mine = (medians(samples[(GC_FLOOR, key)]) for key in FLOOR_IMPORTS)
    return (
        f"The machine's floor, the same ticker on an idle loop for {sizes.idle_s:g} s: "
        f"worst {idle['worst_ms']:.1f} ms, p99 {idle['p99_ms']:.1f} ms. "
        "One full garbage collection in a fresh process, nothing running: "
        f"{c4['full_gc_ms']:.1f} ms having imported only `aiobotocore.session` "
        f"({c4['tracked']:,.0f} tracked objects), {mine['full_gc_ms']:.1f} ms having "
        f"imported `asyncoptjob` ({mine['tracked']:,.0f}): the least any full collection "
        "holds a loop in a process with that client."
    )


def _cells(samples: Samples, phase: str, column: str) -> dict[str, str]:
    return {
        contender: fmt(medians(runs)[column], ",.0f")
        for (key, contender), runs in samples.items()
        if key == phase
    }


def _target(phase: Phase, values: Mapping[str, float], samples: Samples) -> Target:
    detail = f"p99 {values['p99_ms']:.1f} ms over {values['ticks']:,.0f} ticks"
    extra = {"fleet": "fleet_round", "cli": "cli_render"}.get(phase.key)
    if extra is not None:
        more = medians(samples[(extra, "asyncoptjob")])
        what = "first round" if extra == "fleet_round" else "render ticks"
        detail += f"; {what}: worst {more['worst_ms']:.1f} ms"
    c4 = samples.get((phase.key, "aiobotocore_gather"))
    if c4:
        detail += f"; contender 4: worst {medians(c4)['worst_ms']:,.1f} ms"
    detail += (
        f"; {values['full_gcs']:.0f} full GCs in the phase (longest "
        f"{values['longest_gc_ms']:.1f} ms), worst on ticks none held "
        f"{values['worst_no_gc_ms']:.1f} ms"
    )
    worst = values["worst_ms"]
    return Target(
        f"s10_{phase.key}",
        f"S10: worst loop lag <= {TARGET_MS:g} ms: {phase.label[3:]}",
        f"{worst:,.1f} ms",
        worst <= TARGET_MS,
        detail,
    )


def _own_target(phase: Phase, values: Mapping[str, float]) -> Target:
    """The same bound on the loop's own holds: ticks no full garbage collection held,
    each counted at most the CPU time the loop thread spent (not another process's)."""
    worst = values["worst_held_ms"]
    return Target(
        f"s10_{phase.key}_no_gc",
        f"S10: worst hold of the loop (its CPU) <= {TARGET_MS:g} ms, ticks no full GC "
        f"held: {phase.label[3:]}",
        f"{worst:,.1f} ms",
        worst <= TARGET_MS,
        f"wall lag on those ticks {values['worst_no_gc_ms']:.1f} ms; "
        f"{values['full_gcs']:.0f} full GCs in the phase, the longest "
        f"{values['longest_gc_ms']:.1f} ms (their length is the whole heap's)",
    )
