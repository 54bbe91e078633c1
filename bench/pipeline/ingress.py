"""HTTP ingress under load while the pipeline is busy: a backlog of requests is produced
straight to Kafka (so the worker's stream processing is saturated), then the load
generator (`bench.pipeline.httpload`, a process of its own) POSTs at a fixed offered
rate and then at saturation against the stack's public door: `herald ingress` (the
default, `--door ingress`: a process of its own that validates and produces), or the
worker's own HTTP port, which shares its event loop with the agents (`--door inline`).
The worker is then left to drain before the next phase.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from confluent_kafka import Producer

from bench.pipeline.measure import BenchError, log
from bench.pipeline.records import LINGER_MS, Request, produce_one
from pipeline.http.auth import issue_token
from pipeline.kafka.catalog import REQUESTS

__all__ = ["http_load", "produce_backlog"]


def produce_backlog(bootstrap: str, requests: list[Request], timeout: float) -> None:
    """Produce `requests` as fast as possible, not followed: load for the worker."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": LINGER_MS, "acks": "all"})
    deadline = time.monotonic() + timeout
    for req in requests:
        produce_one(producer, REQUESTS, req.key, req.value, deadline)
        producer.poll(0)
    if producer.flush(timeout):
        raise BenchError("the backlog was not all acknowledged")


def http_load(
    api: str,
    jwt_secret: str,
    env: dict[str, str],
    *,
    rate: float,
    duration: float,
    connections: int,
) -> dict[str, Any]:
    """One load-generator run (see `bench.pipeline.httpload`); its JSON result."""
    token = issue_token(jwt_secret, "bench", "notifications:send", ttl_s=3600)
    cmd = [
        sys.executable,
        "-m",
        "bench.pipeline.httpload",
        f"{api}/v1/notifications",
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--connections",
        str(connections),
    ]
    log(
        f"http: {'saturation' if not rate else f'{rate:g} req/s'} for {duration:g}s, "
        f"{connections} connections"
    )
    child_env = dict(env, HERALD_BENCH_TOKEN=token)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (env.get("PYTHONPATH", ""), os.getcwd()) if p
    )
    try:
        done = subprocess.run(
            cmd, env=child_env, capture_output=True, text=True, timeout=duration + 60
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the HTTP load generator hung: {exc}") from exc
    if done.returncode != 0:
        raise BenchError(f"the HTTP load generator failed: {done.stderr[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
