"""The WhatsApp Cloud API webhook: signature, status mapping, subscription handshake."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from pipeline.devstack.secrets import webhook_secrets
from pipeline.exceptions import AuthError, ValidationError
from pipeline.http.webhooks import verify_and_parse, verify_whatsapp_subscription
from pipeline.http.webhooks.whatsapp_cloud import sign as hub_signature
from pipeline.settings import Settings

from .webhookkit import valid

SETTINGS = Settings.from_env(webhook_secrets())


def test_hub_signature_is_hex_hmac_sha256_of_the_body() -> None:
    expected = hmac.new(b"app", b"{}", hashlib.sha256).hexdigest()
    assert hub_signature("app", b"{}") == f"sha256={expected}"


# WhatsApp Cloud API.


def wa_body(*statuses: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "waba",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": "1"},
                                "statuses": list(statuses),
                            },
                        }
                    ],
                }
            ],
        }
    )


def wa_status(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "wamid.X",
        "status": status,
        "timestamp": "1700000000",
        "recipient_id": "34600111222",
        "biz_opaque_callback_data": "acme:m-1",
        **extra,
    }


def wa_headers(body: bytes, secret: str | None = None) -> dict[str, str]:
    return {"X-Hub-Signature-256": hub_signature(secret or SETTINGS.whatsapp_app_secret, body)}


def test_whatsapp_statuses_map() -> None:
    failed = wa_status("failed", errors=[{"code": 131026, "title": "Message undeliverable"}])
    body = wa_body(wa_status("sent"), wa_status("delivered"), wa_status("read"), failed)
    records = valid(
        verify_and_parse(
            "whatsapp-cloud", url="u", headers=wa_headers(body), body=body, settings=SETTINGS
        )
    )
    assert [(r["event"], r["eventId"]) for r in records] == [
        ("DELIVERED", "wamid.X:delivered"),
        ("OPENED", "wamid.X:read"),
        ("FAILED", "wamid.X:failed"),
    ]
    assert all(r["tenant"] == "acme" and r["messageId"] == "m-1" for r in records)
    assert records[-1]["reason"] == "131026 Message undeliverable"
    assert records[0]["at"] == "2023-11-14T22:13:20.000Z"
    assert records[0]["provider"] == "whatsapp-cloud" and records[0]["channel"] == "whatsapp"


def test_whatsapp_signature_and_shape_failures() -> None:
    body = wa_body(wa_status("delivered"))

    def parse(body: bytes, headers: dict[str, str]) -> Any:
        return verify_and_parse(
            "whatsapp-cloud", url="u", headers=headers, body=body, settings=SETTINGS
        )

    with pytest.raises(AuthError):
        parse(body, wa_headers(body, "wrong-secret"))
    with pytest.raises(AuthError):
        parse(body + b" ", wa_headers(body))
    with pytest.raises(AuthError):
        parse(body, {})
    for bad in (b"nope", b'{"object": "page"}', wa_body({"no": "status"})):
        with pytest.raises(ValidationError):
            parse(bad, wa_headers(bad))
    inbound_only = orjson.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {"changes": [{"field": "messages", "value": {"messages": [{"from": "346"}]}}]}
            ],
        }
    )
    assert parse(inbound_only, wa_headers(inbound_only)) == []


def test_whatsapp_subscription_handshake() -> None:
    good = {
        "hub.mode": "subscribe",
        "hub.verify_token": SETTINGS.whatsapp_verify_token,
        "hub.challenge": "1158201444",
    }
    assert verify_whatsapp_subscription(good, SETTINGS) == "1158201444"
    assert verify_whatsapp_subscription({**good, "hub.verify_token": "x"}, SETTINGS) is None
    assert verify_whatsapp_subscription({**good, "hub.mode": "unsubscribe"}, SETTINGS) is None
    assert verify_whatsapp_subscription({}, SETTINGS) is None
