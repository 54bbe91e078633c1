"""Stage `preferences`: the compacted preferences topic into a table co-partitioned
with requests, so the consent check in ingest is a local lookup."""

from __future__ import annotations

from typing import Any

from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime

__all__ = ["STAGE", "handle_one", "preferences"]

STAGE = "preferences"


async def preferences(stream: Any, rt: Runtime, stage: Stage) -> None:
    """Keep the preferences table equal to the latest record per tenant:userId."""
    await stage.run(stream, rt.per_record(stage.name, lambda message: handle_one(rt, message)))


async def handle_one(rt: Runtime, message: Any) -> None:
    key = message.key.decode() if isinstance(message.key, bytes) else message.key
    if message.value is None:  # tombstone: erasure
        rt.tables.preferences.pop(key, None)
        return
    record = await rt.decode(message, "UserPreferences", STAGE)
    if record is not None:
        rt.tables.preferences[key] = record
