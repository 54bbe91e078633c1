"""glibc's heap as the worker sees it: figures that follow allocations, arenas capped."""

from __future__ import annotations

import re

import pytest

from pipeline.heap import GlibcHeap
from pipeline.metrics import Metrics

pytestmark = pytest.mark.unit


@pytest.fixture
def heap() -> GlibcHeap:
    found = GlibcHeap.load()
    if found is None:
        pytest.skip("not glibc")
    return found


def test_in_use_follows_a_large_allocation_and_its_release(heap: GlibcHeap) -> None:
    before = heap.figures().in_use
    block = bytearray(32 * 1024 * 1024)
    during = heap.figures().in_use
    del block
    after = heap.figures().in_use
    assert during - before >= 32 * 1024 * 1024
    assert during - after >= 32 * 1024 * 1024


def test_python_blocks_count_small_objects_alive(heap: GlibcHeap) -> None:
    before = heap.figures().python_blocks
    objects = [object() for _ in range(50_000)]
    assert heap.figures().python_blocks - before >= 50_000
    del objects


def test_zero_arenas_leaves_glibcs_default_and_a_cap_is_accepted(heap: GlibcHeap) -> None:
    assert heap.limit_arenas(0) is False
    assert heap.limit_arenas(64) is True  # above the default for 2 cores: changes nothing here


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        found = re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.M)
    assert found
    return int(found.group(1)) * 1024


def test_trim_gives_free_pages_inside_an_arena_back(heap: GlibcHeap) -> None:
    # 80 MB in 4 KB chunks (below the mmap threshold: inside an arena), one in fifty kept,
    # so the freed memory is in holes glibc does not give back by itself.
    chunks = [bytearray(4096) for _ in range(20_000)]
    kept = chunks[::50]
    del chunks
    held = _rss_bytes()
    heap.trim()
    assert held - _rss_bytes() >= 40 * 1024 * 1024
    assert heap.figures().free >= 40 * 1024 * 1024  # still free to malloc: only the pages went
    del kept


def test_metrics_show_the_heap_when_scraped(heap: GlibcHeap) -> None:
    metrics = Metrics()
    metrics.watch_heap(heap.figures)
    text = metrics.render().decode()
    in_use = re.search(r'^herald_malloc_bytes\{part="in_use"\} (\S+)$', text, re.M)
    free = re.search(r'^herald_malloc_bytes\{part="free"\} (\S+)$', text, re.M)
    blocks = re.search(r"^herald_python_allocated_blocks (\S+)$", text, re.M)
    assert in_use and free and blocks
    assert float(in_use.group(1)) > 0 and float(blocks.group(1)) > 10_000
