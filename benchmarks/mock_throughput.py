"""Measure how many DescribeOptimizationJob requests/s the mock endpoint serves.

The mock runs in its own process (``python -m asyncoptjob.mock``, one event
loop, so one core); raw aiohttp clients (no botocore, keep-alive) hammer it
with Describe calls for seeded jobs, from one or more client processes so the
client is not what is measured. Prints the served requests per second.

    .venv/bin/python benchmarks/mock_throughput.py --jobs 100000 --concurrency 64 --duration 10

Options: ``--client-processes`` (default 1; more only with spare cores),
``--mock-cpu`` to pin the mock to one CPU (Linux), ``--json`` for one
machine-readable line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
import urllib.request
from typing import Any

import aiohttp

HEADERS_BASE = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "SageMaker.DescribeOptimizationJob",
    # The mock accepts any signature; it only insists that one is present.
    "Authorization": "AWS4-HMAC-SHA256 "
    "Credential=testing/20240101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host;x-amz-date;x-amz-target, Signature=0",
    "X-Amz-Date": "20240101T000000Z",
}


async def _client(
    url: str, names: list[str], concurrency: int, duration: float, warmup: float, seed: int
) -> dict[str, int]:
    rng = random.Random(seed)
    bodies = [json.dumps({"OptimizationJobName": name}).encode() for name in names]
    counts = {"ok": 0, "other": 0}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + warmup
        end = start + duration

        async def worker() -> None:
            while (now := loop.time()) < end:
                body = bodies[rng.randrange(len(bodies))]
                async with session.post(url, data=body, headers=HEADERS_BASE) as response:
                    await response.read()
                    if now >= start:
                        counts["ok" if response.status == 200 else "other"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


def _client_process(args: tuple[str, list[str], int, float, float, int]) -> dict[str, int]:
    return asyncio.run(_client(*args))


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process *pid* (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of proc(5); index 11/12 after the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _control(url: str, route: str) -> Any:
    with urllib.request.urlopen(f"{url}/_mock/{route}", timeout=60) as response:
        return json.load(response)


def total_served(stats: dict[str, Any]) -> int:
    """Describe requests the mock answered 200, warmup included."""
    served: int = stats["counters"].get("DescribeOptimizationJob", {}).get("ok", 0)
    return served


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=100_000, help="seeded jobs")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight in total")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument(
        "--client-processes", type=int, default=1, help="use 2+ only with spare cores"
    )
    parser.add_argument("--mock-cpu", type=int, default=None, help="pin the mock to this CPU")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)

    mock = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asyncoptjob.mock",
            "--port",
            "0",
            "--seed",
            "1",
            "--seed-jobs",
            str(args.jobs),
            "--request-log-size",
            "100000",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert mock.stdout is not None
        url = mock.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit(f"the mock did not start (first line: {url!r})")
        if args.mock_cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(mock.pid, {args.mock_cpu})
        names = [f"job-{i:05d}" for i in range(args.jobs)]
        processes = max(1, args.client_processes)
        per_process = max(1, args.concurrency // processes)
        work = [
            (url, names, per_process, args.duration, args.warmup, seed) for seed in range(processes)
        ]
        cpu_before = _cpu_seconds(mock.pid)
        started = time.perf_counter()
        if processes == 1:
            results = [_client_process(work[0])]
        else:
            with multiprocessing.get_context("spawn").Pool(processes) as pool:
                results = pool.map(_client_process, work)
        elapsed = time.perf_counter() - started
        cpu_after = _cpu_seconds(mock.pid)
        ok = sum(r["ok"] for r in results)
        other = sum(r["other"] for r in results)
        stats = _control(url, "stats")
    finally:
        mock.terminate()
        mock.wait(timeout=10)
    rate = ok / args.duration
    # Served per CPU-second of the mock: its one-core capacity, even on a busy machine.
    # (The CPU window also covers the warmup, so this slightly understates it.)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    per_cpu = None if not cpu else round(total_served(stats) / cpu, 1)
    summary = {
        "describe_per_s": round(rate, 1),
        "ok": ok,
        "non_200": other,
        "jobs": args.jobs,
        "concurrency": per_process * processes,
        "client_processes": processes,
        "duration_s": args.duration,
        "wall_s": round(elapsed, 2),
        "mock_counted_ok": total_served(stats),
        "mock_cpu_s": None if cpu is None else round(cpu, 2),
        "describe_per_mock_cpu_s": per_cpu,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{rate:,.0f} Describe req/s served ({ok:,} in {args.duration:g} s, {other} non-200, "
            f"{args.jobs:,} jobs, {per_process * processes} concurrent, "
            f"{processes} client process(es))"
        )
        if per_cpu is not None:
            print(f"{per_cpu:,.0f} Describe req per CPU-second of the mock process")
    return 0 if other == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
