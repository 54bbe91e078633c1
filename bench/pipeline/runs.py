"""The pipeline phases, in order, on one running stack: warm-up; the throughput run with
one worker (records and CPU per notification); end-to-end latency at each fixed offered
load; the HTTP ingress under load while a backlog keeps the worker busy; the worker's
RSS after a large backlog; and the throughput run again with more workers."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from bench.pipeline.costs import measured_run, settle
from bench.pipeline.ingress import http_load, produce_backlog
from bench.pipeline.measure import BenchError, log, proc_status
from bench.pipeline.mix import set_provider_latency
from bench.pipeline.records import Request, build_requests
from bench.pipeline.stats import pipeline_stats
from bench.pipeline.tracking import Tracking, run_pipeline, wait_worker_idle
from pipeline.devstack.processes import LocalStack, stack_env
from pipeline.exceptions import HeraldError
from pipeline.kafka.codecs import AvroCodec
from pipeline.settings import PROJECT_ROOT, Settings

__all__ = ["measure_pipeline", "pipeline_env"]


def pipeline_env(home: Path, bootstrap: str, extra: dict[str, str]) -> dict[str, str]:
    """The stack's environment (plus `extra`), with this checkout first on PYTHONPATH so
    the children run the same code as the benchmark."""
    env = stack_env(home, bootstrap, extra)
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
    """The pipeline's phases into `res["pipeline"]`; a failure goes to `res["errors"]`, and
    what was measured before it stays. `pids` are the processes whose CPU is measured."""
    group = Settings.from_env(stack.env).app_id  # the worker's consumer group
    pipe = res["pipeline"]

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

    def throughput(label: str) -> dict[str, Any]:
        reqs = build_requests(codec, run, label, args.records, args.mix_weights)
        log(f"pipeline: {label}, {args.records} records as fast as possible")
        stats = pipeline_stats(follow(reqs, label))
        stats["worker_rss_mb"] = {
            k: proc_status(v).get("VmRSS") for k, v in pids.items() if k.startswith("worker")
        }
        return stats

    try:
        set_provider_latency(stack.sim, args.provider_latency_ms)
        if args.warmup:
            log(f"pipeline: warm-up, {args.warmup} records")
            follow(build_requests(codec, run, "warm", args.warmup, args.mix_weights), "warm-up")
        pipe["throughput"] = measured_run(
            bootstrap, group, pids, args.timeout, lambda: throughput("throughput")
        )
        pipe["loads"] = {}
        for rate in args.load_rates:
            n = max(1, int(rate * args.load_seconds))
            reqs = build_requests(codec, run, f"load{rate:g}", n, args.mix_weights)
            log(f"pipeline: offered load {rate:g}/s, {n} records")
            pipe["loads"][f"{rate:g}"] = pipeline_stats(follow(reqs, f"load {rate:g}/s", rate))
            settle(bootstrap, group, args.timeout)
        backlog = build_requests(codec, run, "backlog", args.backlog, args.mix_weights)
        if args.http_seconds > 0:
            busy = build_requests(codec, run, "busy", args.records // 2, args.mix_weights)
            log(f"http: {len(busy)} requests to Kafka first, so the worker is busy")
            produce_backlog(bootstrap, busy, args.timeout)
            pipe["http"] = {}
            for rate in (args.http_rate, 0.0):
                pipe["http"]["saturation" if not rate else f"{rate:g}/s"] = http_load(
                    stack.api,
                    stack.env["HERALD_JWT_SECRET"],
                    stack.env,
                    rate=rate,
                    duration=args.http_seconds,
                    connections=args.http_connections,
                )
                alive()
        log(f"pipeline: backlog of {len(backlog)} requests, then wait for the worker")
        t0 = time.monotonic()
        produce_backlog(bootstrap, backlog, args.timeout)
        wait_worker_idle(bootstrap, group, max(args.timeout, args.backlog / 50.0))
        pipe["backlog"] = {
            "records": len(backlog),
            "drained_s": time.monotonic() - t0,
            "worker_memory_after": proc_status(pids["worker"]),
        }
        if args.workers > 1:
            for i in range(2, args.workers + 1):
                log(f"pipeline: starting worker-{i}")
                t0 = time.monotonic()
                # It restores its share of the tables from their changelogs (a message's
                # state each, so after a large backlog that takes minutes) before /readyz.
                stack.start(f"worker-{i}", timeout=max(args.timeout, 90.0))
                pipe.setdefault("ready_s", {})[f"worker-{i}"] = time.monotonic() - t0
                pids[f"worker-{i}"] = stack.procs[f"worker-{i}"].pid
            follow(
                build_requests(codec, run, "warm2", min(args.warmup, 20) or 1, args.mix_weights),
                "warm-up (more workers)",
            )
            pipe["throughput_workers"] = measured_run(
                bootstrap,
                group,
                pids,
                args.timeout,
                lambda: throughput(f"throughput-{args.workers}-workers"),
            )
            pipe["throughput_workers"]["workers"] = args.workers
    except (BenchError, KafkaException, OSError, HeraldError, AssertionError) as exc:
        res["errors"].append(f"pipeline: {type(exc).__name__}: {exc}")
