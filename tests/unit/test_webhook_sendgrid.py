"""SendGrid's event webhook: the ECDSA signature (tampering, wrong keys) and the event mapping."""

from __future__ import annotations

import base64
from functools import partial
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.devstack.secrets import webhook_secrets
from pipeline.exceptions import AuthError, ValidationError
from pipeline.http.webhooks import verify_and_parse as verify_now
from pipeline.settings import Settings

from .webhookkit import ec_keys, valid

SETTINGS = Settings.from_env(webhook_secrets())
SIGNED_AT = 1700000000  # the fixtures' signed timestamp: verify them as of then
verify_and_parse = partial(verify_now, now=SIGNED_AT)


def sendgrid_headers(
    key: ec.EllipticCurvePrivateKey, body: bytes, ts: str = "1700000000"
) -> dict[str, str]:
    signature = key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": ts,
    }


def sg_event(event: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": "ana@example.com",
        "timestamp": 1700000000,
        "event": event,
        "sg_event_id": f"evt-{event}",
        "sg_message_id": "XMSGID.filter0001.1.0",
        "tenant": "acme",
        "messageId": "m-1",
        **extra,
    }


SENDGRID_CASES = [
    ("processed", {}, None, None),
    ("delivered", {}, "DELIVERED", None),
    (
        "bounce",
        {"type": "bounce", "status": "5.1.1", "reason": "550 no such user"},
        "BOUNCED",
        "bounce 5.1.1 550 no such user",
    ),
    (
        "bounce",
        {"type": "blocked", "status": "5.7.1", "reason": "blocked"},
        "BOUNCED",
        "blocked 5.7.1 blocked",
    ),
    ("dropped", {"reason": "Bounced Address"}, "BOUNCED", "Bounced Address"),
    ("deferred", {"response": "450 try later"}, "DEFERRED", "450 try later"),
    ("open", {}, "OPENED", None),
    ("click", {"url": "https://x.test/a"}, "CLICKED", "https://x.test/a"),
    ("spamreport", {}, "COMPLAINED", None),
    ("unsubscribe", {}, "UNSUBSCRIBED", None),
    ("group_unsubscribe", {"asm_group_id": 1}, "UNSUBSCRIBED", None),
    ("group_resubscribe", {}, None, None),
]


@pytest.mark.parametrize(("event", "extra", "kind", "reason"), SENDGRID_CASES)
def test_sendgrid_events_map(
    event: str, extra: dict[str, Any], kind: str | None, reason: str | None
) -> None:
    key, public = ec_keys()
    body = orjson.dumps([sg_event(event, **extra)])
    records = valid(
        verify_and_parse(
            "sendgrid",
            url="https://h/webhooks/sendgrid",
            headers=sendgrid_headers(key, body),
            body=body,
            settings=Settings(sendgrid_webhook_public_key=public),
        )
    )
    if kind is None:
        assert records == []
        return
    assert records == [
        {
            "provider": "sendgrid",
            "channel": "email",
            "providerMessageId": "XMSGID",
            "eventId": f"evt-{event}",
            "tenant": "acme",
            "messageId": "m-1",
            "event": kind,
            "reason": reason,
            "at": "2023-11-14T22:13:20.000Z",
        }
    ]


def test_sendgrid_signature_failures() -> None:
    key, public = ec_keys()
    settings = Settings(sendgrid_webhook_public_key=public)
    body = orjson.dumps([sg_event("delivered")])
    headers = sendgrid_headers(key, body)

    def parse(body: bytes, headers: dict[str, str], settings: Settings = settings) -> Any:
        return verify_and_parse("sendgrid", url="u", headers=headers, body=body, settings=settings)

    assert len(parse(body, headers)) == 1
    with pytest.raises(AuthError):
        parse(body.replace(b"delivered", b"bounce"), headers)  # tampered body
    with pytest.raises(AuthError):
        parse(body, {**headers, "X-Twilio-Email-Event-Webhook-Timestamp": "1700000001"})
    with pytest.raises(AuthError):
        parse(body, headers, Settings(sendgrid_webhook_public_key=ec_keys()[1]))  # wrong key
    with pytest.raises(AuthError):
        parse(body, {})
    with pytest.raises(AuthError):
        parse(body, {**headers, "X-Twilio-Email-Event-Webhook-Signature": "not base64!"})
    lower = {k.lower(): v for k, v in headers.items()}
    assert len(parse(body, lower)) == 1  # header names are case-insensitive
    garbage = b"not json"
    with pytest.raises(ValidationError):
        parse(garbage, sendgrid_headers(key, garbage))
    not_events = b'[{"no": "event"}]'
    with pytest.raises(ValidationError):
        parse(not_events, sendgrid_headers(key, not_events))
