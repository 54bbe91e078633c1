"""The memory soak: a steady load for minutes, the worker's RSS sampled against SENT.

    herald bench soak [--minutes 10 | --quick] [--rate 100] [--idle-seconds 15]
                      [--warmup 50] [--out DIR] [--keep]

Starts its own single-node broker on free ports in a temporary HERALD_HOME, the provider
simulator and one worker (as `herald bench` does, with the same machinery), then offers
email requests (SendGrid micro-batches) at a fixed `--rate` per second for `--minutes`
(`--quick`: 2), following each to SENT. Every few seconds it reads the worker's VmRSS from
/proc together with the number of messages SENT so far. Reports the RSS at the start of
the load, its peak, at the end, and after `--idle-seconds` with no load; and the slope in
KB per message by least squares over the samples after the first 20 % of the run (the
warm-up), so a leak shows as a slope and a plateau as about zero.

Writes `<out>/soak-<UTC timestamp>.json` and `<out>/soak-report.md`, prints the report;
exit code 1 when the run failed (the report says where).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import KafkaException

from bench.common import sigterm_as_interrupt
from bench.pipeline.cli import bench_settings
from bench.pipeline.machine import log_issues, machine_info
from bench.pipeline.measure import BenchError, cpu_seconds, log, proc_status, write_outputs
from bench.pipeline.mix import rate_limits
from bench.pipeline.records import build_requests
from bench.pipeline.runs import pipeline_env
from bench.pipeline.tracking import Tracking, run_pipeline, wait_worker_idle
from pipeline.devstack.processes import LocalStack
from pipeline.exceptions import HeraldError
from pipeline.kafka import admin, broker
from pipeline.kafka.catalog import Catalog
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.settings import PROJECT_ROOT, Settings

__all__ = [
    "QUICK_MINUTES",
    "WARMUP_FRACTION",
    "main",
    "memory_kb",
    "parse_args",
    "render",
    "slope",
]

QUICK_MINUTES = 2.0
WARMUP_FRACTION = 0.2  # the first 20 % of the run is warm-up: caches and buffers filling


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="herald bench soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--minutes", type=float, help="minutes of load (default 10; --quick 2)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_MINUTES:g} minutes of load")
    p.add_argument("--rate", type=float, default=100.0, help="requests/s offered (default 100)")
    p.add_argument("--idle-seconds", type=float, default=15.0, help="wait, then the idle RSS")
    p.add_argument("--warmup", type=int, default=50, help="requests sent before the start RSS")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds past the load to drain")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    p.add_argument("--keep", action="store_true", help="keep broker data and worker state")
    args = p.parse_args(argv)
    if args.minutes is None:
        args.minutes = QUICK_MINUTES if args.quick else 10.0
    if args.minutes <= 0 or args.rate <= 0 or args.idle_seconds < 0 or args.warmup < 0:
        p.error("--minutes and --rate must be positive, --idle-seconds and --warmup not negative")
    return args


def slope(
    samples: Sequence[dict[str, float]], warmup: float = WARMUP_FRACTION, key: str = "rss_kb"
) -> float | None:
    """KB of RSS (or of `key`) per message SENT: the least-squares slope of it over `sent`
    for the samples after the first `warmup` fraction of the run's time. None when fewer
    than two such samples or no messages were SENT between them (no slope to speak of)."""
    samples = [s for s in samples if key in s]
    if not samples:
        return None
    t0, t1 = samples[0]["t"], samples[-1]["t"]
    after = [s for s in samples if s["t"] >= t0 + warmup * (t1 - t0)]
    if len(after) < 2:
        return None
    n = len(after)
    mx = sum(s["sent"] for s in after) / n
    my = sum(s[key] for s in after) / n
    sxx = sum((s["sent"] - mx) ** 2 for s in after)
    if sxx == 0:
        return None
    return sum((s["sent"] - mx) * (s[key] - my) for s in after) / sxx


def _rss_kb(pid: int | None) -> float | None:
    mb = proc_status(pid).get("VmRSS")
    return None if mb is None else mb * 1000.0  # proc_status reports MB of 10^6 bytes


def memory_kb(worker_api: str) -> dict[str, float]:
    """Where the worker's memory is now, from its /metrics, in KB by part: the tables'
    RocksDB budget (`rocksdb_memtables_kb`, `rocksdb_cache_kb`), glibc malloc in use and
    held free (`malloc_in_use_kb`, `malloc_free_kb`), and the small Python objects alive
    (`python_blocks`, a count): what of the RSS is a budget, fragmentation, or a leak."""
    try:
        text = httpx.get(f"{worker_api}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    out = {}
    for metric, prefix in (
        ("herald_rocksdb_memory_bytes", "rocksdb"),
        ("herald_malloc_bytes", "malloc"),
    ):
        found = re.findall(rf'^{metric}\{{part="(\w+)"\}} (\S+)$', text, re.M)
        out.update({f"{prefix}_{part}_kb": float(value) / 1000 for part, value in found})
    blocks = re.search(r"^herald_python_allocated_blocks (\S+)$", text, re.M)
    if blocks:
        out["python_blocks"] = float(blocks.group(1))
    return out


def _kb(per_message: float | None) -> str:
    return "-" if per_message is None else f"{per_message:.3f} KB per message"


def _mb(kb: float | None) -> str:
    return "-" if kb is None else f"{kb / 1000:.0f} MB"


def render(res: dict[str, Any]) -> str:
    """The markdown report: settings, the RSS readings, the slope, and any errors."""
    a, r = res["args"], res.get("rss", {})
    k = res.get("slope_kb_per_message")
    lines = [
        f"# Soak: {res['timestamp']}",
        "",
        f"{a['rate']:g} email requests/s for {a['minutes']:g} min, one worker, "
        f"{res.get('sent', 0)} SENT of {res.get('offered', 0)} offered; "
        f"{res['machine'].get('nproc', '?')} CPUs, load {res['machine'].get('loadavg_start')}.",
        "",
        "| worker RSS | value |",
        "| --- | --- |",
        f"| at the start of the load | {_mb(r.get('start_kb'))} |",
        f"| peak during the load | {_mb(r.get('peak_kb'))} |",
        f"| at the end of the load | {_mb(r.get('end_kb'))} |",
        f"| idle, {a['idle_seconds']:g} s after | {_mb(r.get('idle_kb'))} |",
        f"| slope after the first {WARMUP_FRACTION:.0%} | {_kb(k)} |",
        f"| slope over the last half (the RocksDB cache full on long runs) | "
        f"{_kb(res.get('slope_last_half_kb_per_message'))} |",
        f"| slope of the RSS outside RocksDB's budget, after {WARMUP_FRACTION:.0%} / last half | "
        f"{_kb(res.get('slope_outside_rocksdb_kb_per_message'))} / "
        f"{_kb(res.get('slope_outside_rocksdb_last_half_kb_per_message'))} |",
        f"| of which RocksDB memtables / cache at the end | "
        f"{_mb(r.get('rocksdb_memtables_kb'))} / {_mb(r.get('rocksdb_cache_kb'))} |",
        f"| of which glibc malloc in use / held free at the end | "
        f"{_mb(r.get('malloc_in_use_kb'))} / {_mb(r.get('malloc_free_kb'))} |",
        f"| small Python objects alive at the end | {r.get('python_blocks', '-')} |",
        f"| simulator at the end | {_mb(r.get('simulator_end_kb'))} |",
        f"| worker CPU seconds per 1,000 SENT during the load | "
        f"{res.get('worker_cpu_s_per_1000', '-')} |",
        "",
        f"{len(res.get('samples', []))} samples; the JSON has each (seconds, SENT, RSS, "
        "RocksDB memtables and cache, malloc in use and free, Python objects).",
    ]
    if res["errors"]:
        lines += ["", "## Errors", "", *(f"- {e}" for e in res["errors"])]
    return "\n".join(lines) + "\n"


def _soak(res: dict[str, Any], stack: LocalStack, bootstrap: str, codec: AvroCodec,
          run: str, args: argparse.Namespace) -> None:  # fmt: skip
    """Warm-up, the load with samples, the drain and the idle reading, into `res`."""
    worker, sim = stack.procs["worker"].pid, stack.procs["simulator"].pid
    group = Settings.from_env(stack.env).app_id
    if args.warmup:
        log(f"soak: warm-up, {args.warmup} requests")
        warm = build_requests(codec, run, "warm", args.warmup)
        run_pipeline(bootstrap, codec, warm, rate=None, timeout=args.timeout, label="warm-up")
        wait_worker_idle(bootstrap, group, args.timeout)
    n = max(1, int(args.rate * args.minutes * 60))
    reqs = build_requests(codec, run, "soak", n)
    track, samples = Tracking(), res["samples"]
    start = time.monotonic()

    def sample() -> None:
        for name, proc in stack.procs.items():
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode}")
        rss = _rss_kb(worker)
        if rss is not None:
            sent = len(track.sent_receive_ms)
            parts = memory_kb(stack.api_of("worker"))
            if "rocksdb_cache_kb" in parts:  # the cache holds the memtables too: one budget
                parts["outside_rocksdb_kb"] = rss - parts["rocksdb_cache_kb"]
            samples.append({"t": round(time.monotonic() - start, 2), "sent": sent, "rss_kb": rss,
                            **parts})  # fmt: skip

    res["rss"]["start_kb"] = _rss_kb(worker)
    cpu_start = cpu_seconds(worker)
    sample()
    log(f"soak: {n} requests at {args.rate:g}/s, RSS sampled every 5 s")
    run_pipeline(bootstrap, codec, reqs, rate=args.rate, timeout=args.minutes * 60 + args.timeout,
                 label="soak", on_tick=sample, track=track)  # fmt: skip
    sample()
    res["sent"] = len(track.sent_receive_ms)
    res["dead_ends"] = len(track.dead_ends)
    cpu_end = cpu_seconds(worker)
    if cpu_start is not None and cpu_end is not None and res["sent"]:
        res["worker_cpu_s_per_1000"] = round((cpu_end - cpu_start) * 1000 / res["sent"], 2)
    res["rss"]["end_kb"] = samples[-1]["rss_kb"]
    res["rss"].update({k: v for k, v in samples[-1].items() if k not in ("t", "sent", "rss_kb")})
    res["rss"]["simulator_end_kb"] = _rss_kb(sim)
    wait_worker_idle(bootstrap, group, args.timeout)
    log(f"soak: idle for {args.idle_seconds:g} s")
    time.sleep(args.idle_seconds)
    res["rss"]["idle_kb"] = _rss_kb(worker)
    res["rss"]["worker_hwm_kb"] = (proc_status(worker).get("VmHWM") or 0) * 1000.0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run = uuid.uuid4().hex[:6]
    home = Path(tempfile.mkdtemp(prefix="herald-soak-"))
    settings = bench_settings(home)
    codec = AvroCodec(SchemaSet.from_dir(settings.schemas_dir))
    extra = {"HERALD_RATE_LIMITS": rate_limits("raised"), "HERALD_TENANT_RATE": "0"}
    res: dict[str, Any] = {
        "timestamp": stamp,
        "herald_home": str(home),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine_info(settings),
        "worker_env": extra,
        "offered": max(1, int(args.rate * args.minutes * 60)),
        "rss": {},
        "samples": [],
        "errors": [],
    }
    stack: LocalStack | None = None
    previous = signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    log(f"HERALD_HOME={home}, broker on 127.0.0.1:{settings.kafka_port}")
    try:
        bootstrap = broker.start(settings)
        reports = admin.apply(Catalog.load(settings.topics_file), bootstrap)
        if any(r.action == "mismatch" for r in reports):
            raise BenchError(f"topics apply reported mismatches: {reports}")
        stack = LocalStack(pipeline_env(home, bootstrap, extra), home)
        log("soak: starting the simulator and one worker")
        stack.start("simulator")
        stack.start("worker")
        _soak(res, stack, bootstrap, codec, run, args)
    except (BenchError, KafkaException, AssertionError, OSError, HeraldError) as exc:
        res["errors"].append(f"{type(exc).__name__}: {exc}")
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
    if res["samples"]:
        res["rss"]["peak_kb"] = max(s["rss_kb"] for s in res["samples"])
    res["slope_kb_per_message"] = slope(res["samples"])
    # The tables' block cache fills with what is read for a long while (about 100,000
    # messages at the defaults): a plateau shows as the slope of the last half.
    res["slope_last_half_kb_per_message"] = slope(res["samples"], warmup=0.5)
    # What grows outside that bounded budget (Python objects, malloc, buffers).
    for name, warmup in (("outside_rocksdb", WARMUP_FRACTION), ("outside_rocksdb_last_half", 0.5)):
        res[f"slope_{name}_kb_per_message"] = slope(res["samples"], warmup, "outside_rocksdb_kb")
    res["machine"]["loadavg_end"] = list(os.getloadavg())
    res["logs"] = {name: log_issues(home / f"{name}.log") for name in ("simulator", "worker")}
    res["wall_seconds"] = time.monotonic() - started
    write_outputs(args.out, f"soak-{stamp}.json", "soak-report.md", res, render(res))
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
