"""Stage `status`: folds every status record into the notification-state table."""

from __future__ import annotations

from typing import Any

from pipeline.exceptions import DecodeError
from pipeline.ids import message_key
from pipeline.runtime import Runtime, describe_exception
from pipeline.state import apply_status

STAGE = "status"


async def status(stream: Any, rt: Runtime) -> None:
    """Keep the query side (GET /v1/notifications/{id}) in step with the status topic."""
    async for event in stream.events():
        message = event.message
        try:
            record = rt.codec.decode("NotificationStatus", message.value)
        except DecodeError as exc:
            await rt.emit_dead_letter(message, stage=STAGE, reason="decode-error", error=str(exc))
            continue
        try:
            key = message_key(record["tenant"], record["messageId"])
            rt.tables.state[key] = apply_status(rt.tables.state.get(key), record)
        except Exception as exc:  # one bad record never stops the partition
            await rt.emit_dead_letter(
                message, stage=STAGE, reason="internal-error", error=describe_exception(exc)
            )
