"""A compacted user topic kept as a table: what the `preferences` and `profiles` stages share.

Both topics are keyed `tenant:userId`, co-partitioned with the requests, so ingest reads
a user's consent and profile locally. Each record is checked before it is keyed: its key
must be its own `tenant:userId` (and the tenant a valid one), else it would write another
user's entry, so it is dead-lettered instead; undecodable bytes are dead-lettered too. A
tombstone erases the user's entry. Once a batch is stored, its offsets are told to the
stage's `FoldWatch` (if any), so a read can wait until what was written before it is in
the table (read-your-writes, `pipeline.kafka.progress.StateBarrier`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.domain.tenancy import check_keyed_record, check_user_key, valid_tenant
from pipeline.kafka.batches import Stage
from pipeline.kafka.progress import FoldWatch
from pipeline.runtime import Runtime

__all__ = ["USER_KEY_RULE", "UserTable", "keep_latest", "store_one"]

USER_KEY_RULE = "tenant:userId"  # the catalog's key of the user topics (the wiring passes it)


@dataclass(frozen=True)
class UserTable:
    """Which stage, Avro record, table and progress watch one user topic has."""

    stage: str
    schema: str
    table: Callable[[Runtime], Any]
    watch: Callable[[Runtime], FoldWatch | None] = lambda rt: None


async def keep_latest(
    stream: Any, rt: Runtime, stage: Stage, spec: UserTable, key_rule: str = USER_KEY_RULE
) -> None:
    """Keep `spec`'s table equal to the latest record per tenant:userId."""

    async def handle(events: list[Any]) -> None:
        await rt.each(
            events, spec.stage, lambda event: store_one(rt, event.message, spec, key_rule)
        )
        watch = spec.watch(rt)
        if watch is not None:
            offsets: dict[int, int] = {}
            for event in events:
                message = event.message
                offsets[message.partition] = max(message.offset, offsets.get(message.partition, -1))
            watch.folded(offsets, ())

    await stage.run(stream, handle)


async def store_one(
    rt: Runtime, message: Any, spec: UserTable, key_rule: str = USER_KEY_RULE
) -> None:
    """Store (or, for a tombstone, erase) one user's record, once its key is checked."""
    key = message.key.decode() if isinstance(message.key, bytes) else message.key
    table = spec.table(rt)
    if message.value is None:  # tombstone: erasure
        refusal = check_user_key(key)
        if refusal is None:
            table.pop(key, None)
            return
        await rt.emit_dead_letter(
            message, stage=spec.stage, reason=refusal.reason, error=refusal.error
        )
        return
    record = await rt.decode(message, spec.schema, spec.stage)
    if record is None:
        return
    refusal = check_keyed_record(key_rule, record, key)
    if refusal is not None:
        tenant = record.get("tenant") if valid_tenant(record.get("tenant")) else None
        await rt.emit_dead_letter(
            message, stage=spec.stage, reason=refusal.reason, error=refusal.error, tenant=tenant
        )
        return
    table[key] = record
