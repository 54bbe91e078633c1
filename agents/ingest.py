"""Stage `ingest`: requests in, channel lane dispatches and statuses out."""

from __future__ import annotations

import time
from typing import Any

from pipeline.domain.ids import message_id_for_offset, message_key, user_key
from pipeline.domain.planning import plan_request
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime

__all__ = ["STAGE", "handle_one", "ingest"]

STAGE = "ingest"


async def ingest(stream: Any, rt: Runtime, stage: Stage) -> None:
    """Validate, dedup, check consent, render and route each notification request."""
    await stage.run(stream, rt.per_record(stage.name, lambda message: handle_one(rt, message)))


async def handle_one(rt: Runtime, message: Any) -> None:
    request = await rt.decode(message, "NotificationRequest", STAGE)
    if request is None:
        return
    if not request.get("messageId"):
        request["messageId"] = message_id_for_offset(
            message.topic, message.partition, message.offset
        )
    position = [message.partition, message.offset]
    dedup_key = message_key(request["tenant"], request["messageId"])
    seen = rt.tables.idempotency.get(dedup_key)
    if seen and seen["position"] != position and not _expired(seen, rt):
        rt.metrics.duplicates.labels(STAGE).inc()
        return  # the same message again: already accepted, nothing is sent twice

    user = request.get("recipient", {}).get("userId") or ""
    plan = plan_request(
        request,
        message.value,
        templates=rt.templates,
        preferences=rt.tables.preferences.get(user_key(request["tenant"], user)),
        available=rt.available_channels,
        limits=rt.limits,
    )
    for status in plan.statuses:
        await rt.emit_status(status, STAGE)
    for audit in plan.audits:
        await rt.produce(rt.sinks.audit, message.key, audit)
    if plan.dead_letter_reason:
        await rt.emit_dead_letter(
            message,
            stage=STAGE,
            reason=plan.dead_letter_reason,
            error=plan.error or "",
            tenant=request.get("tenant"),
            message_id=request.get("messageId"),
        )
    for channel, lane, dispatch in plan.dispatches:
        await rt.produce(rt.sinks.dispatch[(channel, lane)], message.key, dispatch)
    # Remember where we saw it: a replay of this same offset after a crash is
    # processed again (the send ledger stops a second provider call), while the
    # same messageId at another offset is a duplicate.
    rt.tables.idempotency[dedup_key] = {"position": position, "at": time.time()}


def _expired(seen: dict[str, Any], rt: Runtime) -> bool:
    return bool(time.time() - seen.get("at", 0) > rt.settings.idempotency_ttl_s)
