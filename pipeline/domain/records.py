"""Builders for the records the pipeline emits: status, dead letter, audit, dispatch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.clock import now
from pipeline.domain.limits import size_bound
from pipeline.domain.segments import sms_segments
from pipeline.domain.service_window import template_parameters
from pipeline.domain.templates import Rendered

__all__ = [
    "PENDING_HEADER", "TEMPLATE_VERSION_HEADER", "audit_record", "dead_letter",
    "dispatch_record", "dlq_status", "pending_written", "status_record", "template_version_seen",
]  # fmt: skip

# A request record's header saying its PENDING status is on the status topic already (the
# HTTP door writes it before the 202, for read-your-writes), so ingest does not repeat it.
PENDING_HEADER = "herald-pending"


# A request record's header naming the version of its template the HTTP door checked it
# against: ingest renders from that version or a later one (a template saved through the
# API is used by every message accepted after the save's answer).
TEMPLATE_VERSION_HEADER = "herald-template-version"


def pending_written(headers: Any) -> bool:
    """Whether a record's headers (Kafka's list of (name, bytes), or a mapping) carry
    PENDING_HEADER."""
    return _header(headers, PENDING_HEADER) is not None


def template_version_seen(headers: Any) -> int | None:
    """The template version TEMPLATE_VERSION_HEADER names (None: absent or not a number)."""
    value = _header(headers, TEMPLATE_VERSION_HEADER)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _header(headers: Any, wanted: str) -> bytes | None:
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return next((bytes(value or b"") for name, value in pairs if name == wanted), None)


def status_record(
    request: Mapping[str, Any],
    status: str,
    *,
    channel: str | None = None,
    provider: str | None = None,
    attempt: int = 0,
    provider_message_id: str | None = None,
    error: str | None = None,
    at: str | None = None,
    in_doubt: bool = False,
    outcome: str | None = None,
    rendered: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A NotificationStatus for a request or a dispatch (both carry the ids); `outcome`
    names how an attempt ended where the status does not (FALLBACK on a RETRY).

    A dispatch's status says what was rendered: its locale, variant and template version;
    a request's says what is known of it (`rendered`: the variant and version, and the
    locale once rendered), so every status record can be grouped by variant. An SMS
    dispatch's SENT status also carries its segment count.
    """
    what = request if rendered is None else rendered
    recipient = request.get("recipient")
    user_id = recipient["userId"] if recipient else request["userId"]
    return {
        "messageId": request["messageId"],
        "tenant": request["tenant"],
        "userId": user_id,
        "status": status,
        "at": at or now(),
        "channel": channel,
        "provider": provider,
        "attempt": attempt,
        "providerMessageId": provider_message_id,
        "error": error,
        "template": request.get("template"),
        "priority": request.get("priority"),
        "inDoubt": in_doubt,
        "outcome": outcome,
        "locale": what.get("locale"),
        "variant": what.get("variant"),
        "templateVersion": what.get("templateVersion"),
        "segments": request.get("segments") if status == "SENT" else None,
    }


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    stage: str,
    reason: str,
    error: str,
    tenant: str | None = None,
    message_id: str | None = None,
    attempts: Sequence[Mapping[str, Any]] = (),
    limit: int | None = None,
) -> dict[str, Any]:
    """A DeadLetter; with `limit` (bytes), one that fits it.

    A dead letter too big for its topic keeps the start of the original value (then of
    the key, then drops the attempts) and says so (`truncated`, `valueBytes`): the
    original stays in Kafka at `topic`/`partition`/`offset`.
    """
    record = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "value": value,
        "stage": stage,
        "reason": reason,
        "error": error[:2000],
        "tenant": tenant,
        "messageId": message_id,
        "attempts": list(attempts),
        "at": now(),
        "truncated": False,
        "valueBytes": None,
    }
    if limit is not None:
        _fit(record, limit)
    return record


def _fit(record: dict[str, Any], limit: int) -> None:
    over = size_bound(record) - limit
    if over <= 0:
        return
    record["truncated"] = True
    record["valueBytes"] = len(record["value"] or b"")
    for name in ("value", "key"):
        data = record[name] or b""
        cut = min(len(data), over)
        record[name] = data[: len(data) - cut]
        over -= cut
        if over <= 0:
            return
    record["attempts"] = []


def dlq_status(record: Mapping[str, Any], error: str) -> dict[str, Any] | None:
    """The DLQ status of a NotificationRequest or ChannelDispatch that ends here, if it
    names a message (a request's messageId is set by then); None otherwise."""
    recipient = record.get("recipient")
    user_id = recipient.get("userId") if isinstance(recipient, Mapping) else record.get("userId")
    ids = (record.get("messageId"), record.get("tenant"), user_id)
    if not all(isinstance(v, str) and v for v in ids):
        return None
    return status_record(
        {**record, "recipient": {"userId": user_id}}, "DLQ", channel=record.get("channel"),
        attempt=record.get("attempt") or 0, error=error[:2000],
    )  # fmt: skip


def audit_record(
    request: Mapping[str, Any], decision: str, rule: str, channel: str | None
) -> dict[str, Any]:
    return {
        "tenant": request["tenant"],
        "userId": request["recipient"]["userId"],
        "messageId": request["messageId"],
        "decision": decision,
        "rule": rule,
        "channel": channel,
        "category": request["priority"],
        "at": now(),
    }


def dispatch_record(
    request: Mapping[str, Any],
    rendered: Rendered,
    *,
    to: str,
    remaining: Sequence[str],
    original: bytes,
    attempt: int = 1,
    history: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ChannelDispatch of `rendered` for `request`. It carries what each provider
    needs beyond the text: push the template's data (FCM `message.data`), WhatsApp the
    approved template with its parameter values rendered now, from the request's data
    (sent instead of the text outside the 24-hour window, `pipeline.domain.service_window`)."""
    approved = rendered.approved
    whatsapp_template = None
    if rendered.channel == "whatsapp" and approved is not None:
        whatsapp_template = {
            "name": approved.name, "language": approved.language,
            "parameters": template_parameters(approved, request.get("data") or {}),
        }  # fmt: skip
    push_data = dict(rendered.data) if rendered.channel == "push" and rendered.data else None
    return {
        "messageId": request["messageId"],
        "tenant": request["tenant"],
        "userId": request["recipient"]["userId"],
        "channel": rendered.channel,
        "to": to,
        "priority": request["priority"],
        "template": rendered.template,
        "locale": rendered.locale,
        "variant": rendered.variant,
        "templateVersion": rendered.version,
        "segments": sms_segments(rendered.text) if rendered.channel == "sms" else None,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "pushData": push_data,
        "whatsappTemplate": whatsapp_template,
        "attempt": attempt,
        "remainingChannels": list(remaining),
        "webhookUrl": request.get("webhookUrl"),
        "request": original,
        "history": list(history),
        "retryCounts": {},
    }
