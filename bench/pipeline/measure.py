"""What every phase of the pipeline benchmark uses: the error a phase fails with, the
progress log, and the numbers it reports: percentiles, ratios, and a process's CPU time
and memory read from /proc, so the worker, the simulator and the broker JVM are measured
from outside without touching them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import stderr_log

__all__ = [
    "MB",
    "BenchError",
    "cpu_seconds",
    "log",
    "now_ms",
    "percentile",
    "proc_status",
    "ratio",
    "summary",
    "write_outputs",
]

MB = 1_000_000

log = stderr_log("bench")


class BenchError(Exception):
    """A phase failed or timed out; the message says which and why."""


def now_ms() -> float:
    """Wall-clock milliseconds, the unit and clock of Kafka record timestamps (the worker runs
    on the same machine, so produce times and status timestamps compare directly)."""
    return time.time() * 1000.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, q in [0, 100]; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50/p95/p99 and max: the tail matters as much as the median for latency."""
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing (a failed phase) or b is 0."""
    return a / b if a is not None and b else None


def proc_status(pid: int | None) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MB; empty when it is gone."""
    if pid is None:
        return {}
    out: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) * 1024 / MB  # kB
    return out


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (its threads included), in seconds."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_outputs(out: Path, json_name: str, report_name: str, res: Any, report: str) -> None:
    """Write a run's JSON and markdown report under `out`, print the report, say where."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / json_name
    json_path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    (out / report_name).write_text(report)
    print(report)
    log(f"wrote {json_path} and {out / report_name}; logs in {res['herald_home']}")
