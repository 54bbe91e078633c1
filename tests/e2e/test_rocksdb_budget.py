"""The running worker's tables draw on one RocksDB memory budget (issue 10): every table
database's OPTIONS file (written by RocksDB itself) shows the small per-database write
buffer, and the worker's /metrics report the shared budget's memtables and cache."""

from __future__ import annotations

import re

import httpx

from pipeline.kafka.rocksdb_budget import RocksDBBudget
from pipeline.settings import Settings
from tests.harness import Stack, post, request_body, unique


def _option(text: str, name: str) -> int:
    found = re.search(rf"^\s*{name}=(\d+)$", text, re.MULTILINE)
    assert found, name
    return int(found.group(1))


def _rocksdb_metric(text: str, part: str) -> float:
    found = re.search(rf'^herald_rocksdb_memory_bytes{{part="{part}"}} (\S+)$', text, re.MULTILINE)
    assert found, part
    return float(found.group(1))


def test_every_table_database_draws_on_the_shared_budget(stack: Stack) -> None:
    user = unique("rocks")
    stack.wait_status(post(stack, request_body(user)).json()["messageId"], "SENT")
    settings = Settings.from_env(stack.env_of("worker"))
    budget = RocksDBBudget.create(
        memory_mb=settings.rocksdb_memory_mb, write_buffer_mb=settings.rocksdb_write_buffer_mb
    )
    newest: dict[object, tuple[int, str]] = {}
    for options in (stack.home / "worker").rglob("OPTIONS-*"):
        number = int(options.name.split("-")[1])
        if number > newest.get(options.parent, (-1, ""))[0]:
            newest[options.parent] = (number, options.read_text())
    assert len(newest) >= 5, "fewer RocksDB databases than tables under the worker's home"
    for db, (_, text) in newest.items():  # each database's newest OPTIONS: what it runs with
        assert _option(text, "write_buffer_size") == budget.database_write_buffer_bytes, db
        assert _option(text, "arena_block_size") == 64 * 1024, db
        # SST indexes and filters are charged to the shared cache, not kept apart.
        assert re.search(r"^\s*cache_index_and_filter_blocks=true$", text, re.MULTILINE), db

    metrics = httpx.get(f"{stack.api_of('worker')}/metrics", timeout=5).text
    memtables = _rocksdb_metric(metrics, "memtables")
    assert 0 < memtables <= budget.write_buffer_bytes + 2 * budget.database_write_buffer_bytes
    assert memtables <= _rocksdb_metric(metrics, "cache") <= budget.memory_bytes * 1.1
