"""The pipeline's part of `report.md`: the throughput runs with their costs, the offered
loads, the HTTP ingress and the backlog. Like `report`, it reads only the result dict and
shows a missing phase as n/a."""

from __future__ import annotations

from typing import Any

__all__ = ["fmt", "render_pipeline"]


_DOORS = {
    "ingress": "`herald ingress` in front of the worker",
    "inline": "the worker's own door, on its event loop",
}


def fmt(value: Any, digits: int = 0) -> str:
    """A number for a table: thousands separators, `digits` decimals, n/a for None."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _lat(s: dict[str, Any] | None) -> str:
    s = s or {}
    return " | ".join(fmt(s.get(q)) for q in ("p50", "p95", "p99", "max"))


def render_pipeline(res: dict[str, Any]) -> list[str]:
    """Markdown lines for every pipeline phase in `res["pipeline"]`."""
    pipe = res.get("pipeline", {})
    args = res.get("args", {})
    out = [
        "",
        f"## Pipeline (produce -> SENT status; mix {args.get('mix')}, provider latency "
        f"{args.get('provider_latency_ms')} ms, rate limits {args.get('rate_limits')})",
        "",
        "Latency is end to end, produce to the SENT status record; worker CPU and Kafka "
        "records are counted from the first produce until the worker is idle again.",
        "",
        "| run | workers | records | SENT | records/s | p50 ms | p95 ms | p99 ms | max ms "
        "| worker CPU s / 1,000 | Kafka records / notification | worker RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, workers in (("throughput", 1), ("throughput_workers", None)):
        r = pipe.get(name)
        if not r:
            continue
        c = r.get("costs", {})
        rss = "/".join(fmt(v, 0) for v in (r.get("worker_rss_mb") or {}).values()) or "n/a"
        out.append(
            f"| as fast as possible | {workers or r.get('workers')} | {fmt(r['records'])} "
            f"| {fmt(r['sent'])} | {fmt(r['records_per_s'])} | {_lat(r['latency_ms'])} "
            f"| {fmt(c.get('worker_cpu_s_per_1000'), 2)} "
            f"| {fmt(c.get('records_per_notification'), 1)} | {rss} |"
        )
    for rate, r in (pipe.get("loads") or {}).items():
        out.append(
            f"| offered {rate}/s | 1 | {fmt(r['records'])} | {fmt(r['sent'])} "
            f"| {fmt(r['records_per_s'])} | {_lat(r['latency_ms'])} | | | |"
        )
    tp = pipe.get("throughput")
    if tp:
        hops = tp.get("hops_ms", {})
        out += [
            "",
            "Per hop in the one-worker throughput run (status record timestamps):",
            "",
            "| hop | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [f"| {hop} | {_lat(s)} |" for hop, s in hops.items()]
        c = tp.get("costs", {})
        span = c.get("span_s") or 0
        out += [
            "",
            f"Timeline (s after the first produce): all produced {fmt(tp['produce_seconds'], 2)}, "
            f"first SENT {fmt(tp['first_sent_after_s'], 2)}, all PENDING "
            f"{fmt(tp['all_pending_after_s'], 2)}, last SENT "
            f"{fmt(tp['first_produce_to_last_sent_s'], 2)}; longest gap between SENT records "
            f"{fmt(tp['longest_gap_between_sent_ms'])} ms; idle (all committed) "
            f"{fmt(tp.get('drain_after_last_sent_s'), 1)} s after the last SENT.",
            "",
            "CPU from the first produce until the worker is idle (CPU s / wall s): "
            + ", ".join(
                f"{k} {fmt(v / span if span else None, 2)}"
                for k, v in (c.get("cpu_seconds") or {}).items()
            ),
            "",
            "Kafka records written per topic in that run: "
            + ", ".join(f"{t} {n:,}" for t, n in (c.get("records_by_topic") or {}).items()),
        ]
    http = pipe.get("http")
    if http:
        out += [
            "",
            "## HTTP ingress (POST /v1/notifications from another process, "
            f"to {_DOORS.get(args.get('door', 'inline'), '?')}, "
            "while a backlog keeps the worker busy)",
            "",
            "| load | requests | accepted req/s | p50 ms | p95 ms | p99 ms | max ms | statuses |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, r in http.items():
            label = f"{name} ({r.get('connections')} connections)"
            out.append(
                f"| {label} | {fmt(r.get('requests'))} | {fmt(r.get('accepted_per_s'))} "
                f"| {_lat(r.get('latency_ms'))} | {r.get('statuses')} |"
            )
    bl = pipe.get("backlog")
    if bl:
        mem = bl.get("worker_memory_after") or {}
        out += [
            "",
            f"Backlog: {fmt(bl['records'])} requests produced at once"
            f"{' (behind the HTTP requests)' if http else ''}, worker idle after "
            f"{fmt(bl['drained_s'], 1)} s; worker RSS then "
            f"{fmt(mem.get('VmRSS'), 1)} MB, peak so far {fmt(mem.get('VmHWM'), 1)} MB.",
        ]
    for name, seconds in (pipe.get("ready_s") or {}).items():
        out += ["", f"{name} joined the group and was ready (tables restored) after "
                    f"{fmt(seconds, 1)} s."]  # fmt: skip
    return out
