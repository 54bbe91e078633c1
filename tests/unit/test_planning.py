"""Ingest planning (`plan_request`): a request into statuses, audits and dispatches."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from pipeline.domain.planning import plan_request
from pipeline.domain.records import dead_letter
from pipeline.domain.templates import TemplateCatalog
from pipeline.kafka import catalog as topics
from pipeline.kafka.codecs import AvroCodec

PHONE = "+34600111222"
NO = {"granted": False, "source": "unsubscribe", "at": "2026-11-28T10:00:00.000Z"}
ORIGINAL = b"\xc3\x01original"


@pytest.fixture
def plan(templates: TemplateCatalog, now: datetime) -> Any:
    def run(request: dict[str, Any], preferences: Any = None, available: Any = None) -> Any:
        return plan_request(
            request,
            ORIGINAL,
            templates=templates,
            preferences=preferences,
            available={"email"} if available is None else available,
            now=now,
        )

    return run


@pytest.mark.parametrize(("priority", "lane"), [("standard", "urgent"), ("marketing", "bulk")])
def test_plan_valid_request(plan: Any, make_request: Any, priority: str, lane: str) -> None:
    result = plan(make_request(priority=priority, recipient={"locale": "es-ES"}))
    assert (result.dead_letter_reason, result.audits) == (None, [])
    assert [(c, la) for c, la, _ in result.dispatches] == [("email", lane)]
    dispatch = result.dispatches[0][2]
    assert (dispatch["to"], dispatch["locale"], dispatch["request"]) == (
        "ana@example.com",
        "es",
        ORIGINAL,
    )
    assert dispatch["subject"].startswith("Reserva X7K2LQ")
    assert [(s["status"], s["messageId"], s["priority"]) for s in result.statuses] == [
        ("PENDING", "m-1", priority)
    ]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (None, [("sms", ["email"])]),
        ("fallback", [("sms", ["email"])]),
        ("all", [("sms", []), ("email", [])]),
    ],
)
def test_plan_mode(plan: Any, make_request: Any, mode: Any, expected: list[Any]) -> None:
    request = make_request(priority="high", mode=mode, recipient={"phone": PHONE})
    result = plan(request, available={"email", "sms"})
    assert [(d["channel"], d["remainingChannels"]) for _, _, d in result.dispatches] == expected


def test_plan_opted_out(plan: Any, make_request: Any) -> None:
    result = plan(make_request(), preferences={"all": NO})
    assert result.dispatches == [] and result.dead_letter_reason is None
    assert [(s["status"], s["error"]) for s in result.statuses] == [("BLOCKED", "opted-out-all")]
    assert [(a["decision"], a["channel"], a["category"], a["rule"]) for a in result.audits] == [
        ("BLOCKED", "email", "standard", "opted-out-all")
    ]


def test_plan_skips_a_channel_without_consent(plan: Any, make_request: Any) -> None:
    result = plan(
        make_request(recipient={"phone": PHONE}),
        preferences={"channels": {"email": NO}},
        available={"email", "sms"},
    )
    assert [d["channel"] for _, _, d in result.dispatches] == ["sms"]
    assert [(a["decision"], a["channel"]) for a in result.audits] == [("BLOCKED", "email")]
    assert [s["status"] for s in result.statuses] == ["PENDING"]


@pytest.mark.parametrize(
    ("change", "reason", "mentions"),
    [
        pytest.param({"recipient": {"email": "nope"}}, "invalid", "recipient.email", id="bad"),
        pytest.param({"template": "nope"}, "invalid", "template", id="unknown-template"),
        pytest.param({"sendAt": "2026-11-28T11:00:00Z"}, "invalid", "sendAt", id="future"),
        pytest.param({"channels": ["sms"]}, "invalid", "channels", id="no-contact-point"),
    ],
)
def test_plan_rejects(
    plan: Any, make_request: Any, change: dict[str, Any], reason: str, mentions: str
) -> None:
    result = plan(make_request(**change))
    assert (result.dead_letter_reason, result.dispatches) == (reason, [])
    assert mentions in (result.error or "")
    assert [(s["status"], s["error"]) for s in result.statuses] == [("DLQ", result.error)]


def test_plan_past_send_at_is_sent_now(plan: Any, make_request: Any, now: datetime) -> None:
    past = (now - timedelta(minutes=5)).isoformat()
    assert len(plan(make_request(sendAt=past)).dispatches) == 1


def test_plan_invalid_without_ids_emits_no_status(plan: Any, make_request: Any) -> None:
    result = plan(make_request(recipient={"userId": None}))
    assert (result.dead_letter_reason, result.statuses) == ("invalid", [])


def test_planned_records_fit_their_schemas(plan: Any, make_request: Any, codec: AvroCodec) -> None:
    ok = plan(make_request())
    blocked = plan(make_request(), preferences={"categories": {"standard": NO}})
    invalid = plan(make_request(priority="urgent"))
    for record in ok.statuses + blocked.statuses + invalid.statuses:
        codec.encode("NotificationStatus", record, check=True)
    for record in blocked.audits:
        codec.encode("AuditRecord", record, check=True)
    for _, _, record in ok.dispatches:
        assert codec.decode("ChannelDispatch", codec.encode("ChannelDispatch", record, check=True))
    letter = dead_letter(
        topic=topics.REQUESTS,
        partition=0,
        offset=7,
        key=b"acme:u-1",
        value=ORIGINAL,
        stage="ingest",
        reason="invalid",
        error=invalid.error or "",
    )
    assert codec.decode("DeadLetter", codec.encode("DeadLetter", letter, check=True))["offset"] == 7
