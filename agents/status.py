"""Stage `status`: folds every status record into the notification-state table."""

from __future__ import annotations

from typing import Any

from pipeline.domain.ids import message_key
from pipeline.domain.state import apply_status
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime, in_event

__all__ = ["STAGE", "fold", "status"]

STAGE = "status"


async def status(stream: Any, rt: Runtime, stage: Stage) -> None:
    """Keep the query side (GET /v1/notifications/{id}) in step with the status topic.

    Takes what has arrived and writes each message's state once per batch: a
    notification has five or more status changes, often close together, and
    every table write is a changelog record.
    """

    async def handle(events: list[Any]) -> None:
        await fold(rt, events)

    await stage.run(stream, handle)


async def fold(rt: Runtime, events: list[Any]) -> None:
    states: dict[str, tuple[dict[str, Any], Any]] = {}  # key -> (state, its last event)

    async def one(event: Any) -> None:
        record = await rt.decode(event.message, "NotificationStatus", STAGE)
        if record is not None:
            key = message_key(record["tenant"], record["messageId"])
            current = states[key][0] if key in states else rt.tables.state.get(key)
            states[key] = (apply_status(current, record), event)

    await rt.each(events, STAGE, one)
    for key, (state, event) in states.items():
        with in_event(event):  # the changelog partition is the message's
            rt.tables.state[key] = state
    # Whoever waits on these states (early provider events) may look again.
    offsets: dict[int, int] = {}
    for event in events:
        message = event.message
        offsets[message.partition] = max(message.offset, offsets.get(message.partition, -1))
    rt.fold_watch.folded(offsets, states)
