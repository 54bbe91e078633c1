"""`/v1/notifications`: accept a request onto Kafka, and read a message's state.

A POST writes the message's PENDING status to `herald.notifications.status`, then the
request to `herald.notifications.requests` (saying so in a header, so ingest does not
write PENDING again), both acknowledged by the broker before the 202: a GET after the
202 finds PENDING or later, from any worker, once the state has folded what the status
topic held (`pipeline.http.door.AbsenceCheck`), never a false 404. The handlers speak
to the `Door` of the process serving them (`pipeline.http.door`): in the worker a GET is
a local read of its notification-state table; in `herald ingress` it is asked of the
worker, where that table lives.

A request whose recipient has no contact point for its channels is checked with the
user's profile (`Door.profile`, where the user's partition lives), as ingest will
resolve it; without a profile it is 422 as before.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from pipeline.domain.compliance import split_by_consent
from pipeline.domain.idempotency import FINGERPRINT_RE, Seen, fingerprint
from pipeline.domain.ids import (
    message_id_for_idempotency_key,
    message_key,
    new_message_id,
    user_key,
)
from pipeline.domain.planning import check_fits, known_rendering
from pipeline.domain.profiles import needs_profile, resolve
from pipeline.domain.records import (
    PENDING_HEADER,
    TEMPLATE_VERSION_HEADER,
    audit_record,
    status_record,
)
from pipeline.domain.routing import route_channels
from pipeline.domain.statuses import OUTCOMES
from pipeline.domain.validation import ID_RE, check_request
from pipeline.exceptions import ValidationError, WorkerUnavailable
from pipeline.http.context import Call, Context, json_response
from pipeline.http.door import Door
from pipeline.http.models import NotificationRequest
from pipeline.http.problems import IDEMPOTENCY_CONFLICT, NOT_FOUND, OPTED_OUT
from pipeline.http.routing import was_forwarded

__all__ = [
    "MAX_WAIT_S", "get_notification", "get_reservation", "post_notification", "prefer_wait",
]  # fmt: skip

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
    door, request, tenant = ctx.door, call.request, call.caller.tenant
    body: NotificationRequest = call.body
    idem = request.headers.get("Idempotency-Key")
    message_id = body.messageId or (
        message_id_for_idempotency_key(tenant, idem) if idem else new_message_id()
    )
    record = body.to_record(tenant, message_id)
    authorization = request.headers.get("Authorization", "")
    # A request that reaches nobody by itself may name a user with a profile: checked
    # resolved, as ingest will send it; the record produced stays as the client sent it.
    profile = None
    if needs_profile(record):
        profile = await door.profile(authorization, tenant, record["recipient"]["userId"])
    resolved = resolve(record, profile).request
    template = check_request(resolved, door.templates)  # the domain rules, as from Kafka
    channels = route_channels(resolved, door.available_channels)
    check_fits(record, templates=door.templates, limits=door.limits, channels=channels,
               profile=profile)  # 413/422  # fmt: skip
    seen = Seen.NEW  # an id the door made itself is fresh: nothing to ask
    if body.messageId or idem:
        seen = await door.reserved(authorization, tenant, message_id, fingerprint(record))
    if seen is Seen.CONFLICT:
        return IDEMPOTENCY_CONFLICT.answer(
            f"the message {message_id} was already accepted with another body", messageId=message_id
        )
    key = user_key(tenant, record["recipient"]["userId"])
    refusal = await _opted_out(door, authorization, resolved)
    if refusal is not None:
        # Seed 6.12: the blocked notification is audited and the client told at once.
        await door.produce("audit", [(key, refusal)])
        return OPTED_OUT.answer(
            f"the recipient declined this notification ({refusal['rule']})",
            rule=refusal["rule"],
            messageId=message_id,
        )
    if seen is not Seen.DUPLICATE:  # a duplicate is already on Kafka: the original answer
        # PENDING first: the state never shows a status before it (and a failed request
        # produce leaves a PENDING under an id the client was not given, or will retry).
        pending = status_record(record, "PENDING", rendered=known_rendering(template, record))
        await door.produce("status", [(message_key(tenant, message_id), pending)])
        checked = {PENDING_HEADER: b"1", TEMPLATE_VERSION_HEADER: str(template.version).encode()}
        await door.produce("requests", [(key, record)], checked)
        door.metrics.notifications.labels("door", "PENDING").inc()
    location = f"/v1/notifications/{message_id}"
    wait = prefer_wait(request.headers.getall("Prefer", []))
    if wait:
        try:
            state = await door.state(authorization, tenant, message_id, wait, written=True)
        except WorkerUnavailable:  # accepted all the same: the usual 202
            state = None
        if state is not None and state["status"] in OUTCOMES:
            applied = {"Location": location, "Preference-Applied": f"wait={wait:g}"}
            return json_response(state, headers=applied)
    return json_response(
        {"messageId": message_id, "status": "PENDING"}, status=202, headers={"Location": location}
    )


async def _opted_out(
    door: Door, authorization: str, record: dict[str, Any]
) -> dict[str, Any] | None:
    """The audit record of a refusal, when consent is withdrawn on every channel.

    Reads the door's view of the preferences (`Door.preferences`: the ingress's view of
    every partition, or a worker's table where the user's partition lives); where that
    view misses a change, the pipeline blocks the message instead (BLOCKED, same audit).
    """
    channels = route_channels(record, door.available_channels)
    stored = await door.preferences(authorization, record["tenant"], record["recipient"]["userId"])
    consent = split_by_consent(stored, channels, record["priority"])
    if not consent.refused_everywhere:
        return None
    channel, decision = consent.blocked[0]
    return audit_record(record, "BLOCKED", decision.rule, channel)


async def get_notification(ctx: Context, call: Call) -> web.Response:
    """The message's state; another tenant's message is as absent as an unknown one.

    With `Prefer: wait=N`, answered once the message has an outcome or N seconds
    passed (what an ingress asks of the worker for a POST with `Prefer: wait`).
    """
    request = call.request
    message_id = request.match_info["messageId"]
    wait = prefer_wait(request.headers.getall("Prefer", []))
    doc = await ctx.door.state(
        request.headers.get("Authorization", ""), call.caller.tenant, message_id, wait,
        forwarded=was_forwarded(request.headers),
    )  # fmt: skip
    if doc is None:
        return NOT_FOUND.answer(f"no notification {message_id}")
    return json_response(doc)


async def get_reservation(ctx: Context, call: Call) -> web.Response:
    """What a messageId's reservation makes of a body's fingerprint (internal: the
    ingress asks the worker, whose copy of the idempotency table this reads)."""
    message_id = call.request.match_info["messageId"]
    if not ID_RE.fullmatch(message_id):
        why = "must be 1 to 128 letters, digits or ._:@-"
        raise ValidationError(f"messageId {why}", [{"field": "messageId", "message": why}])
    body = call.request.query.get("fingerprint", "")
    if not FINGERPRINT_RE.match(body):
        why = "must be a SHA-256 in hex"
        raise ValidationError(f"fingerprint {why}", [{"field": "fingerprint", "message": why}])
    seen = await ctx.door.reserved(
        call.request.headers.get("Authorization", ""), call.caller.tenant, message_id, body
    )
    return json_response({"messageId": message_id, "seen": seen.value})
