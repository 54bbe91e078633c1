"""The notification state (the query side) folded from status records."""

from __future__ import annotations

from functools import reduce
from typing import Any

import pytest

from pipeline.domain.records import status_record
from pipeline.domain.state import apply_status, public_view, status_for_event

DISPATCH = {
    "messageId": "m-1",
    "tenant": "acme",
    "userId": "u-1",
    "template": "booking-confirmation",
    "priority": "standard",
}


def status(name: str, second: int, **kw: Any) -> dict[str, Any]:
    if name not in ("PENDING", "SCHEDULED", "BLOCKED"):
        kw = {"channel": "email", "provider": "sendgrid", "attempt": 1, **kw}
    return status_record(DISPATCH, name, at=f"2026-11-28T10:00:{second:02d}.000Z", **kw)


def fold(*statuses: dict[str, Any]) -> dict[str, Any]:
    return reduce(apply_status, statuses, None)  # type: ignore[arg-type]


def test_fold_pending_processing_sent() -> None:
    doc = fold(
        status("PENDING", 0), status("PROCESSING", 1), status("SENT", 2, provider_message_id="sg-1")
    )
    assert (doc["status"], doc["channel"], doc["provider"]) == ("SENT", "email", "sendgrid")
    assert [h["status"] for h in doc["history"]] == ["PENDING", "PROCESSING", "SENT"]
    assert [(a["outcome"], a["attempt"], a["providerMessageId"]) for a in doc["attempts"]] == [
        ("SENT", 1, "sg-1")
    ]
    assert (doc["createdAt"], doc["updatedAt"]) == (
        "2026-11-28T10:00:00.000Z",
        "2026-11-28T10:00:02.000Z",
    )
    assert (doc["template"], doc["priority"]) == ("booking-confirmation", "standard")
    assert "tenant" not in public_view(doc) and public_view(doc)["messageId"] == "m-1"


def test_fold_ignores_a_duplicate_status() -> None:
    sent = status("SENT", 2, provider_message_id="sg-1")
    once = fold(status("PROCESSING", 1), sent)
    assert apply_status(once, {**sent, "at": "2026-11-28T10:00:09.000Z"}) == once


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        pytest.param(["PROCESSING", "PENDING"], "PROCESSING", id="late-pending"),
        pytest.param(["SENT", "PROCESSING"], "SENT", id="late-processing"),
        pytest.param(["SENT", "DELIVERED", "OPENED", "CLICKED"], "DELIVERED", id="engagement"),
        pytest.param(["DELIVERED", "SENT"], "DELIVERED", id="late-sent"),
        pytest.param(["BLOCKED", "PENDING"], "BLOCKED", id="blocked-is-final"),
    ],
)
def test_fold_never_moves_status_back(sequence: list[str], final: str) -> None:
    doc = fold(*(status(name, i) for i, name in enumerate(sequence)))
    assert doc["status"] == final
    assert [h["status"] for h in doc["history"]] == sequence


def test_fold_records_every_attempt() -> None:
    doc = fold(
        status("PROCESSING", 1),
        status("RETRY", 2, error="sendgrid 500"),
        status("PROCESSING", 3, attempt=2),
        status("SENT", 4, attempt=2, provider_message_id="sg-2"),
    )
    assert doc["status"] == "SENT"
    assert [(a["outcome"], a["attempt"]) for a in doc["attempts"]] == [("RETRY", 1), ("SENT", 2)]


def test_a_fallback_is_listed_as_such_and_each_provider_tried_as_a_retry() -> None:
    doc = fold(
        status("PROCESSING", 1, channel="whatsapp", provider="whatsapp-cloud"),
        status("RETRY", 2, channel="whatsapp", provider="whatsapp-cloud",
               error="131026; falling back to sms", outcome="FALLBACK"),
        status("PROCESSING", 3, channel="sms", provider="twilio"),
        status("RETRY", 4, channel="sms", provider="twilio", error="503; retry in 0.5s on vonage"),
        status("PROCESSING", 5, channel="sms", provider="vonage", attempt=2),
        status("SENT", 6, channel="sms", provider="vonage", attempt=2),
    )  # fmt: skip
    assert doc["status"] == "SENT" and (doc["channel"], doc["provider"]) == ("sms", "vonage")
    assert [(a["channel"], a["provider"], a["outcome"]) for a in doc["attempts"]] == [
        ("whatsapp", "whatsapp-cloud", "FALLBACK"),
        ("sms", "twilio", "RETRY"),
        ("sms", "vonage", "SENT"),
    ]
    assert [h["status"] for h in doc["history"]][1] == "RETRY"  # the contract's status


REQUEST = {"messageId": "m-1", "tenant": "acme", "recipient": {"userId": "u-1"},
           "template": "booking-confirmation", "priority": "standard"}  # fmt: skip


def event(kind: str) -> dict:
    return {"provider": "sendgrid", "channel": "email", "providerMessageId": "pm-1",
            "eventId": f"e-{kind}", "tenant": "acme", "messageId": "m-1", "event": kind,
            "reason": None, "at": "2026-11-28T10:00:01.000Z"}  # fmt: skip


def test_a_webhook_faster_than_the_projection_is_not_lost_and_replays_fold() -> None:
    delivered = status_for_event(event("DELIVERED"), None)  # no state yet
    assert delivered is not None and delivered["attempt"] == 0 and delivered["userId"] == ""
    state = apply_status(None, delivered)
    for name in ("PENDING", "PROCESSING", "SENT"):
        state = apply_status(state, status_record(REQUEST, name, channel="email", attempt=1))
    assert state["status"] == "DELIVERED" and state["userId"] == "u-1"
    # The same event again, now that the state has caught up: the same entry, folded away.
    again = status_for_event(event("DELIVERED"), state)
    assert again is not None
    assert apply_status(state, again)["history"] == state["history"]


@pytest.mark.parametrize("kind", ["DEFERRED", "COMPLAINED", "UNSUBSCRIBED"])
def test_events_that_do_not_change_the_delivery_state(kind: str) -> None:
    assert status_for_event(event(kind), None) is None


def test_engagement_keeps_the_delivery_status() -> None:
    state = apply_status(None, status_record(REQUEST, "SENT", channel="email", attempt=1))
    state = apply_status(state, status_for_event(event("DELIVERED"), state))  # type: ignore[arg-type]
    state = apply_status(state, status_for_event(event("OPENED"), state))  # type: ignore[arg-type]
    assert state["status"] == "DELIVERED"
    assert [h["status"] for h in state["history"]] == ["SENT", "DELIVERED", "OPENED"]


def test_an_accepted_request_reopens_an_id_ingest_only_refused() -> None:
    refused = status("DLQ", 0, channel=None, provider=None, attempt=0, error="no phone")
    doc = fold(refused, status("PENDING", 1), status("PROCESSING", 2), status("SENT", 3))
    assert doc["status"] == "SENT"
    assert [h["status"] for h in doc["history"]] == ["DLQ", "PENDING", "PROCESSING", "SENT"]


def test_a_late_pending_never_reopens_a_finished_message() -> None:
    sent = [status("PENDING", 0), status("PROCESSING", 1), status("DLQ", 2)]
    assert fold(*sent, status("PENDING", 5))["status"] == "DLQ"
    blocked = status("BLOCKED", 0, error="opted-out")
    assert fold(blocked, status("PENDING", 5))["status"] == "BLOCKED"
    refused_twice = status("DLQ", 0, channel=None, provider=None, attempt=0, error="e")
    assert fold(refused_twice, status("DLQ", 3), status("PENDING", 5))["status"] == "DLQ"
