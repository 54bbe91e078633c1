"""The tables' RocksDB memory is one budget from settings (issue 10): a cache and a write
buffer manager shared by every database, instead of Faust's 64 MiB x 3 write buffers and
2 GiB block cache per database. Checked on real RocksDB databases (rocksdict), no Kafka."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from pipeline.kafka.rocksdb_budget import BudgetedRocksDBOptions, RocksDBBudget
from pipeline.settings import Settings

pytestmark = pytest.mark.unit

_MIB = 1024 * 1024


def test_the_budget_comes_from_the_environment() -> None:
    settings = Settings.from_env(
        {"HERALD_ROCKSDB_MEMORY_MB": "48", "HERALD_ROCKSDB_WRITE_BUFFER_MB": "16"}
    )
    budget = RocksDBBudget.create(
        memory_mb=settings.rocksdb_memory_mb, write_buffer_mb=settings.rocksdb_write_buffer_mb
    )
    assert budget.memory_bytes == 48 * _MIB
    assert budget.write_buffer_bytes == 16 * _MIB
    assert budget.database_write_buffer_bytes == 2 * _MIB
    assert budget.write_buffers.get_buffer_size() == 16 * _MIB


def test_the_defaults_are_megabytes_for_the_whole_worker() -> None:
    settings = Settings.from_env({})
    assert (settings.rocksdb_memory_mb, settings.rocksdb_write_buffer_mb) == (64, 32)


def test_a_write_buffer_budget_larger_than_the_memory_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="fit"):
        RocksDBBudget.create(memory_mb=8, write_buffer_mb=16)


def _memtables_after_writing(tmp_path: Path, budget: RocksDBBudget, *, settle_below: int) -> int:
    """Twelve databases with 4 MiB memtables each, 3 MB written to each: too little for
    any database to flush on its own, so only a shared budget can make them flush. The
    flushes run on RocksDB's background threads: wait (at most 10 s) for the memtables
    to settle below `settle_below`, and return what they hold then."""
    budget = dataclasses.replace(budget, database_write_buffer_bytes=4 * _MIB)
    options = BudgetedRocksDBOptions(budget)
    dbs = [options.open(tmp_path / f"db-{n}") for n in range(12)]
    try:
        value = b"x" * 1000
        for i in range(3_000):
            for n, db in enumerate(dbs):
                db[f"key-{n}-{i}".encode()] = value
        deadline = time.monotonic() + 10.0
        while budget.memtable_bytes() >= settle_below and time.monotonic() < deadline:
            time.sleep(0.1)
        assert dbs[0][b"key-0-0"] == value  # what was flushed is still read back
        assert budget.cache_bytes() >= budget.memtable_bytes()  # charged to the cache
        return budget.memtable_bytes()
    finally:
        for db in dbs:
            db.close()


def test_a_shared_write_buffer_budget_bounds_the_memtables_of_every_database(
    tmp_path: Path,
) -> None:
    unbounded = _memtables_after_writing(
        tmp_path / "unbounded",
        RocksDBBudget.create(memory_mb=1024, write_buffer_mb=1024),
        settle_below=1 << 62,  # no wait: nothing makes these flush
    )
    bounded = _memtables_after_writing(
        tmp_path / "bounded",
        RocksDBBudget.create(memory_mb=64, write_buffer_mb=4),
        settle_below=8 * _MIB,
    )
    assert unbounded > 30 * _MIB  # every write still in a memtable
    # Flushed down to about the 4 MiB budget (each database's empty memtable is an arena
    # block or two), where the same writes without it hold over 30 MiB.
    assert bounded < 8 * _MIB
