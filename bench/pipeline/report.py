"""The markdown report: the JSON result's numbers as tables, in the order the benchmark
measures them. It reads only the result dict, so a missing or failed phase
shows as n/a instead of breaking the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["render_report"]


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _load(values: Sequence[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "n/a"


def render_report(res: dict[str, Any]) -> str:
    """`report.md`: machine line, raw Kafka, pipeline runs and hops, ratios, memory, errors."""
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
