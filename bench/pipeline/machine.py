"""What the numbers were measured on: the machine, the versions, the load, and the
warnings in the children's logs. Absolute numbers mean little without them (see
bench/README.md, "Why ratios").
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from confluent_kafka import libversion as librdkafka_version

from bench.pipeline.measure import MB
from pipeline.settings import PROJECT_ROOT, Settings

__all__ = ["ANSI", "log_issues", "machine_info"]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x08")


def _run(cmd: list[str]) -> str:
    """A command's output, or "" when it is missing or hangs: a version is never worth a
    failed benchmark."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip()


def machine_info(settings: Settings) -> dict[str, Any]:
    """CPUs, memory, versions, the load average at start and the commit measured."""
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
