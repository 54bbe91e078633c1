"""`python -m bench.pipeline.httpload`: the HTTP load generator, run as a process of its
own so its CPU is not the worker's nor the benchmark's. It POSTs valid email requests to
`/v1/notifications` either at a fixed offered rate (`--rate`, open loop: each request
starts at its scheduled time whether or not earlier ones have answered, so a slow server
shows as latency, not as a lower rate) or as fast as `--connections` keep-alive
connections allow (`--rate 0`, closed loop: saturation). Prints one JSON object: counts by
status, accepted (202) per second, and latency p50/p95/p99 from each request's scheduled
start (open loop) or its send (closed loop) to its answer. The bearer token comes in
HERALD_BENCH_TOKEN, never on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp

from bench.pipeline.measure import summary
from bench.pipeline.records import DATA, TEMPLATE

__all__ = ["main", "run_load"]


def _body(run: str, i: int) -> bytes:
    user = f"h-{run}-{i:07d}"
    doc = {
        "recipient": {"userId": user, "email": f"{user}@example.com"},
        "template": TEMPLATE,
        "data": DATA,
        "channels": ["email"],
    }
    return json.dumps(doc).encode()


async def run_load(
    url: str, token: str, *, rate: float, duration: float, connections: int
) -> dict[str, Any]:
    """Drive `url` for `duration` seconds; see the module docstring for the two modes."""
    run = uuid.uuid4().hex[:6]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int, start: float) -> None:
            try:
                async with session.post(url, data=_body(run, i), headers=headers) as resp:
                    await resp.read()
                    statuses[str(resp.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1
                return
            latencies.append((time.perf_counter() - start) * 1000.0)

        t0 = time.perf_counter()
        end = t0 + duration
        if rate > 0:  # open loop: request i starts at t0 + i / rate
            tasks = []
            i = 0
            while (due := t0 + i / rate) < end:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i, due)))
                i += 1
            await asyncio.gather(*tasks)
        else:  # closed loop: each connection sends again as soon as it has its answer
            counter = iter(range(10**9))

            async def loop() -> None:
                while time.perf_counter() < end:
                    await one(next(counter), time.perf_counter())

            await asyncio.gather(*(loop() for _ in range(connections)))
        wall = time.perf_counter() - t0
    accepted = statuses.get("202", 0)
    return {
        "offered_per_s": rate or None,
        "connections": connections,
        "seconds": wall,
        "requests": sum(statuses.values()),
        "statuses": dict(statuses),
        "accepted_per_s": accepted / wall if wall else None,
        "latency_ms": summary(latencies),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline.httpload", description=__doc__)
    p.add_argument("url")
    p.add_argument("--rate", type=float, default=1000.0, help="req/s offered; 0: saturation")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=50)
    args = p.parse_args(argv)
    token = os.environ.get("HERALD_BENCH_TOKEN", "")
    result = asyncio.run(
        run_load(
            args.url, token, rate=args.rate, duration=args.duration, connections=args.connections
        )
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
