"""Stage `provider-events`: delivery and engagement events from provider webhooks
become status changes (SENT → DELIVERED / BOUNCED / FAILED; OPENED, CLICKED)."""

from __future__ import annotations

from typing import Any

from pipeline.domain.ids import message_key
from pipeline.domain.state import status_for_event
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime

__all__ = ["STAGE", "handle_one", "provider_events"]

STAGE = "provider-events"


async def provider_events(stream: Any, rt: Runtime, stage: Stage) -> None:
    """Turn each ProviderEvent into the NotificationStatus it means, if any."""
    await stage.run(stream, rt.per_record(stage.name, lambda message: handle_one(rt, message)))


async def handle_one(rt: Runtime, message: Any) -> None:
    record = await rt.decode(message, "ProviderEvent", STAGE)
    if record is None:
        return
    # Keyed tenant:messageId like the status topic, so the state is local.
    key = message_key(record["tenant"] or "", record["messageId"] or "")
    status = status_for_event(record, rt.tables.state.get(key))
    if status is not None:
        await rt.emit_status(status, STAGE)
