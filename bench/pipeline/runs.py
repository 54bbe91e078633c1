"""The pipeline phase: a warm-up, the throughput run with the CPU it cost, the backlog
drain, and the paced latency run, against one simulator and one worker started as the
integration tests start them (`pipeline.devstack.processes`), so the benchmark measures
the code that ships, run the way it runs.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from bench.pipeline.measure import BenchError, cpu_seconds, log
from bench.pipeline.records import Request, build_requests
from bench.pipeline.stats import pipeline_stats
from bench.pipeline.tracking import Tracking, run_pipeline, wait_worker_idle
from pipeline.devstack.processes import LocalStack, stack_env
from pipeline.kafka.codecs import AvroCodec
from pipeline.settings import PROJECT_ROOT, Settings

__all__ = ["measure_pipeline", "pipeline_env"]


def pipeline_env(home: Path, bootstrap: str) -> dict[str, str]:
    """The stack's environment, with this checkout first on PYTHONPATH so the children
    run the same code as the benchmark."""
    env = stack_env(home, bootstrap)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    return env


def measure_pipeline(
    res: dict[str, Any],
    stack: LocalStack,
    bootstrap: str,
    codec: AvroCodec,
    run: str,
    pids: dict[str, int | None],
    args: argparse.Namespace,
) -> None:
    """The pipeline's runs into `res["pipeline"]`; a failure goes to `res["errors"]`, and
    what was measured before it stays. `pids` are the processes whose CPU is measured."""
    group = Settings.from_env(stack.env).app_id  # the worker's consumer group

    def alive() -> None:
        for name, proc in stack.procs.items():
            if proc.poll() is not None:
                raise BenchError(
                    f"{name} exited with {proc.returncode}; see {stack.home}/{name}.log"
                )

    def follow(requests: list[Request], label: str, rate: float | None = None) -> Tracking:
        return run_pipeline(
            bootstrap, codec, requests, rate=rate, timeout=args.timeout, label=label, on_tick=alive
        )

    try:
        if args.warmup:
            log(f"pipeline: warm-up, {args.warmup} records")
            warm = build_requests(codec, run, "warm", args.warmup)
            follow(warm, "warm-up")
        wait_worker_idle(bootstrap, group, args.timeout)
        reqs = build_requests(codec, run, "tput", args.records)
        log(f"pipeline: throughput run, {args.records} records as fast as possible")
        cpu_before = {k: cpu_seconds(v) for k, v in pids.items()}
        t0 = time.monotonic()
        track = follow(reqs, "throughput")
        wall = time.monotonic() - t0
        cpu_after = {k: cpu_seconds(v) for k, v in pids.items()}
        res["pipeline"]["throughput"] = pipeline_stats(track)
        res["pipeline"]["throughput_cpu"] = {
            k: {
                "cpu_seconds": cpu_after[k] - b,  # type: ignore[operator]
                "wall_seconds": wall,
                "utilisation": (cpu_after[k] - b) / wall,  # type: ignore[operator]
            }
            for k, b in cpu_before.items()
            if b is not None and cpu_after[k] is not None
        }
        log("pipeline: waiting for the worker to drain its backlog (status, commits)")
        res["pipeline"]["backlog_drain_s"] = wait_worker_idle(bootstrap, group, args.timeout)
        lat = build_requests(codec, run, "lat", args.latency_records)
        log(f"pipeline: latency run, {args.latency_records} records at {args.latency_rate:g}/s")
        track = follow(lat, "latency", rate=args.latency_rate)
        res["pipeline"]["latency"] = pipeline_stats(track)
    except (BenchError, KafkaException) as exc:
        res["errors"].append(f"pipeline: {exc}")
