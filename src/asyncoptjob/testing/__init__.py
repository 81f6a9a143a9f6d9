"""A testing kit: run code built on asyncoptjob without AWS, without HTTP, without waiting.

* :class:`FakeTransport` answers the library's calls with a function of yours (the
  spirit of httpx's ``MockTransport``); :func:`describe_response` builds an answer
  shaped like AWS's, and :class:`ScriptedJobs` is a ready-made handler for jobs whose
  statuses change at set times.
* :class:`ManualClock` is virtual time: pass it as ``clock=`` and poll intervals,
  backoffs, rate waits and timeouts only pass when the test calls ``advance`` (or
  ``jump``), or, with ``autojump=True``, whenever every task is waiting.
* :func:`check_events`, :class:`EventOrder` and :func:`check_against_truth` check the
  library's event guarantees (order, one terminal outcome, agreement with an
  endpoint's true transitions): the same checks the project's own suite and soak run
  use. A broken guarantee raises :class:`InvariantError`.
* :class:`RedisServer` starts a throwaway loopback ``redis-server`` for fleet-mode tests.

For tests over real HTTP, use the mock SageMaker endpoint in :mod:`asyncoptjob.mock`.

Example::

    import anyio
    from asyncoptjob import Poller
    from asyncoptjob.testing import FakeTransport, ManualClock, ScriptedJobs

    async def test_my_deployer_sees_the_job_finish() -> None:
        clock = ManualClock()
        jobs = ScriptedJobs(clock, {"job-a": [(0, "INPROGRESS"), (300, "COMPLETED")]})
        async with Poller(transport=FakeTransport(jobs), clock=clock, poll_interval=60) as poller:
            async with poller.watch("job-a") as events:
                assert (await anext(events)).status == "INPROGRESS"
                await clock.advance(400)  # five polls in no time
                assert (await anext(events)).status == "COMPLETED"
"""

from ._checks import EventOrder, InvariantError, check_against_truth, check_events, check_truth
from ._clock import ManualClock
from ._redis import RedisServer
from ._transport import FakeRequest, FakeTransport, Handler, ScriptedJobs, describe_response

__all__ = [
    # a transport answered by a function
    "FakeTransport",
    "FakeRequest",
    "Handler",
    "describe_response",
    "ScriptedJobs",
    # virtual time
    "ManualClock",
    # the event guarantees, checked
    "check_events",
    "EventOrder",
    "check_truth",
    "check_against_truth",
    "InvariantError",
    # fleet mode
    "RedisServer",
]
