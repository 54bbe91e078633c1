"""Builders for the records the pipeline emits: status, dead letter, audit, dispatch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.clock import now
from pipeline.domain.templates import Rendered

__all__ = ["audit_record", "dead_letter", "dispatch_record", "status_record"]


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
) -> dict[str, Any]:
    """A NotificationStatus for a request or a dispatch (both carry the ids)."""
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
) -> dict[str, Any]:
    return {
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
    }


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
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "attempt": attempt,
        "remainingChannels": list(remaining),
        "webhookUrl": request.get("webhookUrl"),
        "request": original,
        "history": list(history),
        "retryCounts": {},
    }
