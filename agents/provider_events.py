"""Stage `provider-events`: delivery and engagement events from provider webhooks
become status changes (SENT → DELIVERED / BOUNCED / FAILED; OPENED, CLICKED), but
only for the message's own send.

An event names its message by a join key the provider echoes, so its signature
alone does not make it true for that message: `pipeline.domain.provider_events.judge`
holds it against the message's state (same provider, same provider message id).
Events for unknown messages, for another provider's or another send's message, and
repeated event ids are counted in `herald_provider_events_dropped{provider, reason}`
and change nothing. When the state may not have caught up with the send yet, the
event is handed to the durable scheduler and judged again later (never held in the
stage: see `pipeline.domain.event_wait`), until it has waited
HERALD_PROVIDER_EVENT_WAIT seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipeline.domain import schedule as scheduler
from pipeline.domain.event_wait import first_seen_s, recheck_after_s
from pipeline.domain.ids import message_key
from pipeline.domain.provider_events import Verdict, judge
from pipeline.domain.state import status_for_event
from pipeline.exceptions import HeraldError
from pipeline.kafka.batches import Stage
from pipeline.kafka.catalog import PROVIDER_EVENTS
from pipeline.runtime import Runtime

__all__ = ["HOLD_S", "POLL_S", "STAGE", "WINDOW", "catch_up", "defer", "handle_one",
           "provider_events"]  # fmt: skip

STAGE = "provider-events"
# A webhook usually beats the status projection by a few milliseconds: a batch first
# waits in place, at most HOLD_S, for the sends its events name (checking every
# POLL_S); what is still not there then goes to the scheduler. The stage's batches
# overlap (WINDOW records in hand), so a batch that waits never stops the stream.
HOLD_S = 1.0
POLL_S = 0.05
WINDOW = 1000


async def provider_events(stream: Any, rt: Runtime, stage: Stage) -> None:
    """Turn each ProviderEvent that matches its message's send into a NotificationStatus."""
    each = rt.per_record(stage.name, lambda message: handle_one(rt, message))

    async def handle(events: list[Any]) -> None:
        await catch_up(rt, events)
        await each(events)

    await stage.run(stream, handle)


async def catch_up(rt: Runtime, events: list[Any]) -> None:
    """Wait (at most HOLD_S) while an event of the batch names a send that the state has
    not folded yet. Reads only: `handle_one` judges, dead-letters and defers after."""
    waiting = []
    for event in events:
        try:
            record = rt.codec.decode("ProviderEvent", event.message.value)
        except HeraldError:
            continue  # handle_one dead-letters it
        key = message_key(record["tenant"] or "", record["messageId"] or "")
        if judge(record, rt.tables.state.get(key)) is Verdict.WAIT:
            waiting.append((record, key))
    started = time.monotonic()
    while waiting and time.monotonic() - started < HOLD_S:
        await asyncio.sleep(POLL_S)
        still = [(r, k) for r, k in waiting if judge(r, rt.tables.state.get(k)) is Verdict.WAIT]
        for record, _ in (w for w in waiting if w not in still):
            held = time.monotonic() - started
            rt.metrics.provider_event_wait.labels(record["provider"]).observe(held)
        waiting = still


async def handle_one(rt: Runtime, message: Any) -> None:
    record = await rt.decode(message, "ProviderEvent", STAGE)
    if record is None:
        return
    # Keyed tenant:messageId like the status topic, so the state is local.
    key = message_key(record["tenant"] or "", record["messageId"] or "")
    event_id = f"{record['provider']}:{record['eventId']}"
    verdict, state = Verdict.DUPLICATE, None
    # No await from the look at the event ids to remembering this one: overlapping
    # batches never apply one event id twice.
    if not rt.recent_events.seen(event_id, time.monotonic()):
        waited = time.time() - first_seen_s(record["at"], message.timestamp)
        state = rt.tables.state.get(key)
        verdict = judge(record, state, settled=waited >= rt.settings.provider_event_wait_s)
        if verdict is Verdict.WAIT:
            await defer(rt, message, key, event_id, waited)
            return
        if event_id in rt.deferred_events:  # it waited through the scheduler: how long
            rt.metrics.provider_event_wait.labels(record["provider"]).observe(waited)
    if verdict is not Verdict.APPLY:
        rt.metrics.provider_events_dropped.labels(record["provider"], verdict.value).inc()
        return
    rt.recent_events.add(event_id, time.monotonic())
    status = status_for_event(record, state)
    if status is not None:
        await rt.emit_status(status, STAGE)


async def defer(rt: Runtime, message: Any, key: str, event_id: str, waited_s: float) -> None:
    """Hand the event (its original bytes) to the scheduler, to be judged again later:
    its offset is then committed, and the stream goes on."""
    due_ms = scheduler.now_ms() + int(recheck_after_s(waited_s) * 1000)
    entry = scheduler.schedule(f"event:{event_id}:{due_ms}", due_ms, PROVIDER_EVENTS, key,
                               message.value)  # fmt: skip
    await rt.produce(rt.sinks.scheduler, message.key, entry)
    rt.deferred_events.add(event_id, time.monotonic())
