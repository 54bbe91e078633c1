"""Stage `preferences`: the compacted preferences topic into a table co-partitioned
with requests, so the consent check in ingest is a local lookup."""

from __future__ import annotations

from typing import Any

from pipeline.domain.tenancy import check_keyed_record, check_user_key, valid_tenant
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime

__all__ = ["STAGE", "USER_KEY_RULE", "handle_one", "preferences"]

STAGE = "preferences"
USER_KEY_RULE = "tenant:userId"  # the catalog's key of the topic (the wiring passes it)


async def preferences(
    stream: Any, rt: Runtime, stage: Stage, key_rule: str = USER_KEY_RULE
) -> None:
    """Keep the preferences table equal to the latest record per tenant:userId."""
    await stage.run(
        stream, rt.per_record(stage.name, lambda message: handle_one(rt, message, key_rule))
    )


async def handle_one(rt: Runtime, message: Any, key_rule: str = USER_KEY_RULE) -> None:
    """Store (or, for a tombstone, erase) one user's preferences, once its key is checked.

    The table is keyed by the record key, so a key that is not the record's own
    tenant:userId (or a tenant with ':') would write another user's consent.
    """
    key = message.key.decode() if isinstance(message.key, bytes) else message.key
    if message.value is None:  # tombstone: erasure
        refusal = check_user_key(key)
        if refusal is None:
            rt.tables.preferences.pop(key, None)
            return
        await rt.emit_dead_letter(message, stage=STAGE, reason=refusal.reason, error=refusal.error)
        return
    record = await rt.decode(message, "UserPreferences", STAGE)
    if record is None:
        return
    refusal = check_keyed_record(key_rule, record, key)
    if refusal is not None:
        tenant = record.get("tenant") if valid_tenant(record.get("tenant")) else None
        await rt.emit_dead_letter(
            message, stage=STAGE, reason=refusal.reason, error=refusal.error, tenant=tenant
        )
        return
    rt.tables.preferences[key] = record
