"""Stage `profiles`: the compacted profiles topic into a table co-partitioned with
requests, so ingest resolves a recipient from its profile with a local lookup; its
progress (`Runtime.profile_watch`) lets a GET of a profile see the PUT before it."""

from __future__ import annotations

from typing import Any

from agents.user_records import USER_KEY_RULE, UserTable, keep_latest
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime

__all__ = ["STAGE", "TABLE", "USER_KEY_RULE", "profiles"]

STAGE = "profiles"
TABLE = UserTable(
    STAGE, "UserProfile", lambda rt: rt.tables.profiles, watch=lambda rt: rt.profile_watch
)


async def profiles(stream: Any, rt: Runtime, stage: Stage, key_rule: str = USER_KEY_RULE) -> None:
    """Keep the profiles table equal to the latest record per tenant:userId."""
    await keep_latest(stream, rt, stage, TABLE, key_rule)
