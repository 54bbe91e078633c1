"""The command line: the options, and the run of every phase in order with the broker,
the simulator and the worker stopped in a `finally`."""

from __future__ import annotations

import argparse
import contextlib
import itertools
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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from confluent_kafka import (
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka import libversion as librdkafka_version

from bench.common import sigterm_as_interrupt
from bench.pipeline.measure import (
    MB,
    BenchError,
    cpu_seconds,
    log,
    now_ms,
    proc_status,
    ratio,
    summary,
)
from bench.pipeline.raw import measure_raw
from bench.pipeline.records import LINGER_MS, TENANT, Request, build_requests, produce_one
from herald.topology import CHANNELS, LANES
from pipeline.devstack.processes import LocalStack as Stack
from pipeline.devstack.processes import free_port, stack_env
from pipeline.kafka import admin, broker
from pipeline.kafka.catalog import PREFERENCES, REQUESTS, STATUS, Catalog, dispatch_topic
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.settings import PROJECT_ROOT, Settings

# Statuses after which a message will never become SENT in this pipeline version.
DEAD_ENDS = {"FAILED", "DLQ", "BLOCKED", "CANCELLED", "BOUNCED"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x08")


# ----------------------------------------------------------------------------- pipeline


@dataclass
class Tracking:
    """What one pipeline run saw: produce times and status timestamps per messageId."""

    produced_ms: dict[str, float] = field(default_factory=dict)
    status_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    dead_ends: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    timestamp_types: Counter[str] = field(default_factory=Counter)
    sent_receive_ms: list[float] = field(default_factory=list)


def status_consumer(bootstrap: str) -> Consumer:
    """A consumer of every status partition, positioned at the current end offsets."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-status-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        }
    )
    parts = consumer.list_topics(STATUS, timeout=10).topics[STATUS].partitions
    assignment = []
    for p in parts:
        _low, high = consumer.get_watermark_offsets(TopicPartition(STATUS, p), timeout=10)
        assignment.append(TopicPartition(STATUS, p, high))
    consumer.assign(assignment)
    consumer.poll(0)
    return consumer


def wait_worker_idle(bootstrap: str, group: str, timeout: float) -> float:
    """Wait until the worker's consumer group has committed every record of its source
    topics (nothing queued inside the worker); returns the seconds it took."""
    topics = [REQUESTS, STATUS, PREFERENCES] + [
        dispatch_topic(c, lane) for c in CHANNELS for lane in LANES
    ]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})  # fmt: skip
    start = time.monotonic()
    try:  # never subscribes: it only reads the group's committed offsets
        md = consumer.list_topics(timeout=10).topics
        tps = [TopicPartition(t, p) for t in topics for p in md[t].partitions]
        while True:
            ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
            done = consumer.committed(tps, timeout=10)
            lag = sum(max(0, end - max(c.offset, 0)) for end, c in zip(ends, done, strict=True))
            if lag == 0:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise BenchError(f"the worker still lags {lag} records after {timeout:.0f}s")
            time.sleep(0.25)
    finally:
        consumer.close()


def run_pipeline(
    bootstrap: str,
    codec: AvroCodec,
    requests: Sequence[Request],
    *,
    rate: float | None,
    timeout: float,
    label: str,
    on_tick: Callable[[], None] | None = None,
) -> Tracking:
    """Produce `requests` (at `rate` per second, or as fast as possible) and follow them
    on the status topic until each is SENT or at a dead end."""
    track = Tracking()
    pending = {r.message_id for r in requests}
    track.status_ms = {r.message_id: {} for r in requests}
    consumer = status_consumer(bootstrap)  # before the first produce
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": LINGER_MS, "acks": "all"})
    try:
        producer.list_topics(REQUESTS, timeout=10)
        interval = 1.0 / rate if rate else 0.0
        start = time.monotonic()
        deadline = start + timeout
        next_report = start + 5.0
        sent = i = 0
        flushed = False
        while pending:
            mono = time.monotonic()
            if mono > deadline:
                raise BenchError(
                    f"{label}: {len(pending)} of {len(requests)} not SENT after {timeout:.0f}s "
                    f"(produced {i}, statuses seen {dict(track.counts)})"
                )
            if mono > next_report:
                log(
                    f"{label}: produced {i}/{len(requests)}, SENT {sent}, "
                    f"dead ends {len(track.dead_ends)}"
                )
                next_report = mono + 5.0
                if on_tick is not None:
                    on_tick()
            if i < len(requests):
                wait = start + i * interval - mono
                if wait <= 0:
                    req = requests[i]
                    track.produced_ms[req.message_id] = now_ms()
                    produce_one(producer, REQUESTS, req.key, req.value, deadline)
                    producer.poll(0)
                    i += 1
                    continue
                poll_for = min(wait, 0.05)
            else:
                if not flushed:
                    left = producer.flush(max(1.0, deadline - time.monotonic()))
                    if left:
                        raise BenchError(f"{label}: {left} requests not delivered to {REQUESTS}")
                    flushed = True
                poll_for = 0.2
            for msg in consumer.consume(num_messages=1000, timeout=poll_for):
                if msg.error():
                    continue
                status = codec.decode("NotificationStatus", msg.value())
                mid = status["messageId"]
                if status["tenant"] != TENANT or mid not in track.status_ms:
                    continue
                ts_type, ts = msg.timestamp()
                track.timestamp_types[
                    "LogAppendTime" if ts_type == TIMESTAMP_LOG_APPEND_TIME else "CreateTime"
                ] += 1
                name = status["status"]
                track.counts[name] += 1
                track.status_ms[mid].setdefault(name, float(ts))
                if name == "SENT" and mid in pending:
                    pending.discard(mid)
                    sent += 1
                    track.sent_receive_ms.append(now_ms())
                elif name in DEAD_ENDS and mid in pending:
                    pending.discard(mid)
                    track.dead_ends[mid] = f"{name}: {status.get('error')}"
        if not flushed:
            producer.flush(10)
    finally:
        consumer.close()
    return track


def pipeline_stats(track: Tracking) -> dict[str, Any]:
    produced, statuses = track.produced_ms, track.status_ms
    sent = {m: s["SENT"] for m, s in statuses.items() if "SENT" in s}
    e2e = [sent[m] - produced[m] for m in sent]

    def hop(a: str, b: str) -> list[float]:
        out = []
        for m, s in statuses.items():
            start = produced[m] if a == "produce" else s.get(a)
            if start is not None and b in s:
                out.append(s[b] - start)
        return out

    first_produce = min(produced.values())
    last_produce = max(produced.values())
    last_sent = max(sent.values()) if sent else None
    wall_s = (last_sent - first_produce) / 1000.0 if last_sent is not None else None
    sent_ts = sorted(sent.values())
    gaps = [b - a for a, b in itertools.pairwise(sent_ts)]
    return {
        "records": len(produced),
        "sent": len(sent),
        "dead_ends": len(track.dead_ends),
        "dead_end_examples": dict(list(track.dead_ends.items())[:5]),
        "status_counts": dict(track.counts),
        "status_timestamp_types": dict(track.timestamp_types),
        "produce_seconds": (last_produce - first_produce) / 1000.0,
        "produce_records_per_s": (
            len(produced) / ((last_produce - first_produce) / 1000.0)
            if last_produce > first_produce
            else None
        ),
        "first_produce_to_last_sent_s": wall_s,
        "first_sent_after_s": (min(sent.values()) - first_produce) / 1000.0 if sent else None,
        "all_pending_after_s": (
            (max(pend) - first_produce) / 1000.0
            if (pend := [s["PENDING"] for s in statuses.values() if "PENDING" in s])
            else None
        ),
        "records_per_s": len(sent) / wall_s if wall_s else None,
        "latency_ms": summary(e2e),
        "hops_ms": {
            "ingest (produce -> PENDING)": summary(hop("produce", "PENDING")),
            "dispatch (PENDING -> PROCESSING)": summary(hop("PENDING", "PROCESSING")),
            "provider (PROCESSING -> SENT)": summary(hop("PROCESSING", "SENT")),
        },
        "longest_gap_between_sent_ms": max(gaps) if gaps else None,
    }


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


# ----------------------------------------------------------------------------- main


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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run = uuid.uuid4().hex[:6]
    home = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    ports = [free_port(), free_port()]
    while 9092 in ports or 9093 in ports or ports[0] == ports[1]:
        ports = [free_port(), free_port()]
    settings = Settings.from_env(
        {},
        home=home,
        kafka_port=ports[0],
        kafka_controller_port=ports[1],
        kafka_dist=PROJECT_ROOT / ".herald" / f"kafka-{Settings().kafka_version}",
    )
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
        env = stack_env(home, bootstrap)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        group = Settings.from_env(env).app_id  # the worker's consumer group
        stack = Stack(env, home)
        log("pipeline: starting the simulator and one worker")
        stack.start("simulator")
        stack.start("worker")
        worker_pid = stack.procs["worker"].pid
        sim_pid = stack.procs["simulator"].pid
        broker_pid = broker.running_pid(settings)

        def alive() -> None:
            assert stack is not None
            for name, proc in stack.procs.items():
                if proc.poll() is not None:
                    raise BenchError(f"{name} exited with {proc.returncode}; see {home}/{name}.log")

        try:
            if args.warmup:
                log(f"pipeline: warm-up, {args.warmup} records")
                warm = build_requests(codec, run, "warm", args.warmup)
                run_pipeline(
                    bootstrap,
                    codec,
                    warm,
                    rate=None,
                    timeout=args.timeout,
                    label="warm-up",
                    on_tick=alive,
                )
            wait_worker_idle(bootstrap, group, args.timeout)
            reqs = build_requests(codec, run, "tput", args.records)
            log(f"pipeline: throughput run, {args.records} records as fast as possible")
            pids = {"worker": worker_pid, "simulator": sim_pid, "broker": broker_pid}
            cpu_before = {k: cpu_seconds(v) for k, v in pids.items()}
            t0 = time.monotonic()
            track = run_pipeline(
                bootstrap,
                codec,
                reqs,
                rate=None,
                timeout=args.timeout,
                label="throughput",
                on_tick=alive,
            )
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
            track = run_pipeline(
                bootstrap,
                codec,
                lat,
                rate=args.latency_rate,
                timeout=args.timeout,
                label="latency",
                on_tick=alive,
            )
            res["pipeline"]["latency"] = pipeline_stats(track)
        except (BenchError, KafkaException) as exc:
            res["errors"].append(f"pipeline: {exc}")

        # 3. Memory, while everything still runs.
        res["memory"] = {
            "worker": proc_status(worker_pid),
            "simulator": proc_status(sim_pid),
            "broker JVM": proc_status(broker_pid),
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
    tput = (res["pipeline"].get("throughput") or {}).get("records_per_s")
    raw = res["raw"]
    res["ratios"] = {
        "pipeline_over_raw_produce": ratio(
            tput, (raw.get("confluent_produce") or {}).get("records_per_s")
        ),
        "pipeline_over_raw_consume": ratio(
            tput, (raw.get("confluent_consume") or {}).get("records_per_s")
        ),
        "pipeline_over_aiokafka_produce": ratio(
            tput, (raw.get("aiokafka_produce") or {}).get("records_per_s")
        ),
    }
    res["wall_seconds"] = time.monotonic() - started
    report = render_report(res)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"pipeline-{stamp}.json"
    json_path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    (args.out / "report.md").write_text(report)
    print(report)
    log(f"wrote {json_path} and {args.out / 'report.md'}; logs in {home}")
    return 1 if res["errors"] else 0
