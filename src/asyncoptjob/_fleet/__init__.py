"""Fleet mode: many processes, one account's rate budget, each job polled once.

``Poller(redis_url="redis://host:6379/0")`` joins a fleet: every Poller with the same
Redis and ``redis_prefix`` shares one rate budget, polls each job from one process only,
and delivers every status change to every subscriber in every process. Without
``redis_url`` none of this is imported (redis-py is an optional extra, ``[redis]``).

Key layout (``P`` is ``redis_prefix``, default ``asyncoptjob``; several fleets can share
one Redis under different prefixes; the multi-key scripts assume a single Redis, not a
cluster):

====================  ======  ===========================================================
key                   type    holds / expiry
====================  ======  ===========================================================
``P:budget``          hash    the token bucket (``tokens``, ``ts``), the slow start
                              (``slow``, ``limited_at``; gone after the first throttle),
                              the shared CUBIC state (``w_max``, ``last_cut``,
                              ``cuts``) and the fleet's success rate (``win_start``,
                              ``win_ok``, ``measured``); expires 1 h after the last
                              request (the next request finds a cold fleet).
``P:budget:list``     hash    the same for ListOptimizationJobs (the sweeps' budget,
                              ``SweepPolicy.max_rate`` for the whole fleet).
``P:sweep``           string  the id of the process that sweeps for the fleet; ``PX`` three
                              sweep intervals, renewed by each of its sweeps.
``P:sweep:watermark``  string  where the fleet's sweeps got to: the newest watermark a
                              sweep lease holder reached (epoch seconds, its wall clock);
                              only moves forward (``ADVANCE``); expires 7 days after.
``P:sweep:oldest``    hash    per process, the oldest CreationTime of the jobs it watches
                              (``confirm="terminal"``): where the holder's re-lists start
                              (live members only count); its field goes when it leaves.
``P:load``            hash    leases held, per live process (written with the heartbeat):
                              the even share every process balances towards.
``P:lease:<job>``     string  the id (``host:pid:random``) of the process polling the job;
                              ``PX redis_lease_ttl``, renewed in batches every third of it.
``P:job:<job>``       hash    the job's last status ``s`` and description ``d`` (JSON,
                              datetimes tagged), and ``t``, when the fleet last described
                              it (Redis server time, seconds); expires 7 days after the
                              last change.
``P:error:<job>``     string  a job's definitive error (not found, invalid request) as JSON,
                              for processes that start watching it later; ``EX 3600``.
``P:events``          stream  one entry per status change: ``j`` job, ``s`` status,
                              ``p`` previous status, ``d`` description, ``o`` origin;
                              also the List entries a sweep found (``k=list``, ``e``: a
                              JSON page of up to 100 summaries; ``r=1`` from a re-list),
                              re-list markers (``k=relist``, ``p=begin`` or ``done``) and
                              final job errors (``k=error``, ``j``, ``e`` JSON); ``XADD ...
                              MAXLEN ~ 10000``.
``P:members``         zset    live processes, scored by heartbeat expiry (wall clock);
                              sizes each process's share if Redis goes away.
====================  ======  ===========================================================

The Lua scripts (``_scripts.py``), each atomic and timed by Redis's own ``TIME``:

* ``TAKE`` reserves up to *n* tokens from ``P:budget`` (a token bucket, capacity
  ``burst``, filled at ``min(max_rate, CUBIC rate)``) and adds the caller's successes to
  the fleet's measured rate. A process asks for one token per worker waiting (at most
  8) in one round trip. The bucket may go into debt: token *i* becomes usable when the
  bucket would have held *i* tokens, so a batch is spread out exactly like single
  requests and the fleet never exceeds ``max_rate * t + burst``; a reservation reaches
  at most 250 ms ahead, and a token unused 50 ms after it became usable is dropped.
  Without ``max_rate``, a cold fleet slow-starts like a single Poller: the rate starts at
  ``initial_rate`` and each success reported with a take grows it (it doubles every
  ``SLOW_START_DOUBLING`` seconds of answers) while the rate is what holds requests back
  (a take found the bucket short within that time); the constants come from
  ``_ratelimit`` as ``ARGV``, so the Lua and ``AdaptiveRateLimiter`` share them.
  ``initial_rate=None``: nothing limits until the first throttle.
* ``CUT`` is a throttle: unless the throttled request was sent before the last cut (one
  cut per congestion event), ``w_max`` becomes ``min(current rate, measured rate)`` and
  the CUBIC curve restarts (RFC 8312, C = 0.4, beta = 0.7): everyone slows down at once.
  The first throttle ends the slow start: ``w_max`` becomes ``FLEET_SLOW_START_EXIT`` times
  the slow-start rate (the measured rate lags a doubling ramp).
* ``ADVANCE`` moves ``P:sweep:watermark`` forward, never back (a holder that lost the
  lease without knowing it yet may still report an older one).
* ``CLAIM`` renews the caller's leases and takes free ones (``SET NX PX``), at most
  ``room`` of them (the rest it reports as left for others); ``RELEASE`` deletes the
  caller's own leases only. The sweep lease is claimed and released the same way.
* ``PUBLISH`` compare-and-sets ``P:job:<job>``: statuses only move forward (STARTING <
  INPROGRESS < STOPPING < terminal), and only a move forward is written and XADDed, so
  each change, above all the terminal one, is published exactly once fleet-wide, even
  when an old owner's stale answer lands after a lease hand-over. It sets ``t`` too.
* ``LOOK`` records describe answers that changed nothing (batched by the outbox task):
  ``t`` of each job becomes the server time of the answer, ``TIME - age``, where the age
  is the process's own measure of how long ago it got the answer.

Lease protocol: when a subscriber adds jobs, the process ``CLAIM``s them and reads their
``P:job`` hashes (a late subscriber's first event comes from there at once, a finished
job is finished without a single describe). Workers poll only jobs whose lease this
process holds. Every ``redis_lease_ttl / 3`` a renewal round heartbeats, releases the
leases of jobs gone from this process, re-``CLAIM``s every watched job (renewing its own,
taking over expired ones: a dead process's jobs move within one lease time), and re-reads
the statuses of jobs polled elsewhere (healing any gap in the stream). Processes that do
not poll a job get its changes from ``P:events`` (``XREAD BLOCK``) and deliver them to
their own subscribers; each subscriber still sees each status once, in order.

A lease handed over costs no describe: a process that gains a lease (claiming a new
job, balancing, taking over) reads the job's ``t`` with Redis's ``TIME`` and schedules
the job at ``last look + the poll interval its status calls for``, as the old holder
would have. A dead holder's job whose last look is older than that is due at once; a
job the fleet never described (no ``t``) too. A process hands a lease back only after
the looks it noted are written (``LOOK`` before ``RELEASE``), and balancing never hands
over a job with a describe under way (its answer would land after the new holder had
scheduled the job from the look before). A job is still described at once for its
first look, on a sweep hint (it changed), and in local mode (Redis away: the last looks
are out of reach).

Balance (``_leases.py``): a renewal takes free leases only up to an even share of the
leases the live processes hold; a process above it by 10% hands the surplus back. A
lease left free for one round and still free at the next is taken whatever the share:
nobody else watches that job.

Sweeps: only the holder of ``P:sweep`` makes List calls (within ``P:budget:list``); its
hub acts on what it lists, and it adds the List entries it found to ``P:events`` (each
job's status once): every other process hands the entries of the jobs it watches to its
hub, which acts on them as if it had listed them itself. With ``confirm="change"`` that
is a hint (the job's lease holder describes it); with ``confirm="terminal"`` a
non-terminal change is every replica's event at once, from List, with no describe
anywhere, and only a terminal one is described, by the job's lease holder alone (its
``PUBLISH`` reaches the others). The fleet's sweeps are one sweep: before each, the
holder reads ``P:sweep:watermark`` and goes on from it if another holder moved it (a
replica that takes the lease over lists from where the last holder got to, not from its
own start, which would miss what changed in between for other replicas' jobs); after
each complete window it moves the watermark forward.

Re-lists (``confirm="terminal"``'s safety net) are the holder's duty too: every
``safety_interval`` it re-reads the window ``CreationTimeAfter`` the oldest of
``P:sweep:oldest`` (each process writes its own on every renewal), between a begin and a
done marker on ``P:events``, sharing every entry it shows. Each process notes which of
its jobs the re-list showed and, at the done marker, queues the others for a describe,
which their lease holders make. A process that is not the holder never re-lists; its
jobs' own describes, three safety intervals apart, are the backstop if no re-list
reaches it.

A job given up with a ``JobErrorEvent`` by the process polling it is added as an error entry,
and every process watching it ends it the same.

Redis going away: the first failed call logs ``fleet_redis_unavailable`` and switches to
local mode: every process polls all the jobs it watches, within ``max_rate / live
processes``; statuses seen meanwhile are kept. The renewal loop reconnects, publishes
what was kept (terminal ones included, so nothing is lost), re-claims leases and
re-reads the fleet's statuses, then logs ``fleet_redis_reconnected``. A process that
never reached Redis does not know the fleet's size and takes a quarter of ``max_rate``.
"""

from __future__ import annotations

from ._budget import FleetRateLimiter
from ._coordinator import Fleet
from ._link import FleetLink
from ._store import FleetKeys

__all__ = ["Fleet", "FleetKeys", "FleetLink", "FleetRateLimiter"]
