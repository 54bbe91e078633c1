"""Careless and hostile requests refused at the door with a 422 that names the field
(issue 8, the smaller defects), and the renderer's one-line subjects; no broker."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipeline.domain.templates import TemplateCatalog
from pipeline.domain.validation import check_request
from pipeline.exceptions import ValidationError
from pipeline.http.problems import for_exception
from pipeline.kafka.codecs import AvroCodec
from tests.unit.test_http_door import EXAMPLE, PROBLEM, headers, serving


def body(**changes: Any) -> dict[str, Any]:
    recipient = {**EXAMPLE["recipient"], **changes.pop("recipient", {})}
    data = {**EXAMPLE["data"], **changes.pop("data", {})}
    return {**EXAMPLE, "recipient": recipient, "data": data, **changes}


SOON = (datetime.now(UTC) + timedelta(hours=1)).isoformat()


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        pytest.param(body(sendAt=SOON), "sendAt", id="send-at-future"),
        pytest.param(body(channels=["sms"]), "channels", id="sms-without-phone"),
        pytest.param(
            body(priority="marketing", recipient={"email": None, "phone": "+34600111222"}),
            "recipient", id="chain-without-contact",
        ),
        pytest.param(body(recipient={"email": "<x@example.com>"}), "recipient.email", id="angle"),
        pytest.param(
            body(recipient={"email": "Ana <x@example.com>"}), "recipient.email", id="display-name"
        ),
        pytest.param(
            body(recipient={"email": '"a b"@example.com'}), "recipient.email", id="quoted"
        ),
        pytest.param(body(data={"name": "Ana\x00"}), "data.name", id="nul"),
        pytest.param(body(data={"name": "Ana\u202egnp.exe"}), "data.name", id="bidi-override"),
        pytest.param(body(data={"origin": "MAD\u2066"}), "data.origin", id="bidi-isolate"),
        pytest.param(body(metadata={"ref": "a\x00b"}), "metadata.ref", id="nul-in-metadata"),
    ],
)  # fmt: skip
async def test_refused_at_the_door_with_the_field_named(
    request_body: dict[str, Any], field: str
) -> None:
    async with serving() as (client, rt):
        resp = await client.post("/v1/notifications", json=request_body, headers=headers())
        assert resp.status == 422, await resp.text()
        assert resp.content_type == PROBLEM
        problem = await resp.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    assert all(e["message"] and "Error(" not in e["message"] for e in problem["errors"])
    assert rt.sinks.requests.sent == []


async def test_a_channel_list_with_one_reachable_channel_is_accepted() -> None:
    async with serving() as (client, _):
        ok = await client.post(
            "/v1/notifications", json=body(channels=["sms", "email"]), headers=headers()
        )
        assert ok.status == 202, await ok.text()


@pytest.mark.parametrize(
    "address", ["ana@example.com", "ana.maria+tag@sub.example.co", "x@bounce.test", "ñ@exämple.es"]
)
def test_plain_addresses_still_pass(
    make_request: Any, templates: TemplateCatalog, address: str
) -> None:
    check_request(make_request(recipient={"email": address}), templates)


def test_a_future_send_at_from_kafka_is_refused_by_the_same_rule(
    make_request: Any, templates: TemplateCatalog
) -> None:
    now = datetime(2026, 11, 28, 10, tzinfo=UTC)
    with pytest.raises(ValidationError) as exc:
        check_request(make_request(sendAt="2026-11-28T11:00:00Z"), templates, now=now)
    assert [e["field"] for e in exc.value.errors] == ["sendAt"]
    check_request(make_request(sendAt="2026-11-28T09:00:00Z"), templates, now=now)


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\u2028", "\x0b", "\x85"])
def test_a_rendered_subject_is_always_one_line(
    templates: TemplateCatalog, booking: dict[str, Any], breaker: str
) -> None:
    data = {**booking, "bookingRef": f"X7{breaker}Bcc: victim@example.com{breaker}"}
    out = templates.render("booking-confirmation", "email", data, "en")
    assert out.subject is not None
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", out.subject)
    assert "Bcc: victim@example.com" in out.subject  # kept as text, on the one line


def test_an_avro_type_error_names_the_field_without_a_python_repr(codec: AvroCodec) -> None:
    with pytest.raises(ValidationError) as exc:
        codec.encode("ProviderEvent", {"provider": 7})
    fields = [e["field"] for e in exc.value.errors]
    assert "provider" in fields
    assert all("Error(" not in e["message"] for e in exc.value.errors)
    assert "Error(" not in str(exc.value)


def test_a_validation_error_without_fields_still_lists_one() -> None:
    resp = for_exception(ValidationError("a SendGrid event webhook body is a JSON array"), 1)
    assert resp is not None and resp.status == 422 and resp.body is not None
    problem = orjson.loads(bytes(resp.body))  # type: ignore[arg-type]
    assert problem["errors"] == [
        {"field": "", "message": "a SendGrid event webhook body is a JSON array"}
    ]
