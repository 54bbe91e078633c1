"""The running worker's tables open RocksDB with the configured memory budget: every
table database's OPTIONS file (written by RocksDB itself) shows the small write buffer."""

from __future__ import annotations

import re

from pipeline.settings import Settings
from tests.harness import Stack, post, request_body, unique


def test_every_table_database_uses_the_configured_write_buffer(stack: Stack) -> None:
    user = unique("rocks")
    assert post(stack, request_body(user)).status_code == 202
    stack.wait_status(post(stack, request_body(user)).json()["messageId"], "SENT")
    expected = Settings.from_env(stack.env_of("worker")).rocksdb_options()["write_buffer_size"]
    databases = {}
    for options in (stack.home / "worker").rglob("OPTIONS-*"):
        text = options.read_text()
        found = re.search(r"^\s*write_buffer_size=(\d+)$", text, re.MULTILINE)
        assert found, options
        databases.setdefault(options.parent, set()).add(int(found.group(1)))
    assert databases, "no RocksDB database under the worker's home"
    # Each database's newest OPTIONS file is what it runs with now.
    for db in databases:
        newest = max(db.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1]))
        size = re.search(r"^\s*write_buffer_size=(\d+)$", newest.read_text(), re.MULTILINE)
        assert size and int(size.group(1)) == expected, (db.name, size)
