"""`/v1/notifications`: accept a request onto Kafka, and read a message's state.

The HTTP API runs inside the worker because the query side is the worker's own
notification-state table: a GET is a local table read, and a POST is one
produce to `herald.notifications.requests` acknowledged by the broker before
the 202.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from aiohttp import web

from pipeline.domain.compliance import split_by_consent
from pipeline.domain.idempotency import Seen, decide, fingerprint
from pipeline.domain.ids import (
    message_id_for_idempotency_key,
    message_key,
    new_message_id,
    user_key,
)
from pipeline.domain.planning import check_fits
from pipeline.domain.records import audit_record
from pipeline.domain.routing import route_channels
from pipeline.domain.state import public_view
from pipeline.domain.statuses import OUTCOMES
from pipeline.domain.validation import check_request
from pipeline.http.context import Call, Context, json_response
from pipeline.http.models import NotificationRequest
from pipeline.http.problems import IDEMPOTENCY_CONFLICT, NOT_FOUND, OPTED_OUT
from pipeline.runtime import Runtime

__all__ = ["MAX_WAIT_S", "get_notification", "post_notification", "prefer_wait"]

MAX_WAIT_S = 30.0
# A client waiting with `Prefer: wait` gets an answer at the first of these.
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def prefer_wait(values: list[str]) -> float:
    """Seconds from `Prefer: wait=N` (RFC 7240), at most MAX_WAIT_S; 0 without it."""
    for value in values:
        match = _PREFER_WAIT.search(value)
        if match:
            return min(float(match.group(1)), MAX_WAIT_S)
    return 0.0


async def post_notification(ctx: Context, call: Call) -> web.Response:
    """Validate, check consent, produce, and answer once the broker has the record."""
    rt, request, tenant = ctx.rt, call.request, call.caller.tenant
    body: NotificationRequest = call.body
    idem = request.headers.get("Idempotency-Key")
    message_id = body.messageId or (
        message_id_for_idempotency_key(tenant, idem) if idem else new_message_id()
    )
    record = body.to_record(tenant, message_id)
    check_request(record, rt.templates)  # the domain rules, as for records from Kafka
    channels = route_channels(record, rt.available_channels)
    check_fits(record, templates=rt.templates, limits=rt.limits, channels=channels)  # 413/422
    seen = _reserved(rt, message_key(tenant, message_id), record)
    if seen is Seen.CONFLICT:
        return IDEMPOTENCY_CONFLICT.answer(
            f"the message {message_id} was already accepted with another body", messageId=message_id
        )
    key = user_key(tenant, record["recipient"]["userId"])
    refusal = _opted_out(rt, key, record)
    if refusal is not None:
        # Seed 6.12: the blocked notification is audited and the client told at once.
        await (await rt.sinks.audit.send(key=key, value=refusal))
        return OPTED_OUT.answer(
            f"the recipient declined this notification ({refusal['rule']})",
            rule=refusal["rule"],
            messageId=message_id,
        )
    if seen is not Seen.DUPLICATE:  # a duplicate is already on Kafka: the original answer
        fut = await rt.sinks.requests.send(key=key, value=record)
        await fut  # acknowledged by the broker before we answer
    location = f"/v1/notifications/{message_id}"
    wait = prefer_wait(request.headers.getall("Prefer", []))
    if wait:
        state = await _wait_for_outcome(rt, message_key(tenant, message_id), wait)
        if state is not None:
            applied = {"Location": location, "Preference-Applied": f"wait={wait:g}"}
            return json_response(public_view(state), headers=applied)
    return json_response(
        {"messageId": message_id, "status": "PENDING"}, status=202, headers={"Location": location}
    )


def _reserved(rt: Runtime, key: str, record: dict[str, Any]) -> Seen:
    """What the messageId's reservation makes of this body (`pipeline.domain.idempotency`).

    Reads this worker's copy of the idempotency table: a reservation held on a
    partition another worker owns, or a request on Kafka that ingest has not
    reached yet, is not seen here; ingest then dead-letters a conflicting body.
    """
    return decide(
        rt.tables.idempotency.get(key), body=fingerprint(record), now=time.time(),
        ttl_s=rt.settings.idempotency_ttl_s,
    )  # fmt: skip


def _opted_out(rt: Runtime, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """The audit record of a refusal, when consent is withdrawn on every channel.

    Reads this worker's copy of the preferences table: with several workers a
    partition owned elsewhere is not seen here, and the pipeline blocks the
    message instead (status BLOCKED, same audit).
    """
    channels = route_channels(record, rt.available_channels)
    consent = split_by_consent(rt.tables.preferences.get(key), channels, record["priority"])
    if not consent.refused_everywhere:
        return None
    channel, decision = consent.blocked[0]
    return audit_record(record, "BLOCKED", decision.rule, channel)


async def _wait_for_outcome(rt: Runtime, key: str, seconds: float) -> dict[str, Any] | None:
    """The state once the message has an outcome (sent, or a final status), else None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = rt.tables.state.get(key)
        if state is not None and state["status"] in OUTCOMES:
            return dict(state)
        await asyncio.sleep(0.02)
    return None


async def get_notification(ctx: Context, call: Call) -> web.Response:
    """A local table read; another tenant's message is as absent as an unknown one."""
    message_id = call.request.match_info["messageId"]
    doc = ctx.rt.tables.state.get(message_key(call.caller.tenant, message_id))
    if doc is None:
        return NOT_FOUND.answer(f"no notification {message_id}")
    return json_response(public_view(doc))
