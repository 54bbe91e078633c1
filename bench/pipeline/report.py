"""The markdown report: the JSON result's numbers as tables, in the order the benchmark
measures them. It reads only the result dict, so a missing or failed phase
shows as n/a instead of breaking the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.pipeline.report_runs import fmt as _fmt
from bench.pipeline.report_runs import render_pipeline

__all__ = ["render_report"]


def _load(values: Sequence[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "n/a"


def render_report(res: dict[str, Any]) -> str:
    """`report.md`: machine line, raw Kafka, pipeline runs and hops, ratios, memory, errors."""
    m = res.get("machine", {})
    pk = m.get("packages", {})
    raw = res.get("raw", {})
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
    out += render_pipeline(res)
    rt = res.get("ratios", {})
    pipe_workers = (res.get("pipeline", {}).get("throughput_workers") or {}).get("workers")
    out += [
        "",
        "## Ratios (pipeline throughput / raw limit)",
        "",
        "| ratio | value |",
        "|---|---:|",
        f"| pipeline / confluent produce | {_fmt(rt.get('pipeline_over_raw_produce'), 4)} |",
        f"| pipeline / confluent consume | {_fmt(rt.get('pipeline_over_raw_consume'), 4)} |",
        f"| pipeline / aiokafka produce | {_fmt(rt.get('pipeline_over_aiokafka_produce'), 4)} |",
        f"| pipeline, {_fmt(pipe_workers)} workers / confluent produce | "
        f"{_fmt(rt.get('pipeline_workers_over_raw_produce'), 4)} |",
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
