"""Stage `status`: folds every status record into the notification-state table."""

from __future__ import annotations

from typing import Any

from pipeline.ids import message_key
from pipeline.runtime import Runtime, describe_exception, in_event
from pipeline.state import apply_status

STAGE = "status"


async def status(stream: Any, rt: Runtime) -> None:
    """Keep the query side (GET /v1/notifications/{id}) in step with the status topic.

    Takes what has arrived (as the send stages do) and writes each message's
    state once per batch: a notification has five or more status changes, often
    close together, and every table write is a changelog record.
    """
    settings = rt.settings
    async for events in stream.take_events(settings.batch_max, within=settings.batch_window_s):
        await fold(rt, events)


async def fold(rt: Runtime, events: list[Any]) -> None:
    states: dict[str, tuple[dict[str, Any], Any]] = {}  # key -> (state, its last event)
    for event in events:
        message = event.message
        with in_event(event):
            record = await rt.decode(message, "NotificationStatus", STAGE)
            if record is None:
                continue
            try:
                key = message_key(record["tenant"], record["messageId"])
                current = states[key][0] if key in states else rt.tables.state.get(key)
                states[key] = (apply_status(current, record), event)
            except Exception as exc:  # one bad record never stops the partition
                await rt.emit_dead_letter(
                    message, stage=STAGE, reason="internal-error", error=describe_exception(exc)
                )
    for key, (state, event) in states.items():
        with in_event(event):  # the changelog partition is the message's
            rt.tables.state[key] = state
