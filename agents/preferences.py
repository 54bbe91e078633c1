"""Stage `preferences`: the compacted preferences topic into a table co-partitioned
with requests, so the consent check in ingest is a local lookup."""

from __future__ import annotations

from typing import Any

from agents.user_records import USER_KEY_RULE, UserTable, keep_latest
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime

__all__ = ["STAGE", "TABLE", "USER_KEY_RULE", "preferences"]

STAGE = "preferences"
TABLE = UserTable(STAGE, "UserPreferences", lambda rt: rt.tables.preferences)


async def preferences(
    stream: Any, rt: Runtime, stage: Stage, key_rule: str = USER_KEY_RULE
) -> None:
    """Keep the preferences table equal to the latest record per tenant:userId."""
    await keep_latest(stream, rt, stage, TABLE, key_rule)
