"""One RocksDB memory budget for every table database of a worker.

Faust's RocksDB store opens one database per table and partition (5 tables x 6
partitions), each with a 64 MiB write buffer (three of them) and a 2 GiB block
cache of its own. A memtable is flushed only when it fills, so a worker's memory
grew with every message for hundreds of thousands of messages and never came back
(issue 10). Here every database shares one LRU cache (block cache, with the
memtables charged to it) and one write buffer manager: when the memtables of all
databases together pass the write buffer budget, RocksDB flushes the largest, so
the total stays bounded whatever the number of tables, partitions or messages.

`BudgetedTable` is the table class the topology declares; its store is Faust's
RocksDB store opened with `BudgetedRocksDBOptions`. Any other store URL
(`memory://`) is left to Faust.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rocksdict
from faust.stores import rocksdb as faust_rocksdb
from yarl import URL

from pipeline.kafka.effects import TrackedTable

__all__ = ["BudgetedRocksDBOptions", "BudgetedStore", "BudgetedTable", "RocksDBBudget"]

_MIB = 1024 * 1024
_ARENA_BLOCK_BYTES = 64 * 1024


@dataclass(frozen=True)
class RocksDBBudget:
    """The cache and write buffer manager shared by every database of one worker."""

    cache: rocksdict.Cache
    write_buffers: rocksdict.WriteBufferManager
    memory_bytes: int
    write_buffer_bytes: int
    database_write_buffer_bytes: int

    @classmethod
    def create(cls, *, memory_mb: int, write_buffer_mb: int) -> RocksDBBudget:
        """A budget of `memory_mb` in all (block cache plus memtables charged to it),
        with at most `write_buffer_mb` of memtables; each database's own memtable is an
        eighth of that (at least 1 MiB), so no single table can hold the whole budget."""
        if write_buffer_mb > memory_mb:
            raise ValueError("the write buffer budget must fit in the memory budget")
        cache = rocksdict.Cache(memory_mb * _MIB)
        write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            write_buffer_mb * _MIB, False, cache
        )
        return cls(
            cache=cache,
            write_buffers=write_buffers,
            memory_bytes=memory_mb * _MIB,
            write_buffer_bytes=write_buffer_mb * _MIB,
            database_write_buffer_bytes=max(_MIB, write_buffer_mb * _MIB // 8),
        )

    def memtable_bytes(self) -> int:
        """Memory the memtables of every database hold now."""
        return int(self.write_buffers.get_usage())

    def cache_bytes(self) -> int:
        """Memory charged to the shared cache now (blocks read plus memtables)."""
        return int(self.cache.get_usage())


class BudgetedRocksDBOptions(faust_rocksdb.RocksDBOptions):
    """Faust's options for one database, drawing on the shared budget (rocksdict only)."""

    def __init__(self, budget: RocksDBBudget, **kwargs: Any) -> None:
        super().__init__(
            write_buffer_size=budget.database_write_buffer_bytes,
            max_write_buffer_number=2,
            target_file_size_base=budget.database_write_buffer_bytes,
            use_rocksdict=True,
            **kwargs,
        )
        self.budget = budget

    def as_options(self) -> rocksdict.Options:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        if self.max_open_files is not None:
            options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(self.budget.write_buffers)
        # An empty memtable still holds one arena block (an eighth of the write buffer
        # by default): 64 KiB keeps the thirty idle databases' floor near 4 MiB.
        options.set_arena_block_size(_ARENA_BLOCK_BYTES)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(self.budget.cache)
        # Every SST file's index and bloom filter in the same cache: kept apart, as
        # RocksDB does by default, they grow with the number of files on disk.
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options

    def open(self, path: Path, *, read_only: bool = False) -> rocksdict.Rdict:
        access = (
            rocksdict.AccessType.read_write()
            if self.ttl is None
            else rocksdict.AccessType.with_ttl(self.ttl)
        )
        db = rocksdict.Rdict(str(path), options=self.as_options(), access_type=access)
        db.set_read_options(rocksdict.ReadOptions())
        return db


class BudgetedStore(faust_rocksdb.Store):
    """Faust's RocksDB store whose databases open with the worker's shared budget."""

    def __init__(self, url: Any, app: Any, table: Any, *, budget: RocksDBBudget, **kwargs: Any):
        super().__init__(url, app, table, driver="rocksdict", **kwargs)
        self.rocksdb_options = BudgetedRocksDBOptions(budget, ttl=self.rocksdb_options.ttl)


class BudgetedTable(TrackedTable):
    """A tracked table (see `pipeline.kafka.effects`) stored in the shared budget."""

    def __init__(self, *args: Any, budget: RocksDBBudget, **kwargs: Any) -> None:
        self.budget = budget
        super().__init__(*args, **kwargs)

    def _new_store_by_url(self, url: str | URL) -> Any:
        if URL(str(url)).scheme != "rocksdb":
            return super()._new_store_by_url(url)
        return BudgetedStore(
            url,
            self.app,
            self,
            budget=self.budget,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )
