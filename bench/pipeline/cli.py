"""The command line: the options, and the phases in order on a broker of the benchmark's
own, which is stopped with the worker and the simulator in a `finally` (also on Ctrl-C,
SIGTERM or a failed phase), so a run never leaves anything behind."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka import libversion as librdkafka_version

from bench.common import sigterm_as_interrupt
from bench.pipeline.measure import MB, BenchError, log, proc_status
from bench.pipeline.raw import measure_raw
from bench.pipeline.records import build_requests
from bench.pipeline.runs import measure_pipeline, pipeline_env
from bench.pipeline.stats import ratios
from pipeline.devstack.processes import LocalStack as Stack
from pipeline.devstack.processes import free_port
from pipeline.kafka import admin, broker
from pipeline.kafka.catalog import Catalog
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.settings import PROJECT_ROOT, Settings

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x08")


# ----------------------------------------------------------------------------- machine


def _run(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip()


def machine_info(settings: Settings) -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_total_mb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem_total_mb = int(first.split()[1]) * 1024 / MB
    versions: dict[str, str | None] = {}
    for dist in ("faust-streaming", "aiokafka", "confluent-kafka", "fastavro", "aiohttp"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    java = _run(["java", "-version"]).splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "mem_total_mb": mem_total_mb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "kafka_version": settings.kafka_version,
        "kafka_heap": settings.kafka_heap,
        "java": java[0] if java else None,
        "librdkafka": librdkafka_version()[0],
        "packages": versions,
        "loadavg_start": list(os.getloadavg()),
        "git_commit": _run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"]) or None,
    }


def log_issues(path: Path, limit: int = 10) -> dict[str, Any]:
    """Error-ish lines of a child's log: counts and the first few."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {"lines": 0, "issues": 0, "examples": []}
    markers = ("ERROR", "Error", "Traceback", "CRITICAL", "WARNING", "warning", "[E]", "[W]")
    hits = [ANSI.sub("", line) for line in lines if any(m in line for m in markers)]
    return {"lines": len(lines), "issues": len(hits), "examples": [h[:300] for h in hits[:limit]]}


