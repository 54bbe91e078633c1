"""Stage `scheduler`: keeps the schedule table, and a timer that fires due entries."""

from __future__ import annotations

from typing import Any

from pipeline.domain import schedule as scheduler
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime

__all__ = ["STAGE", "apply", "fire_due", "schedule_agent"]

STAGE = "scheduler"


async def schedule_agent(stream: Any, rt: Runtime, stage: Stage) -> None:
    """Apply SCHEDULE, FIRED and CANCEL records to the schedule table."""
    await stage.run(stream, rt.per_record(stage.name, lambda message: apply(rt, message)))


async def apply(rt: Runtime, message: Any) -> None:
    record = await rt.decode(message, "ScheduledDelivery", STAGE)
    if record is None:
        return
    if record["op"] == "SCHEDULE":
        rt.tables.schedule[record["id"]] = scheduler.to_entry(record)
    else:
        rt.tables.schedule.pop(record["id"], None)
        rt.fired.discard(record["id"])


async def fire_due(rt: Runtime, app: Any) -> None:
    """Timer: produce every due entry to its topic and wait for the broker, then mark it
    FIRED. The marker removes the entry, so it is written only once the target record
    is safely on its topic: a crash in between fires the entry again (the send ledger
    and the idempotency table make that harmless), never loses it."""
    if app.rebalancing or app.in_recovery:
        return
    now = scheduler.now_ms()
    for entry_id, topic, key, payload in list(
        scheduler.due(rt.tables.schedule.items(), now, rt.fired)
    ):
        await (await rt.sink_for(topic).send(key=key, value=payload))
        await rt.sinks.scheduler.send(key=key, value=scheduler.marker(entry_id, "FIRED", key))
        rt.fired.add(entry_id)
