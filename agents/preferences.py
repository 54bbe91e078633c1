"""Stage `preferences`: the compacted preferences topic into a table co-partitioned
with requests, so the consent check in ingest is a local lookup."""

from __future__ import annotations

from typing import Any

from pipeline.runtime import Runtime

STAGE = "preferences"


async def preferences(stream: Any, rt: Runtime) -> None:
    """Keep the preferences table equal to the latest record per tenant:userId."""
    async for event in stream.events():
        message = event.message
        key = message.key.decode() if isinstance(message.key, bytes) else message.key
        if message.value is None:  # tombstone: erasure
            rt.tables.preferences.pop(key, None)
            continue
        record = await rt.decode(message, "UserPreferences", STAGE)
        if record is None:
            continue
        rt.tables.preferences[key] = record
