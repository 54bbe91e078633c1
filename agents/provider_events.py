"""Stage `provider-events`: delivery and engagement events from provider webhooks
become status changes (SENT → DELIVERED / BOUNCED / FAILED; OPENED, CLICKED)."""

from __future__ import annotations

from typing import Any

from pipeline.ids import message_key
from pipeline.runtime import Runtime, describe_exception
from pipeline.state import status_for_event

STAGE = "provider-events"


async def provider_events(stream: Any, rt: Runtime) -> None:
    """Turn each ProviderEvent into the NotificationStatus it means, if any."""
    async for event in stream.events():
        message = event.message
        record = await rt.decode(message, "ProviderEvent", STAGE)
        if record is None:
            continue
        try:
            # Keyed tenant:messageId like the status topic, so the state is local.
            key = message_key(record["tenant"] or "", record["messageId"] or "")
            status = status_for_event(record, rt.tables.state.get(key))
            if status is not None:
                await rt.emit_status(status, STAGE)
        except Exception as exc:  # one bad record never stops the partition
            await rt.emit_dead_letter(
                message, stage=STAGE, reason="internal-error", error=describe_exception(exc)
            )
