"""The options ``Poller``, ``watch`` and ``wait_until_done`` share, validated in one place."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from . import _breath
from ._clock import Clock, MonotonicClock
from ._policy import PollPolicy
from ._ratelimit import DEFAULT_INITIAL_RATE
from ._retry import DEFAULT_FIRST_ANSWER_TIMEOUT, RetryPolicy
from ._sweep import STRATEGIES, Strategy, SweepPolicy
from ._validate import check_positive, check_positive_int

if TYPE_CHECKING:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession
    from opentelemetry.metrics import MeterProvider
    from types_aiobotocore_sagemaker import SageMakerClient

    from ._ratelimit import RateBudget
    from ._transport import Transport

__all__ = ["Options", "PollerOptions", "resolve_options"]

DEFAULT_MAX_CONCURRENCY = 16
DEFAULT_NOT_FOUND_GRACE = 60.0
DEFAULT_REDIS_PREFIX = "asyncoptjob"
DEFAULT_REDIS_LEASE_TTL = 15.0


class PollerOptions(TypedDict, total=False):
    """Keyword options accepted by ``Poller``, ``watch`` and ``wait_until_done`` alike.

    How to reach AWS (give one of ``client`` / ``transport``, or let the library create
    and close a client from the rest):

    - ``client``: a caller-owned aiobotocore SageMaker client; never closed by the library.
      Give it ``max_pool_connections`` of at least ``max_concurrency + 1``, so a sweep's
      List call never waits behind busy describes.
    - ``session``: an aiobotocore ``AioSession`` to create the client from.
    - ``region_name``, ``endpoint_url``, ``config``: passed to ``create_client``; the
      library always turns botocore's own retries off and sizes the connection pool to
      ``max_concurrency`` + 1 (describes, and one List call of a sweep).
    - ``transport``: any object with the :class:`~asyncoptjob.Transport` methods
      (for fakes in unit tests, such as :class:`asyncoptjob.testing.FakeTransport`, or
      another SDK).
    - ``clock``: the time source of scheduling, rate limiting, retries and timeouts
      (default :class:`~asyncoptjob.MonotonicClock`); unit tests pass
      :class:`asyncoptjob.testing.ManualClock` to run without waiting.

    How politely to poll:

    - ``max_concurrency`` (16): describes on the wire at once (a sweep adds one List).
    - ``max_rate`` (None): hard ceiling in requests/s; None leaves only the adaptive rate.
    - ``initial_rate`` (5/s): without ``max_rate``, the adaptive rate starts here, sends
      at least one request per round trip once one is answered and doubles every 12
      round trips of accepted requests (at most every 0.3 s) until the first throttle,
      then climbs
      from a guess under that to a second throttle, which measures the account's limit
      (a slow start: no burst of throttles while it learns the limit; in fleet mode one
      slow start for the whole fleet); None sends freely until the first throttle, like
      botocore's adaptive mode.
    - ``rate_budget`` (None): a :class:`~asyncoptjob.RateBudget` of your own in place of
      the default :class:`~asyncoptjob.AdaptiveRateLimiter` (for example one limiter
      shared by two Pollers of the same account and Region, or a custom strategy);
      excludes ``max_rate``, ``initial_rate`` (they configure the default) and
      ``redis_url`` (a fleet's budget is the fleet's).
    - ``poll_interval`` (20 s): seconds between polls of a job, or a ``PollPolicy``.
    - ``not_found_grace`` (60 s): how long ResourceNotFound is retried for a job
      (a describe right after create can answer it) before it counts.
    - ``timeout`` (None): hard deadline in seconds for each watch/wait.
    - ``first_answer_timeout`` (30 s): an endpoint that has never answered (connection
      refused, a host name that does not resolve) fails every watch after this long
      with a :class:`~asyncoptjob.TransportError` naming it; None retries it as an
      outage. An endpoint that has answered once keeps the full ``retry`` budget.
    - ``retry``: a ``RetryPolicy`` for throttled and transient failures.
    - ``strategy`` (``"auto"``): ``"describe"`` polls each job with its own describe;
      ``"sweep"`` asks ListOptimizationJobs which jobs changed (100 per call) and
      describes only those; ``"auto"`` sweeps once enough jobs are watched.
    - ``sweep``: a ``SweepPolicy`` (sweep interval, safety-net describe interval,
      List rate budget, the ``auto`` threshold).
    - ``loop_burst`` (0.003 s): the longest the library's steps run back to back on the
      event loop before its next step lets what else is due run first (a breath: the
      host's timers and I/O); with several Pollers open on one loop, the least of theirs
      counts. None takes no breaths, for a script whose loop runs nothing but the
      library: more describes per second when the CPU is the bottleneck (S1's cold run
      in ``benchmarks/RESULTS.md``), and the loop held for as long as the answers in
      hand take.
    - ``meter_provider`` (None): the OpenTelemetry ``MeterProvider`` the metrics report
      to; None uses the global one (``opentelemetry.metrics.set_meter_provider``).

    Fleet mode (several processes sharing one account's quota; needs ``[redis]``):

    - ``redis_url`` (None): e.g. ``"redis://localhost:6379/0"``. Every Poller with the
      same Redis and prefix shares ``max_rate`` as one budget, polls each job from one
      process and delivers each status change to every subscriber of the fleet.
    - ``redis_prefix`` (``"asyncoptjob"``): the fleet's key prefix (one Redis, many fleets).
    - ``redis_lease_ttl`` (15 s): how long a job's poller lease lasts; a dead process's
      jobs are taken over within about this time. Durable consumers' cursors live in
      Redis too.

    Durable watches:

    - ``state`` (None): the path of a SQLite file (created if missing) that keeps each
      consumer's cursors (``consumer=`` of ``watch``), the learned rate and the sweep
      watermark across restarts. One process holds it at a time; in fleet mode the
      cursors live in Redis instead, so ``state`` and ``redis_url`` exclude each other.
    """

    client: SageMakerClient
    session: AioSession
    region_name: str
    endpoint_url: str
    config: AioConfig
    transport: Transport
    clock: Clock
    max_concurrency: int
    max_rate: float | None
    initial_rate: float | None
    rate_budget: RateBudget
    poll_interval: float | PollPolicy
    not_found_grace: float
    timeout: float | None
    first_answer_timeout: float | None
    retry: RetryPolicy
    strategy: Strategy
    sweep: SweepPolicy
    meter_provider: MeterProvider | None
    redis_url: str | None
    redis_prefix: str
    redis_lease_ttl: float
    state: str | os.PathLike[str] | None
    loop_burst: float | None


@dataclass(frozen=True, slots=True)
class Options:
    """Validated options; the connection settings are kept as given."""

    client: Any
    session: Any
    region_name: str | None
    endpoint_url: str | None
    config: Any
    transport: Any
    clock: Clock
    max_concurrency: int
    max_rate: float | None
    policy: PollPolicy
    not_found_grace: float
    timeout: float | None
    retry: RetryPolicy
    strategy: Strategy
    sweep: SweepPolicy
    redis_url: str | None = None
    redis_prefix: str = DEFAULT_REDIS_PREFIX
    redis_lease_ttl: float = DEFAULT_REDIS_LEASE_TTL
    state: str | None = None
    meter_provider: Any = None
    first_answer_timeout: float | None = DEFAULT_FIRST_ANSWER_TIMEOUT
    initial_rate: float | None = DEFAULT_INITIAL_RATE
    rate_budget: Any = None
    loop_burst: float | None = _breath.BURST

    def __repr__(self) -> str:
        # Never show client/session objects: their reprs can carry credentials.
        return (
            f"Options(region_name={self.region_name!r}, endpoint_url={self.endpoint_url!r}, "
            f"max_concurrency={self.max_concurrency}, max_rate={self.max_rate}, "
            f"policy={self.policy!r}, not_found_grace={self.not_found_grace}, "
            f"timeout={self.timeout}, strategy={self.strategy!r}"
            + (f", state={self.state!r}" if self.state else "")
            # The URL can carry a password: only say whether fleet mode is on.
            + (f", fleet={self.redis_prefix!r})" if self.redis_url else ")")
        )


_KNOWN = frozenset(PollerOptions.__annotations__)


def resolve_options(options: dict[str, Any]) -> Options:
    """Validate ``options`` and fill in defaults.

    Raises:
        TypeError: an unknown option name.
        ValueError: an option value out of range (the message names the option).
    """
    unknown = sorted(set(options) - _KNOWN)
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)}; valid options are {', '.join(sorted(_KNOWN))}"
        )
    max_concurrency = options.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
    check_positive_int("max_concurrency", max_concurrency)
    max_rate = options.get("max_rate")
    check_positive("max_rate", max_rate, allow_none=True)
    initial_rate = options.get("initial_rate", DEFAULT_INITIAL_RATE)
    check_positive("initial_rate", initial_rate, allow_none=True)
    poll_interval = options.get("poll_interval")
    if poll_interval is None:
        policy = PollPolicy()
    elif isinstance(poll_interval, PollPolicy):
        policy = poll_interval
    else:
        check_positive("poll_interval", poll_interval)
        policy = PollPolicy.from_interval(float(poll_interval))
    grace = options.get("not_found_grace", DEFAULT_NOT_FOUND_GRACE)
    if (
        isinstance(grace, bool)
        or not isinstance(grace, (int, float))
        or grace < 0
        or math.isnan(grace)
    ):
        raise ValueError(f"not_found_grace must be a number of seconds >= 0, got {grace!r}")
    timeout = options.get("timeout")
    check_positive("timeout", timeout, allow_none=True)
    first_answer_timeout = options.get("first_answer_timeout", DEFAULT_FIRST_ANSWER_TIMEOUT)
    check_positive("first_answer_timeout", first_answer_timeout, allow_none=True)
    retry = options.get("retry") or RetryPolicy()
    if not isinstance(retry, RetryPolicy):
        raise ValueError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
    strategy = options.get("strategy", "auto")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    sweep = options.get("sweep") or SweepPolicy()
    if not isinstance(sweep, SweepPolicy):
        raise ValueError(f"sweep must be a SweepPolicy, got {type(sweep).__name__}")
    redis_url = options.get("redis_url")
    if redis_url is not None and (not isinstance(redis_url, str) or "://" not in redis_url):
        raise ValueError(
            f"redis_url must be a URL like 'redis://localhost:6379/0', got {redis_url!r}"
        )
    redis_prefix = options.get("redis_prefix", DEFAULT_REDIS_PREFIX)
    if (
        not isinstance(redis_prefix, str)
        or not redis_prefix
        or any(c.isspace() for c in redis_prefix)
    ):
        raise ValueError(
            f"redis_prefix must be a non-empty string without spaces, got {redis_prefix!r}"
        )
    lease_ttl = options.get("redis_lease_ttl", DEFAULT_REDIS_LEASE_TTL)
    check_positive("redis_lease_ttl", lease_ttl)
    state = options.get("state")
    if state is not None:
        if not isinstance(state, (str, os.PathLike)) or not os.fspath(state):
            raise ValueError(f"state must be the path of a SQLite file, got {state!r}")
        if redis_url is not None:
            raise ValueError(
                "give state= or redis_url=, not both: in fleet mode the cursors live in Redis"
            )
    rate_budget = _check_rate_budget(options)
    loop_burst = options.get("loop_burst", _breath.BURST)
    if "loop_burst" in options:
        check_positive("loop_burst", loop_burst, allow_none=True)
    client = options.get("client")
    transport = options.get("transport")
    if client is not None and transport is not None:
        raise ValueError("give client= or transport=, not both")
    clock = options.get("clock") or MonotonicClock()
    if not (callable(getattr(clock, "now", None)) and callable(getattr(clock, "sleep", None))):
        raise ValueError(
            f"clock must have now() and async sleep(seconds), like MonotonicClock; got {clock!r}"
        )
    meter_provider = options.get("meter_provider")
    if meter_provider is not None and not callable(getattr(meter_provider, "get_meter", None)):
        raise ValueError(
            "meter_provider must be an OpenTelemetry MeterProvider (with get_meter()), "
            f"got {meter_provider!r}"
        )
    return Options(
        client=client,
        session=options.get("session"),
        region_name=options.get("region_name"),
        endpoint_url=options.get("endpoint_url"),
        config=options.get("config"),
        transport=transport,
        clock=clock,
        max_concurrency=max_concurrency,
        max_rate=None if max_rate is None else float(max_rate),
        policy=policy,
        not_found_grace=float(grace),
        timeout=None if timeout is None else float(timeout),
        retry=retry,
        strategy=strategy,
        sweep=sweep,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        redis_lease_ttl=float(lease_ttl),
        state=None if state is None else str(os.fspath(state)),
        meter_provider=meter_provider,
        first_answer_timeout=None if first_answer_timeout is None else float(first_answer_timeout),
        initial_rate=None if initial_rate is None else float(initial_rate),
        rate_budget=rate_budget,
        loop_burst=None if loop_burst is None else float(loop_burst),
    )


_BUDGET_METHODS = ("acquire", "on_success", "on_throttle", "statistics")


def _check_rate_budget(options: dict[str, Any]) -> Any:
    """The ``rate_budget`` option, checked: a RateBudget, and nothing that contradicts it."""
    budget = options.get("rate_budget")
    if budget is None:
        return None
    missing = [name for name in _BUDGET_METHODS if not callable(getattr(budget, name, None))]
    if missing or not hasattr(budget, "rate"):
        raise ValueError(
            "rate_budget must be a RateBudget (rate, acquire(), on_success(), on_throttle(), "
            f"statistics()), like AdaptiveRateLimiter; got {budget!r}"
        )
    clashes = [name for name in ("max_rate", "initial_rate", "redis_url") if name in options]
    if clashes:
        raise ValueError(
            f"give rate_budget= or {', '.join(clashes)}=, not both: "
            "max_rate and initial_rate configure the default budget, and a fleet's is shared"
        )
    return budget


def split_timeout(options: dict[str, Any], timeout: float | None) -> float | None:
    """The per-call timeout: the call's own if given, else the options' default."""
    if timeout is not None:
        check_positive("timeout", timeout)
        return float(timeout)
    default = options.get("timeout")
    return None if default is None else float(default)
