"""What both benchmarks (`bench.pipeline`, `bench.kill`) share: progress on stderr, so
stdout carries only the report, and SIGTERM turned into KeyboardInterrupt, so a benchmark
that is killed still stops its broker and child processes in its `finally`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["sigterm_as_interrupt", "stderr_log"]


def stderr_log(name: str) -> Callable[[str], None]:
    """A progress log writing `[<name> HH:MM:SS] message` lines to stderr."""

    def log(msg: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        print(f"[{name} {stamp}] {msg}", file=sys.stderr, flush=True)

    return log


def sigterm_as_interrupt(_signum: int, _frame: Any) -> None:
    """SIGTERM handler: raise KeyboardInterrupt, which the benchmarks catch to clean up."""
    raise KeyboardInterrupt("SIGTERM")
