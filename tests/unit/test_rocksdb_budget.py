"""The tables' RocksDB memory comes from settings (issue 10): small write buffers and
block caches per database instead of Faust's 64 MiB x 3 and 2 GiB defaults."""

from __future__ import annotations

from pipeline.settings import Settings


def test_rocksdb_options_come_from_the_environment_and_are_fresh_each_time() -> None:
    settings = Settings.from_env(
        {"HERALD_ROCKSDB_WRITE_BUFFER_MB": "2", "HERALD_ROCKSDB_BLOCK_CACHE_MB": "16"}
    )
    options = settings.rocksdb_options()
    assert options["write_buffer_size"] == 2 * 1024 * 1024
    assert options["max_write_buffer_number"] == 2
    assert options["block_cache_size"] == 16 * 1024 * 1024
    options.pop("write_buffer_size")  # Faust's store pops from the dict it is given
    assert settings.rocksdb_options()["write_buffer_size"] == 2 * 1024 * 1024


def test_the_defaults_are_megabytes_not_gigabytes() -> None:
    options = Settings.from_env({}).rocksdb_options()
    assert options["write_buffer_size"] == 4 * 1024 * 1024
    assert options["block_cache_size"] == 8 * 1024 * 1024
