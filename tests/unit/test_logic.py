"""Pure pipeline logic: routing, consent, the status fold, templates, ingest planning, keys."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import reduce
from typing import Any

import pytest

from pipeline.domain.compliance import evaluate_consent
from pipeline.domain.ids import (
    message_id_for_idempotency_key,
    message_id_for_offset,
    message_key,
    user_key,
)
from pipeline.domain.planning import plan_request
from pipeline.domain.records import dead_letter, status_record
from pipeline.domain.routing import lane_for, route_channels
from pipeline.domain.state import apply_status, public_view
from pipeline.domain.templates import Template, TemplateCatalog
from pipeline.exceptions import TemplateError, ValidationError
from pipeline.kafka import catalog as topics
from pipeline.kafka.catalog import Catalog
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.io import key_for
from pipeline.settings import Settings

pytestmark = pytest.mark.unit

ALL = {"email", "sms", "whatsapp", "push"}
PHONE = "+34600111222"
FULL = {
    "userId": "u-1",
    "email": "a@x.test",
    "phone": PHONE,
    "whatsapp": PHONE,
    "pushTokens": ["t"],
}
NO = {"granted": False, "source": "unsubscribe", "at": "2026-11-28T10:00:00.000Z"}
YES = {**NO, "granted": True}
ORIGINAL = b"\xc3\x01original"


# -- routing ------------------------------------------------------------------------------


ROUTES = {
    "high": ("high", None, FULL, ALL, ["whatsapp", "sms", "email", "push"]),
    "standard": ("standard", None, FULL, ALL, ["email", "sms", "push"]),
    "marketing": ("marketing", None, FULL, ALL, ["email", "push"]),
    "explicit": ("marketing", ["sms", "email"], FULL, ALL, ["sms", "email"]),
    "no-whatsapp": ("high", None, {**FULL, "whatsapp": None}, ALL, ["sms", "email", "push"]),
    "no-push-tokens": ("standard", None, {**FULL, "pushTokens": []}, ALL, ["email", "sms"]),
    "only-email-wired": ("high", None, FULL, {"email"}, ["email"]),
    "explicit-not-wired": ("standard", ["sms"], FULL, {"email"}, []),
    "unreachable": ("standard", None, {"userId": "u-1", "phone": PHONE}, {"email"}, []),
}


@pytest.mark.parametrize(
    ("priority", "channels", "recipient", "available", "expected"), ROUTES.values(), ids=ROUTES
)
def test_route_channels(
    priority: str, channels: Any, recipient: Any, available: set[str], expected: list[str]
) -> None:
    request = {"priority": priority, "channels": channels, "recipient": recipient}
    assert route_channels(request, available) == expected


@pytest.mark.parametrize(
    ("priority", "lane"), [("high", "urgent"), ("standard", "urgent"), ("marketing", "bulk")]
)
def test_lane_for(priority: str, lane: str) -> None:
    assert lane_for(priority) == lane


# -- consent ------------------------------------------------------------------------------


CONSENT_CASES = {
    "none": (None, "email", "marketing", True, "no-preferences"),
    "empty": ({}, "email", "marketing", True, "no-preferences"),
    "all-false": ({"all": NO}, "push", "high", False, "opted-out-all"),
    "all-beats-channel": ({"all": NO, "channels": {"push": YES}}, "push", "high", False,
                          "opted-out-all"),
    "category-false": ({"categories": {"marketing": NO}}, "email", "marketing", False,
                       "opted-out-category:marketing"),
    "other-category": ({"categories": {"marketing": NO}}, "email", "standard", True, "consent"),
    "channel-false": ({"channels": {"sms": NO}}, "sms", "high", False, "opted-out-channel:sms"),
    "other-channel": ({"channels": {"sms": NO}}, "email", "high", True, "consent"),
    "granted": ({"all": YES, "channels": {"email": YES}}, "email", "marketing", True, "consent"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("prefs", "channel", "category", "allowed", "rule"),
    CONSENT_CASES.values(),
    ids=CONSENT_CASES,
)
def test_evaluate_consent(
    prefs: Any, channel: str, category: str, allowed: bool, rule: str
) -> None:
    decision = evaluate_consent(prefs, channel, category)
    assert (decision.allowed, decision.rule) == (allowed, rule)


# -- the status fold ----------------------------------------------------------------------

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


# -- templates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "subject", "greeting"),
    [
        ("en", "Booking X7K2LQ confirmed: MAD to BCN", "Hello Ana,"),
        ("es", "Reserva X7K2LQ confirmada: MAD a BCN", "Hola Ana:"),
    ],
)
def test_render_booking_confirmation(
    templates: TemplateCatalog, booking: dict[str, Any], locale: str, subject: str, greeting: str
) -> None:
    out = templates.render("booking-confirmation", "email", booking, locale)
    assert (out.locale, out.channel, out.subject) == (locale, "email", subject)
    assert out.text.startswith(greeting) and "IB3456" in out.text and "2026-12-01" in out.text
    assert out.html is not None and "<strong>X7K2LQ</strong>" in out.html


@pytest.mark.parametrize(
    ("candidates", "locale"),
    [
        (("es-ES",), "es"),
        (("es_MX",), "es"),
        (("ES",), "es"),
        (("en-GB",), "en"),
        (("fr",), "en"),
        ((None,), "en"),
        ((), "en"),
        ((None, "fr-FR", "es"), "es"),
    ],
)
def test_resolve_locale(
    templates: TemplateCatalog, candidates: tuple[str | None, ...], locale: str
) -> None:
    assert templates.get("booking-confirmation").resolve_locale(*candidates) == locale


def test_render_falls_back_by_locale(templates: TemplateCatalog, booking: dict[str, Any]) -> None:
    es = templates.render("booking-confirmation", "sms", booking, "es-ES")
    fr = templates.render("booking-confirmation", "sms", booking, "fr-FR")
    assert (es.locale, es.text) == (
        "es",
        "Ana, reserva X7K2LQ confirmada: IB3456 MAD-BCN el 2026-12-01.",
    )
    assert (fr.locale, fr.text) == (
        "en",
        "Ana, booking X7K2LQ confirmed: IB3456 MAD-BCN on 2026-12-01.",
    )


def test_render_missing_variable(templates: TemplateCatalog, booking: dict[str, Any]) -> None:
    data = {k: v for k, v in booking.items() if k != "destination"}
    with pytest.raises(TemplateError) as exc:
        templates.render("booking-confirmation", "email", data, "en")
    assert exc.value.errors == [
        {"field": "data.destination", "message": "required by the template"}
    ]


def test_render_escapes_html_only(templates: TemplateCatalog, booking: dict[str, Any]) -> None:
    out = templates.render(
        "booking-confirmation", "email", {**booking, "name": "<script>x()</script>"}, "en"
    )
    assert out.html is not None
    assert "&lt;script&gt;x()&lt;/script&gt;" in out.html and "<script>" not in out.html
    assert out.text.startswith("Hello <script>x()</script>,")  # plain text is not HTML


def custom(text: str, variables: tuple[str, ...] = ()) -> TemplateCatalog:
    return TemplateCatalog([Template("t", "standard", variables, {"en": {"sms": {"text": text}}})])


@pytest.mark.parametrize(
    ("catalog", "channel", "data"),
    [
        pytest.param(custom("hi"), "push", {}, id="no-content-for-channel"),
        pytest.param(custom("{{ undeclared }}"), "sms", {}, id="undeclared-variable"),
        pytest.param(custom("{{ x.__class__.__mro__ }}", ("x",)), "sms", {"x": 1}, id="sandbox"),
    ],
)
def test_render_errors(catalog: TemplateCatalog, channel: str, data: dict[str, Any]) -> None:
    with pytest.raises(TemplateError):
        catalog.render("t", channel, data)


def test_unknown_template(templates: TemplateCatalog) -> None:
    with pytest.raises(TemplateError) as exc:
        templates.render("nope", "email", {}, "en")
    assert [e["field"] for e in exc.value.errors] == ["template"]


# -- ingest planning ----------------------------------------------------------------------


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
        pytest.param({"channels": ["sms"]}, "no-channel", "no reachable", id="no-channel"),
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


# -- keys and ids -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(Settings.from_env({}).topics_file)


@pytest.mark.parametrize(
    ("topic", "name", "key"),
    [
        (topics.REQUESTS, "NotificationRequest", "acme:u-1"),
        (topics.STATUS, "NotificationStatus", "acme:m-1"),
        (topics.FLIGHT_EVENTS, "FlightEvent", "IB3456-2026-12-01"),
        (topics.PREFERENCES, "UserPreferences", "acme:u-1"),
    ],
)
def test_key_for(catalog: Catalog, sample: Any, topic: str, name: str, key: str) -> None:
    assert key_for(catalog[topic], sample(name)) == key


def test_key_for_missing_part(catalog: Catalog, sample: Any) -> None:
    with pytest.raises(ValidationError, match="messageId"):
        key_for(catalog[topics.STATUS], {**sample("NotificationStatus"), "messageId": None})


def test_ids() -> None:
    assert (user_key("acme", "u-1"), message_key("acme", "m-1")) == ("acme:u-1", "acme:m-1")
    first = message_id_for_idempotency_key("acme", "order-42")
    assert uuid.UUID(first).version == 5
    assert first == message_id_for_idempotency_key("acme", "order-42")
    assert first != message_id_for_idempotency_key("globex", "order-42")
    at = message_id_for_offset(topics.REQUESTS, 3, 100)
    assert at == message_id_for_offset(topics.REQUESTS, 3, 100)
    assert at != message_id_for_offset(topics.REQUESTS, 3, 101)
