"""The notification state (the CQRS query side), folded from status records.

`apply_status` is a pure function: the status agent folds every
NotificationStatus of a message into one document, which the HTTP API serves.
What was rendered (`locale`, `variant`, `templateVersion`) is the newest non-null value
of the message's statuses; an SMS send's `segments` is on its entry in `attempts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.domain.statuses import ATTEMPT_OUTCOMES, ENGAGEMENT, FINAL, Status

__all__ = [
    "EVENT_STATUS", "RANK", "RENDERED", "apply_status", "public_view", "status_for_event",
]  # fmt: skip

# The status fields saying what a message was rendered as, kept on its state.
RENDERED = ("locale", "variant", "templateVersion")

# Statuses of one message can arrive from different producers (ingest, send):
# the current status never moves back down this ladder.
RANK: dict[Status, int] = {
    Status.PENDING: 0,
    Status.SCHEDULED: 0,
    Status.PROCESSING: 1,
    Status.RETRY: 1,
    Status.SENT: 2,
}


def apply_status(state: Mapping[str, Any] | None, status: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = (
        dict(state)
        if state
        else {
            "messageId": status["messageId"],
            "tenant": status["tenant"],
            "userId": status["userId"],
            "status": None,
            "channel": None,
            "provider": None,
            "template": status.get("template"),
            "priority": status.get("priority"),
            "locale": None,
            "variant": None,
            "templateVersion": None,
            "attempts": [],
            "history": [],
            "createdAt": status["at"],
        }
    )
    name = status["status"]
    entry = {
        k: status.get(k)
        for k in ("status", "at", "channel", "provider", "attempt", "error", "providerMessageId")
        if status.get(k) is not None
    }
    if status.get("inDoubt"):
        entry["inDoubt"] = True
    if _seen(doc["history"], entry):
        return doc  # a redelivered status record: the projection is idempotent
    reopened = name == Status.PENDING and _only_rejected(doc)
    doc["history"] = [*doc["history"], entry]
    if name in ATTEMPT_OUTCOMES and status.get("channel"):
        attempt = {
            "channel": status.get("channel"),
            "provider": status.get("provider"),
            "attempt": status.get("attempt"),
            "outcome": status.get("outcome") or name,  # FALLBACK on a RETRY
            "error": status.get("error"),
            "providerMessageId": status.get("providerMessageId"),
            "at": status["at"],
        }
        if status.get("segments") is not None:
            attempt["segments"] = status["segments"]  # an SMS send
        doc["attempts"] = [*doc["attempts"], attempt]
    for k in RENDERED:  # what was rendered: the newest that says
        if status.get(k) is not None:
            doc[k] = status[k]
    if status.get("inDoubt"):
        doc["inDoubt"] = True  # a send of this message may have gone out twice
    if name not in ENGAGEMENT and (reopened or _advances(doc["status"], name)):
        doc["status"] = name
    if reopened:  # the accepted request's own fields, not the rejected body's
        for k in ("userId", "template", "priority"):
            doc[k] = status.get(k) or doc.get(k)
    if name in (Status.SENT, Status.DELIVERED) and status.get("channel"):
        doc["channel"] = status["channel"]
        doc["provider"] = status.get("provider") or doc.get("provider")
    doc["userId"] = doc.get("userId") or status.get("userId") or ""
    doc["template"] = doc.get("template") or status.get("template")
    doc["priority"] = doc.get("priority") or status.get("priority")
    doc["updatedAt"] = status["at"]
    return doc


def _rank(status: str | None) -> int:
    if status is None:
        return -1
    return 3 if status in FINAL else RANK.get(Status(status), 0)


def _advances(current: str | None, new: str) -> bool:
    return _rank(new) >= _rank(current)


def _only_rejected(doc: Mapping[str, Any]) -> bool:
    """Every change so far is ingest refusing a body (DLQ before any PENDING or attempt).

    Such a messageId was never reserved (`pipeline.domain.idempotency`): a corrected
    request under it is accepted, and its PENDING starts the message afresh. A
    message that was accepted once always has its PENDING in the history, so a late
    duplicate never reopens a finished one.
    """
    history = doc["history"]
    return bool(history) and all(
        h.get("status") == Status.DLQ and not h.get("channel") for h in history
    )


def _seen(history: list[dict[str, Any]], entry: dict[str, Any]) -> bool:
    same = ("status", "channel", "attempt", "providerMessageId", "error")
    return any(all(h.get(k) == entry.get(k) for k in same) for h in history)


# Provider events that change the status; the rest (DEFERRED, COMPLAINED,
# UNSUBSCRIBED) are for analytics and compliance, not the delivery state.
EVENT_STATUS = {
    "DELIVERED": Status.DELIVERED,
    "BOUNCED": Status.BOUNCED,
    "FAILED": Status.FAILED,
    "OPENED": Status.OPENED,
    "CLICKED": Status.CLICKED,
}


def status_for_event(
    event: Mapping[str, Any], state: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The NotificationStatus a provider event means, else None.

    Call it only for an event that matched the message's own send
    (`pipeline.domain.provider_events.judge`): it copies the user, template and
    priority from `state`. `attempt` is 0 (the provider message id names the
    send) so a replayed event folds into the same history entry.
    """
    status = EVENT_STATUS.get(event["event"])
    if status is None or not event.get("messageId") or not event.get("tenant"):
        return None
    state = state or {}
    return {
        "messageId": event["messageId"],
        "tenant": event["tenant"],
        "userId": state.get("userId") or "",
        "status": status,
        "at": event["at"],
        "channel": event["channel"],
        "provider": event["provider"],
        "attempt": 0,
        "providerMessageId": event["providerMessageId"],
        "error": event.get("reason"),
        "template": state.get("template"),
        "priority": state.get("priority"),
        "inDoubt": False,
    }


def public_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What `GET /v1/notifications/{id}` shows (the tenant is implied by the token)."""
    return {k: v for k, v in doc.items() if k != "tenant"}
