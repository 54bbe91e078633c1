"""check_request: a NotificationRequest record's content, however it arrived.

The HTTP body's shape is the model's (tests/unit/test_http_bodies.py)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.domain.templates import TemplateCatalog
from pipeline.domain.validation import check_request
from pipeline.exceptions import TemplateError, ValidationError


def fields_of(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [e["field"] for e in exc.value.errors]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({}, id="email"),
        pytest.param({"recipient": {"email": None, "phone": "+34600111222"}}, id="phone-only"),
        pytest.param({"recipient": {"email": None, "pushTokens": ["tok"]}}, id="push-only"),
        pytest.param({"priority": "high", "channels": ["sms", "email"], "mode": "all"}, id="all"),
        pytest.param({"sendAt": "2026-11-01T09:00:00+01:00"}, id="send-at-offset"),
        pytest.param({"webhookUrl": "https://hooks.example.com/herald"}, id="webhook"),
        pytest.param({"messageId": None}, id="no-message-id"),
    ],
)
def test_check_accepts(
    make_request: Any, templates: TemplateCatalog, change: dict[str, Any]
) -> None:
    assert check_request(make_request(**change), templates).id == "booking-confirmation"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"messageId": "has space"}, "messageId", id="message-id"),
        pytest.param({"tenant": "ac:me"}, "tenant", id="tenant-colon"),
        pytest.param({"recipient": {"userId": None}}, "recipient.userId", id="no-user-id"),
        pytest.param({"recipient": {"email": "ana.example.com"}}, "recipient.email", id="email"),
        pytest.param({"recipient": {"email": "a @x.com"}}, "recipient.email", id="email-space"),
        pytest.param({"recipient": {"phone": "600111222"}}, "recipient.phone", id="phone-no-plus"),
        pytest.param({"recipient": {"phone": "+0600111222"}}, "recipient.phone", id="phone-zero"),
        pytest.param({"recipient": {"phone": "+34 600 111"}}, "recipient.phone", id="phone-space"),
        pytest.param({"recipient": {"phone": "+1234567890123456"}}, "recipient.phone", id="long"),
        pytest.param({"recipient": {"whatsapp": "34600"}}, "recipient.whatsapp", id="whatsapp"),
        pytest.param({"recipient": {"pushTokens": [""]}}, "recipient.pushTokens", id="push"),
        pytest.param({"priority": "urgent"}, "priority", id="priority"),
        pytest.param({"priority": None}, "priority", id="no-priority"),
        pytest.param({"channels": ["fax"]}, "channels", id="channel-unknown"),
        pytest.param({"channels": ["email", "email"]}, "channels", id="channel-duplicate"),
        pytest.param({"channels": []}, "channels", id="channels-empty"),
        pytest.param({"channels": "email"}, "channels", id="channels-not-list"),
        pytest.param({"mode": "broadcast"}, "mode", id="mode"),
        pytest.param({"sendAt": "tomorrow"}, "sendAt", id="send-at-text"),
        pytest.param({"sendAt": "2026-12-01T09:00:00"}, "sendAt", id="send-at-no-offset"),
        pytest.param({"webhookUrl": "ftp://hooks.example.com/h"}, "webhookUrl", id="hook-ftp"),
        pytest.param({"webhookUrl": "/relative/path"}, "webhookUrl", id="hook-relative"),
        pytest.param({"webhookUrl": "https:///no-host"}, "webhookUrl", id="hook-no-host"),
        pytest.param({"recipient": {"email": None}}, "recipient", id="no-contact-point"),
        pytest.param({"recipient": {"email": None, "pushTokens": []}}, "recipient", id="no-tok"),
        pytest.param({"template": None}, "template", id="no-template"),
        pytest.param({"template": "nope"}, "template", id="unknown-template"),
    ],
)
def test_check_rejects(
    make_request: Any, templates: TemplateCatalog, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        check_request(make_request(**change), templates)
    assert fields_of(exc) == [field]


@pytest.mark.parametrize("value", [None, ""], ids=["absent", "empty"])
def test_check_rejects_a_missing_template_variable(
    make_request: Any, templates: TemplateCatalog, booking: dict[str, Any], value: Any
) -> None:
    data = {**booking, "flight": value}
    with pytest.raises(TemplateError) as exc:
        check_request(make_request(data=data), templates)
    assert fields_of(exc) == ["data.flight"]


def test_check_reports_every_bad_field(make_request: Any, templates: TemplateCatalog) -> None:
    with pytest.raises(ValidationError) as exc:
        check_request(make_request(priority="urgent", mode="x", sendAt="soon"), templates)
    assert fields_of(exc) == ["priority", "mode", "sendAt"]


def test_check_rejects_a_malformed_webhook_url(
    make_request: Any, templates: TemplateCatalog
) -> None:
    with pytest.raises(ValidationError) as exc:
        check_request(make_request(webhookUrl="http://[::1/hook"), templates)
    assert fields_of(exc) == ["webhookUrl"]
