"""The worker's native heap: glibc's arenas capped and trimmed, and their figures.

After RocksDB got one memory budget (issue 10) a worker's RSS still grew by about
0.1 KB per message for hundreds of thousands of messages. glibc gives every thread
that allocates an arena of its own (up to eight per core): RocksDB's flush and
compaction threads, aiokafka's consumer thread and the event loop each allocate in
theirs, and what one frees stays in its arena, resident, until that arena happens to
be reused or trimmed. `GlibcHeap` caps the number of arenas (`mallopt(M_ARENA_MAX)`,
the same as `MALLOC_ARENA_MAX`, set before the worker starts its threads) and gives
the free pages back (`malloc_trim`) from a timer; `figures()` reads `mallinfo2()` so
/metrics shows what is in use and what is held free, which tells a leak (in use
grows) from fragmentation (free grows).

Only glibc has these calls; on any other C library `GlibcHeap.load()` is None and the
worker runs with its allocator's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from dataclasses import dataclass

__all__ = ["GlibcHeap", "HeapFigures"]

_M_ARENA_MAX = -8  # malloc.h


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


@dataclass(frozen=True)
class HeapFigures:
    """malloc's bytes in use (arenas and mmapped chunks), held free in the arenas, and
    the small Python objects pymalloc has handed out (its arenas are not malloc's)."""

    in_use: int
    free: int
    python_blocks: int


@dataclass(frozen=True)
class GlibcHeap:
    """glibc's malloc, reached through ctypes."""

    libc: ctypes.CDLL

    @classmethod
    def load(cls) -> GlibcHeap | None:
        """glibc's malloc, or None when this process runs on another C library."""
        name = ctypes.util.find_library("c")
        if not name:
            return None
        try:
            libc = ctypes.CDLL(name)
            libc.mallinfo2.restype = _MallInfo2
            libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            return None
        return cls(libc)

    def limit_arenas(self, arenas: int) -> bool:
        """At most `arenas` malloc arenas from now on (0 leaves glibc's default). Call it
        before threads start: an arena a thread already has stays its own."""
        if arenas <= 0:
            return False
        return bool(self.libc.mallopt(_M_ARENA_MAX, arenas))

    def trim(self) -> bool:
        """Give the free pages of every arena back to the system; True if any were."""
        return bool(self.libc.malloc_trim(0))

    def figures(self) -> HeapFigures:
        info = self.libc.mallinfo2()
        return HeapFigures(
            in_use=int(info.uordblks + info.hblkhd),
            free=int(info.fordblks),
            python_blocks=sys.getallocatedblocks(),
        )
