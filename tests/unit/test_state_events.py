"""Provider events folded into the notification state, whatever order they arrive in."""

from __future__ import annotations

import pytest

from pipeline.domain.records import status_record
from pipeline.domain.state import apply_status, status_for_event

pytestmark = pytest.mark.unit

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
