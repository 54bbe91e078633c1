"""An HTTP body against its declared model: 400 for what is not a JSON object, 422 per field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.domain.templates import TemplateCatalog
from pipeline.domain.validation import check_request
from pipeline.exceptions import MalformedBody, ValidationError
from pipeline.http.bodies import parse_body
from pipeline.http.models import NotificationRequest, Recipient


@pytest.fixture
def body(booking: dict[str, Any]) -> dict[str, Any]:
    return {
        "recipient": {"userId": "u-1", "email": "ana@example.com", "locale": "es"},
        "template": "booking-confirmation",
        "data": dict(booking),
        "metadata": {"source": "web"},
    }


def parse(body: Any) -> NotificationRequest:
    return parse_body(NotificationRequest, json.dumps(body).encode())  # json: any int


def fields_of(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [e["field"] for e in exc.value.errors]


def test_a_valid_body_becomes_a_complete_record(
    body: dict[str, Any], templates: TemplateCatalog
) -> None:
    record = parse({**body, "tenant": "acme"}).to_record("acme", "m-1")
    assert (record["tenant"], record["messageId"], record["priority"]) == (
        "acme",
        "m-1",
        "standard",
    )
    assert set(record["recipient"]) == set(Recipient.model_fields)
    assert record["recipient"]["phone"] is None and record["channels"] is None
    assert check_request(record, templates).id == "booking-confirmation"


def test_the_tenant_comes_from_the_token(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as exc:
        parse({**body, "tenant": "other"}).to_record("acme", "m-1")
    assert fields_of(exc) == ["tenant"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        pytest.param({"colour": "red"}, "colour", "unknown field", id="unknown-field"),
        pytest.param({"recipient": None}, "recipient", "required", id="missing-recipient"),
        pytest.param({"template": None}, "template", "required", id="missing-template"),
        pytest.param({"recipient": "u-1"}, "recipient", "object", id="recipient-not-object"),
        pytest.param({"recipient": {"userId": "u-1", "fax": "1"}}, "recipient.fax", "unknown",
                     id="unknown-recipient"),
        pytest.param({"data": ["x"]}, "data", "object", id="data-not-object"),
        pytest.param({"data": {"name": {"first": "Ana"}}}, "data.name", "scalars", id="data-dict"),
        pytest.param({"data": {"seats": [1, 2]}}, "data.seats", "scalars", id="data-list"),
        pytest.param({"data": {"n": 2**64}}, "data.n", "64-bit", id="data-over-avro-long"),
        pytest.param({"metadata": {"n": 1}}, "metadata.n", "string", id="metadata-not-string"),
        pytest.param({"priority": "urgent"}, "priority", "'high'", id="priority"),
        pytest.param({"channels": ["fax"]}, "channels.0", "'email'", id="channel"),
        pytest.param({"channels": []}, "channels", "at least 1", id="channels-empty"),
        pytest.param({"mode": "broadcast"}, "mode", "'fallback'", id="mode"),
        pytest.param({"messageId": "has space"}, "messageId", "pattern", id="message-id"),
        pytest.param({"recipient": {"userId": "u-1", "email": "a.example.com"}},
                     "recipient.email", "pattern", id="email"),
        pytest.param({"recipient": {"userId": "u-1", "phone": "600111222"}},
                     "recipient.phone", "pattern", id="phone"),
        pytest.param({"recipient": {"userId": "u-1", "pushTokens": [""]}},
                     "recipient.pushTokens.0", "at least 1", id="push-token-empty"),
        pytest.param({"template": 7}, "template", "string", id="template-not-string"),
    ],
)  # fmt: skip
def test_a_body_that_breaks_the_model_is_one_error_per_field(
    body: dict[str, Any], change: dict[str, Any], field: str, message: str
) -> None:
    changed = {k: v for k, v in {**body, **change}.items() if v is not None}
    with pytest.raises(ValidationError) as exc:
        parse(changed)
    assert exc.value.errors == [{"field": field, "message": exc.value.errors[0]["message"]}]
    assert message in exc.value.errors[0]["message"]


def test_every_bad_field_is_reported(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as exc:
        parse({**body, "priority": "urgent", "mode": "x", "extra": 1})
    assert fields_of(exc) == ["priority", "mode", "extra"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"", "malformed JSON"),
        (b'{"template": "\\ud800"}', "malformed JSON"),  # a lone surrogate cannot be UTF-8
        (b"[1, 2]", "JSON object"),
        (b"null", "JSON object"),
    ],
)
def test_what_is_not_a_json_object_is_malformed(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedBody, match=message):
        parse_body(NotificationRequest, raw)


def test_scalar_data_values_are_kept_as_they_are(body: dict[str, Any]) -> None:
    data = {"s": "x", "i": -(2**63), "f": 1.5, "b": True, "n": None}
    assert parse({**body, "data": data}).data == data
