"""The command line: the options, and the phases in order on a broker of the benchmark's
own, which is stopped with the worker and the simulator in a `finally` (also on Ctrl-C,
SIGTERM or a failed phase), so a run never leaves anything behind."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from bench.common import sigterm_as_interrupt
from bench.pipeline.machine import log_issues, machine_info
from bench.pipeline.measure import BenchError, log, proc_status, write_outputs
from bench.pipeline.mix import parse_mix, rate_limits
from bench.pipeline.raw import measure_raw
from bench.pipeline.records import build_requests
from bench.pipeline.report import render_report
from bench.pipeline.runs import measure_pipeline, pipeline_env
from bench.pipeline.stats import ratios
from pipeline.devstack.processes import LocalStack as Stack
from pipeline.devstack.processes import free_port
from pipeline.kafka import admin, broker
from pipeline.kafka.catalog import Catalog
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.settings import PROJECT_ROOT, Settings

__all__ = ["DEFAULTS", "bench_settings", "main", "parse_args"]

# (option, full run, --quick): --quick must finish in under 3 minutes on 2 cores.
DEFAULTS = (
    ("records", 5000, 600),
    ("raw_records", 200_000, 30_000),
    ("loads", "200,1000", "50,200"),
    ("load_seconds", 10.0, 2.0),
    ("http_seconds", 10.0, 2.0),
    ("backlog", 100_000, 500),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description=sys.modules["bench.pipeline"].__doc__,  # the package docstring: the usage
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small counts: under 3 minutes")
    p.add_argument("--records", type=int, help="throughput runs (default 5000; quick 600)")
    p.add_argument("--raw-records", type=int, help="raw Kafka runs (200000; quick 30000)")
    p.add_argument("--mix", default="email=100", help="channel weights: email=70,sms=15,...")
    p.add_argument("--provider-latency-ms", type=int, default=0, help="simulator latencyMs")
    p.add_argument("--rate-limits", default="raised", help="raised | default | provider=rate,...")
    p.add_argument("--loads", help="offered loads, records/s (200,1000; quick 50,200)")
    p.add_argument("--load-seconds", type=float, help="seconds per offered load (10; quick 2)")
    p.add_argument("--http-rate", type=float, default=1000.0, help="HTTP req/s offered")
    p.add_argument("--http-seconds", type=float, help="seconds per HTTP run (10; quick 2; 0: none)")
    p.add_argument("--http-connections", type=int, default=50)
    p.add_argument(
        "--door",
        choices=("ingress", "inline"),
        default="ingress",
        help="where POST goes: `herald ingress` in front of the worker, or the worker's own",
    )
    p.add_argument("--backlog", type=int, help="backlog for the RSS reading (100000; quick 500)")
    p.add_argument("--workers", type=int, default=2, help="the last throughput run's workers")
    p.add_argument("--warmup", type=int, default=50, help="pipeline records before timing")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per phase")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep broker data and worker state (logs are always kept)",
    )
    args = p.parse_args(argv)
    for name, full, quick in DEFAULTS:
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    try:
        args.mix_weights = parse_mix(args.mix)
        args.load_rates = [float(x) for x in str(args.loads).split(",") if x.strip()]
    except (BenchError, ValueError) as exc:
        p.error(str(exc))
    return args


def bench_settings(home: Path) -> Settings:
    """Settings for a broker of the benchmark's own in `home`, on two free loopback ports
    that are never Kafka's usual 9092/9093 (a developer's broker may want them back)."""
    ports = [free_port(), free_port()]
    while 9092 in ports or 9093 in ports or ports[0] == ports[1]:
        ports = [free_port(), free_port()]
    return Settings.from_env(
        {},
        home=home,
        kafka_port=ports[0],
        kafka_controller_port=ports[1],
        kafka_dist=PROJECT_ROOT / ".herald" / f"kafka-{Settings().kafka_version}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run = uuid.uuid4().hex[:6]
    home = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    settings = bench_settings(home)
    codec = AvroCodec(SchemaSet.from_dir(settings.schemas_dir))
    sample = build_requests(codec, run, "raw", 1)[0]
    res: dict[str, Any] = {
        "timestamp": stamp,
        "herald_home": str(home),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine_info(settings),
        "record_bytes": len(sample.value),
        "key_bytes": len(sample.key),
        "raw": {},
        "pipeline": {},
        "memory": {},
        "errors": [],
    }
    stack: Stack | None = None
    pids: dict[str, int | None] = {}
    previous = signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    log(f"HERALD_HOME={home}, broker on 127.0.0.1:{settings.kafka_port}")
    try:
        bootstrap = broker.start(settings)
        reports = admin.apply(Catalog.load(settings.topics_file), bootstrap)
        if any(r.action == "mismatch" for r in reports):
            raise BenchError(f"topics apply reported mismatches: {reports}")

        # 1. Raw Kafka, before the worker runs, so nothing else competes for the CPUs.
        measure_raw(res, bootstrap, run, sample.value, args)

        # 2. The pipeline.
        # The tenant quota off: the HTTP runs measure the door, not the quota's 429s.
        extra = {"HERALD_RATE_LIMITS": rate_limits(args.rate_limits), "HERALD_TENANT_RATE": "0"}
        res["worker_env"] = dict(extra)
        if args.door == "ingress":  # the public port is the ingress's, the worker's behind it
            extra["HERALD_WORKER_HTTP_PORT"] = str(free_port())
        stack = Stack(pipeline_env(home, bootstrap, extra), home)
        log(f"pipeline: starting the simulator, one worker and the {args.door} door")
        stack.start("simulator")
        stack.start("worker")
        if args.door == "ingress":
            stack.start("ingress")
        pids |= {name: proc.pid for name, proc in stack.procs.items()}
        pids["broker"] = broker.running_pid(settings)
        measure_pipeline(res, stack, bootstrap, codec, run, pids, args)
    except (BenchError, KafkaException, AssertionError, OSError) as exc:
        res["errors"].append(f"setup: {type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        res["errors"].append("interrupted")
    finally:
        # 3. Memory, while everything still runs (also after a failed or interrupted phase).
        res["memory"] = {
            ("broker JVM" if name == "broker" else name): proc_status(pid)
            for name, pid in pids.items()
        }
        log("stopping the worker, the simulator and the broker")
        if stack is not None:
            stack.stop("worker")  # first, so it never calls a stopped simulator
            stack.stop_all()
        broker.stop(settings)
        signal.signal(signal.SIGTERM, previous)
        if not args.keep:
            shutil.rmtree(broker.paths(settings).data, ignore_errors=True)
            for name in ("worker", *(f"worker-{i}" for i in range(2, args.workers + 1))):
                shutil.rmtree(home / name, ignore_errors=True)

    res["machine"]["loadavg_end"] = list(os.getloadavg())
    res["logs"] = {
        name: log_issues(home / f"{name}.log")
        for name in (
            "simulator",
            "ingress",
            "worker",
            *(f"worker-{i}" for i in range(2, args.workers + 1)),
        )
    }
    res["ratios"] = ratios(res["pipeline"], res["raw"])
    res["wall_seconds"] = time.monotonic() - started
    write_outputs(args.out, f"pipeline-{stamp}.json", "report.md", res, render_report(res))
    return 1 if res["errors"] else 0