# ----------------------------------------------------------------------------- report


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _load(values: Sequence[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "n/a"


def render_report(res: dict[str, Any]) -> str:
    m = res.get("machine", {})
    pk = m.get("packages", {})
    raw = res.get("raw", {})
    pipe = res.get("pipeline", {})
    out = [
        f"# Herald pipeline benchmark, {res.get('timestamp')}",
        "",
        f"{m.get('nproc')} CPUs ({m.get('cpu_model')}), Python {m.get('python')}, "
        f"Kafka {m.get('kafka_version')} (one KRaft node on loopback, heap {m.get('kafka_heap')}), "
        f"faust-streaming {pk.get('faust-streaming')}, aiokafka {pk.get('aiokafka')}, "
        f"confluent-kafka {pk.get('confluent-kafka')} (librdkafka {m.get('librdkafka')}).",
        f"Load average (1/5/15 min) at start {_load(m.get('loadavg_start'))}, "
        f"at end {_load(m.get('loadavg_end'))}: other work on the machine skews absolute numbers.",
        f"Record: one Avro NotificationRequest, {res.get('record_bytes')} B value + "
        f"{res.get('key_bytes')} B key.",
        "",
        "## Raw Kafka (same broker, 6 partitions, linger 5 ms, acks=all)",
        "",
        "| measurement | records | seconds | records/s | MB/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, title in (
        ("confluent_produce", "confluent-kafka produce"),
        ("confluent_consume", "confluent-kafka consume (from beginning)"),
        ("aiokafka_produce", "aiokafka produce (send + gather)"),
    ):
        r = raw.get(name)
        if r:
            out.append(
                f"| {title} | {_fmt(r['records'])} | {_fmt(r['seconds'], 2)} | "
                f"{_fmt(r['records_per_s'])} | {_fmt(r['mb_per_s'], 1)} |"
            )
        else:
            out.append(f"| {title} | n/a | n/a | n/a | n/a |")
    out += [
        "",
        "## Pipeline (simulator + one worker; produce -> SENT status)",
        "",
        "| run | records | SENT | records/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, title in (
        ("throughput", "throughput (as fast as possible)"),
        ("latency", f"latency ({_fmt(res.get('latency_rate'))}/s)"),
    ):
        r = pipe.get(name)
        if not r:
            out.append(f"| {title} | n/a | n/a | n/a | n/a | n/a | n/a | n/a |")
            continue
        lat = r["latency_ms"]
        out.append(
            f"| {title} | {_fmt(r['records'])} | {_fmt(r['sent'])} | {_fmt(r['records_per_s'])} "
            f"| {_fmt(lat['p50'])} | {_fmt(lat['p95'])} | {_fmt(lat['p99'])} | {_fmt(lat['max'])} |"
        )
    hop_rows = []
    for name in ("throughput", "latency"):
        r = pipe.get(name)
        if r:
            for hop, s in r["hops_ms"].items():
                hop_rows.append(
                    f"| {name} | {hop} | {_fmt(s['p50'])} | {_fmt(s['p95'])} | {_fmt(s['p99'])} |"
                )
    if hop_rows:
        out += [
            "",
            "Per hop (status record timestamps):",
            "",
            "| run | hop | p50 ms | p95 ms | p99 ms |",
            "|---|---|---:|---:|---:|",
            *hop_rows,
        ]
    tp = pipe.get("throughput")
    if tp:
        out += [
            "",
            f"Throughput run timeline (s after the first produce): all produced "
            f"{_fmt(tp['produce_seconds'], 2)}, first SENT {_fmt(tp['first_sent_after_s'], 2)}, "
            f"all PENDING (ingest done) {_fmt(tp['all_pending_after_s'], 2)}, last SENT "
            f"{_fmt(tp['first_produce_to_last_sent_s'], 2)}; longest gap between SENT records "
            f"{_fmt(tp['longest_gap_between_sent_ms'])} ms. The worker then took "
            f"{_fmt(pipe.get('backlog_drain_s'), 1)} s more to commit its whole backlog "
            "(the latency run starts after that).",
        ]
    cpu = pipe.get("throughput_cpu")
    if cpu:
        out += [
            "",
            "CPU during the throughput run (CPU seconds / wall seconds; 1.0 = one core busy): "
            + ", ".join(f"{k} {_fmt(v.get('utilisation'), 2)}" for k, v in cpu.items()),
        ]
    rt = res.get("ratios", {})
    out += [
        "",
        "## Ratios (pipeline throughput / raw limit)",
        "",
        "| ratio | value |",
        "|---|---:|",
        f"| pipeline / confluent produce | {_fmt(rt.get('pipeline_over_raw_produce'), 4)} |",
        f"| pipeline / confluent consume | {_fmt(rt.get('pipeline_over_raw_consume'), 4)} |",
        f"| pipeline / aiokafka produce | {_fmt(rt.get('pipeline_over_aiokafka_produce'), 4)} |",
        "",
        "## Memory",
        "",
        "| process | peak RSS (VmHWM) MB | RSS at end MB |",
        "|---|---:|---:|",
    ]
    for name, mem in res.get("memory", {}).items():
        out.append(f"| {name} | {_fmt(mem.get('VmHWM'), 1)} | {_fmt(mem.get('VmRSS'), 1)} |")
    for name, info in (res.get("logs") or {}).items():
        if info.get("issues"):
            out += ["", f"{name}.log: {info['issues']} warning/error line(s), e.g.:", ""]
            out += [f"    {line.strip()}" for line in info["examples"][:5]]
    errors = res.get("errors") or []
    if errors:
        out += ["", "## Errors", "", *[f"- {e}" for e in errors]]
    out += ["", f"Total bench wall time: {_fmt(res.get('wall_seconds'), 1)} s.", ""]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description=sys.modules["bench.pipeline"].__doc__,  # the package docstring: the usage
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--records", type=int, default=5000, help="pipeline throughput run")
    p.add_argument("--raw-records", type=int, default=200_000, help="raw Kafka runs")
    p.add_argument("--latency-records", type=int, default=200)
    p.add_argument("--latency-rate", type=float, default=20.0, help="records/s")
    p.add_argument("--warmup", type=int, default=50, help="pipeline records before timing")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per phase")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep broker data and worker state (logs are always kept)",
    )
    return p.parse_args(argv)


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
        "latency_rate": args.latency_rate,
        "raw": {},
        "pipeline": {},
        "memory": {},
        "errors": [],
    }
    stack: Stack | None = None
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
        stack = Stack(pipeline_env(home, bootstrap), home)
        log("pipeline: starting the simulator and one worker")
        stack.start("simulator")
        stack.start("worker")
        pids = {
            "worker": stack.procs["worker"].pid,
            "simulator": stack.procs["simulator"].pid,
            "broker": broker.running_pid(settings),
        }
        measure_pipeline(res, stack, bootstrap, codec, run, pids, args)

        # 3. Memory, while everything still runs.
        res["memory"] = {
            "worker": proc_status(pids["worker"]),
            "simulator": proc_status(pids["simulator"]),
            "broker JVM": proc_status(pids["broker"]),
        }
    except (BenchError, KafkaException, AssertionError, OSError) as exc:
        res["errors"].append(f"setup: {type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        res["errors"].append("interrupted")
    finally:
        log("stopping the worker, the simulator and the broker")
        if stack is not None:
            stack.stop("worker")  # first, so it never calls a stopped simulator
            stack.stop_all()
        broker.stop(settings)
        signal.signal(signal.SIGTERM, previous)
        if not args.keep:
            shutil.rmtree(broker.paths(settings).data, ignore_errors=True)
            shutil.rmtree(home / "worker", ignore_errors=True)

    res["machine"]["loadavg_end"] = list(os.getloadavg())
    res["logs"] = {name: log_issues(home / f"{name}.log") for name in ("worker", "simulator")}
    res["ratios"] = ratios(res["pipeline"], res["raw"])
    res["wall_seconds"] = time.monotonic() - started
    report = render_report(res)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"pipeline-{stamp}.json"
    json_path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    (args.out / "report.md").write_text(report)
    print(report)
    log(f"wrote {json_path} and {args.out / 'report.md'}; logs in {home}")
    return 1 if res["errors"] else 0
