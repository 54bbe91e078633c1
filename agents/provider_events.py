"""Stage `provider-events`: delivery and engagement events from provider webhooks
become status changes (SENT → DELIVERED / BOUNCED / FAILED; OPENED, CLICKED), but
only for the message's own send.

An event names its message by a join key the provider echoes, so its signature
alone does not make it true for that message: `pipeline.domain.provider_events.judge`
holds it against the message's state (same provider, same provider message id).
Events for unknown messages, for another provider's or another send's message, and
repeated event ids are counted in `herald_provider_events_dropped{provider, reason}`
and change nothing. When the state may not have caught up with the send yet, the
event waits for it, at most HERALD_PROVIDER_EVENT_WAIT seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from pipeline.domain.ids import message_key
from pipeline.domain.provider_events import Verdict, judge
from pipeline.domain.state import status_for_event
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime

__all__ = ["POLL_S", "STAGE", "handle_one", "provider_events", "settle"]

STAGE = "provider-events"
POLL_S = 0.05  # how often a waiting event looks at the state again


async def provider_events(stream: Any, rt: Runtime, stage: Stage) -> None:
    """Turn each ProviderEvent that matches its message's send into a NotificationStatus."""
    await stage.run(stream, rt.per_record(stage.name, lambda message: handle_one(rt, message)))


async def handle_one(rt: Runtime, message: Any) -> None:
    record = await rt.decode(message, "ProviderEvent", STAGE)
    if record is None:
        return
    # Keyed tenant:messageId like the status topic, so the state is local.
    key = message_key(record["tenant"] or "", record["messageId"] or "")
    event_id = f"{record['provider']}:{record['eventId']}"
    verdict, state = Verdict.DUPLICATE, None
    if not rt.recent_events.seen(event_id, time.monotonic()):
        verdict, state = await settle(rt, record, key)
    if verdict is not Verdict.APPLY:
        rt.metrics.provider_events_dropped.labels(record["provider"], verdict.value).inc()
        return
    status = status_for_event(record, state)
    if status is not None:
        await rt.emit_status(status, STAGE)
    rt.recent_events.add(event_id, time.monotonic())


async def settle(
    rt: Runtime, record: Mapping[str, Any], key: str
) -> tuple[Verdict, dict[str, Any] | None]:
    """The verdict on `record`, waiting (bounded) while its send may be on its way."""
    started = time.monotonic()
    deadline = started + rt.settings.provider_event_wait_s
    waited = False
    while True:
        state = rt.tables.state.get(key)
        verdict = judge(record, state, settled=time.monotonic() >= deadline)
        if verdict is not Verdict.WAIT:
            if waited:  # the status projection was behind the provider: how far
                rt.metrics.provider_event_wait.labels(record["provider"]).observe(
                    time.monotonic() - started
                )
            return verdict, state
        waited = True
        await asyncio.sleep(POLL_S)
