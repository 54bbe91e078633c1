"""Stage `ingest`: requests in, channel lane dispatches and statuses out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pipeline.domain.idempotency import CONFLICT_REASON, Seen, decide, fingerprint, reservation
from pipeline.domain.ids import message_id_for_offset, message_key, user_key
from pipeline.domain.planning import plan_request
from pipeline.domain.records import pending_written, template_version_seen
from pipeline.domain.tenancy import check_keyed_record, valid_tenant
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime

__all__ = ["STAGE", "TEMPLATE_POLL_S", "USER_KEY_RULE", "handle_one", "ingest"]

STAGE = "ingest"
USER_KEY_RULE = "tenant:userId"  # the catalog's key of the requests topic (the wiring passes it)
TEMPLATE_POLL_S = 0.02


async def ingest(stream: Any, rt: Runtime, stage: Stage, key_rule: str = USER_KEY_RULE) -> None:
    """Validate, dedup, check consent, render and route each notification request."""
    await stage.run(
        stream, rt.per_record(stage.name, lambda message: handle_one(rt, message, key_rule))
    )


async def handle_one(rt: Runtime, message: Any, key_rule: str = USER_KEY_RULE) -> None:
    request = await rt.decode(message, "NotificationRequest", STAGE)
    if request is None:
        return
    # Before anything is keyed by them: a tenant with ':' or a key that is not
    # tenant:userId of the record would reach another tenant's entries.
    refusal = check_keyed_record(key_rule, request, message.key)
    if refusal is not None:
        await _refuse(rt, message, request, refusal.reason, refusal.error)
        return
    if not request.get("messageId"):
        request["messageId"] = message_id_for_offset(
            message.topic, message.partition, message.offset
        )
    position = [message.partition, message.offset]
    dedup_key = message_key(request["tenant"], request["messageId"])
    body = fingerprint(request)
    seen = decide(
        rt.tables.idempotency.get(dedup_key), body=body, position=position,
        now=time.time(), ttl_s=rt.settings.idempotency_ttl_s,
    )  # fmt: skip
    if seen is Seen.DUPLICATE:
        rt.metrics.duplicates.labels(STAGE).inc()
        return  # the same message again: already accepted, nothing is sent twice
    if seen is Seen.CONFLICT:  # another body under an accepted id: the original stays as it was
        error = "the messageId was already accepted with another body"
        await _refuse(rt, message, request, CONFLICT_REASON, error)
        return

    await _template_caught_up(rt, request, template_version_seen(message.headers))
    user = user_key(request["tenant"], request.get("recipient", {}).get("userId") or "")
    plan = plan_request(
        request,
        message.value,
        templates=rt.templates,
        preferences=rt.tables.preferences.get(user),
        available=rt.available_channels,
        limits=rt.limits,
        # Contact points, locale, time zone and `user` where the request has none.
        profile=rt.tables.profiles.get(user),
        encode=lambda resolved: rt.codec.encode("NotificationRequest", resolved),
    )
    written = pending_written(message.headers)  # by the HTTP door
    for status in plan.statuses:
        if not (written and status["status"] == "PENDING"):
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
    if plan.accepted:
        # Only an accepted request reserves its id: a corrected re-send of a refused
        # one is processed. Where we saw it: a replay of this same offset after a
        # crash is processed again (the send ledger stops a second provider call).
        rt.tables.idempotency[dedup_key] = reservation(position, body, time.time())


async def _template_caught_up(rt: Runtime, request: dict[str, Any], version: int | None) -> None:
    """Wait (at most HERALD_READ_CATCH_UP_TIMEOUT) until this worker's catalog has the
    template version the door checked the request against: the door's process may have
    read a just-saved template from `herald.templates` a moment before this one did."""
    if version is None:
        return
    deadline = time.monotonic() + rt.settings.read_catch_up_s
    while time.monotonic() < deadline:
        found = rt.templates.find(str(request.get("template")), str(request.get("tenant")))
        if found is None or found.version >= version:
            return
        await asyncio.sleep(TEMPLATE_POLL_S)


async def _refuse(
    rt: Runtime, message: Any, request: dict[str, Any], reason: str, error: str
) -> None:
    await rt.emit_dead_letter(
        message,
        stage=STAGE,
        reason=reason,
        error=error,
        tenant=request.get("tenant") if valid_tenant(request.get("tenant")) else None,
        message_id=request.get("messageId"),
    )
