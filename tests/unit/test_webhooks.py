"""Webhook receiving: signatures (known vectors, tampering, wrong keys), event mapping,
and the round trip simulator -> signed webhook -> verify_and_parse."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import fastavro
import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.exceptions import AuthError, ValidationError
from pipeline.http.webhooks import WEBHOOK_PROVIDERS, verify_and_parse, verify_whatsapp_subscription
from pipeline.http.webhooks.twilio import sign as twilio_signature
from pipeline.http.webhooks.vonage import sign as vonage_signature
from pipeline.http.webhooks.whatsapp_cloud import sign as hub_signature
from pipeline.providers import (
    Message,
    SendGrid,
    Smtp,
    TwilioSms,
    TwilioWhatsApp,
    Vonage,
    WhatsAppCloud,
)
from pipeline.settings import Settings

from .simkit import receiver, simulator

pytestmark = pytest.mark.unit

SETTINGS = Settings()
SCHEMA = fastavro.parse_schema(
    orjson.loads((Path(__file__).resolve().parents[2] / "schemas/ProviderEvent.avsc").read_bytes())
)


def valid(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record is a ProviderEvent the topic's schema accepts."""
    for record in records:
        assert fastavro.validation.validate(record, SCHEMA, raise_errors=True)
    return records


# Signing schemes against independent computations and published vectors.


def test_twilio_signature_matches_twilios_published_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_vonage_signature_is_hmac_sha256_over_sorted_pairs() -> None:
    params = {"b": "2", "a": "x&y=z", "timestamp": "1461605396", "sig": "ignored"}
    expected = hmac.new(b"secret", b"&a=x_y_z&b=2&timestamp=1461605396", hashlib.sha256).hexdigest()
    assert vonage_signature("secret", params) == expected


def test_hub_signature_is_hex_hmac_sha256_of_the_body() -> None:
    expected = hmac.new(b"app", b"{}", hashlib.sha256).hexdigest()
    assert hub_signature("app", b"{}") == f"sha256={expected}"


# SendGrid.


def ec_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(public).decode()


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


# Twilio.

CALLBACK = "https://herald.example.com/webhooks/twilio?tenant=acme&messageId=m-1"


def twilio_post(
    params: dict[str, str], url: str = CALLBACK, token: str | None = None
) -> tuple[bytes, dict[str, str]]:
    signature = twilio_signature(token or SETTINGS.twilio_auth_token, url, params.items())
    return urlencode(params).encode(), {"X-Twilio-Signature": signature}


def twilio_params(status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": SETTINGS.twilio_account_sid,
        "MessageSid": "SM1",
        "MessageStatus": status,
        "SmsStatus": status,
        "From": "+15005550006",
        "To": "+34600111222",
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("queued", None),
        ("sending", None),
        ("sent", None),
        ("delivered", "DELIVERED"),
        ("read", "OPENED"),
        ("undelivered", "FAILED"),
        ("failed", "FAILED"),
    ],
)
def test_twilio_status_callbacks_map(status: str, kind: str | None) -> None:
    extra = {"ErrorCode": "30003"} if kind == "FAILED" else {}
    body, headers = twilio_post(twilio_params(status, **extra))
    records = valid(
        verify_and_parse("twilio", url=CALLBACK, headers=headers, body=body, settings=SETTINGS)
    )
    if kind is None:
        assert records == []
        return
    [record] = records
    assert record["event"] == kind and record["provider"] == "twilio" and record["channel"] == "sms"
    assert (record["tenant"], record["messageId"]) == ("acme", "m-1")
    assert record["providerMessageId"] == "SM1" and record["eventId"] == f"SM1:{status}"
    assert record["reason"] == (f"{status} 30003" if extra else None)


def test_twilio_whatsapp_callbacks_are_the_whatsapp_channel() -> None:
    params = twilio_params("read", From="whatsapp:+14155238886", To="whatsapp:+34600111222")
    body, headers = twilio_post(params)
    [record] = verify_and_parse(
        "twilio", url=CALLBACK, headers=headers, body=body, settings=SETTINGS
    )
    assert (record["provider"], record["channel"], record["event"]) == (
        "twilio-whatsapp",
        "whatsapp",
        "OPENED",
    )


def test_twilio_signature_failures() -> None:
    body, headers = twilio_post(twilio_params("delivered"))

    def parse(url: str = CALLBACK, body: bytes = body, headers: dict[str, str] = headers) -> Any:
        return verify_and_parse("twilio", url=url, headers=headers, body=body, settings=SETTINGS)

    assert len(parse()) == 1
    assert len(parse(url=CALLBACK.replace(".com/", ".com:443/"))) == 1  # default port variant
    with pytest.raises(AuthError):
        parse(body=body.replace(b"delivered", b"failed"))
    with pytest.raises(AuthError):
        parse(url=CALLBACK.replace("m-1", "m-2"))  # the join key is signed too
    with pytest.raises(AuthError):
        parse(headers={})
    other_token = twilio_post(twilio_params("delivered"), token="another-token")
    with pytest.raises(AuthError):
        parse(body=other_token[0], headers=other_token[1])
    no_status = twilio_post({"MessageSid": "SM1"})
    with pytest.raises(ValidationError):
        parse(body=no_status[0], headers=no_status[1])


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


# Vonage.


def receipt(status: str, **extra: str) -> dict[str, str]:
    params = {
        "msisdn": "447700900123",
        "to": "Herald",
        "messageId": "0A0000001",
        "status": status,
        "err-code": "0",
        "client-ref": "acme:m-1",
        "message-timestamp": "2023-11-14 22:13:20",
        "timestamp": "1700000000",
        **extra,
    }
    params["sig"] = vonage_signature(SETTINGS.vonage_signature_secret, params)
    return params


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("delivered", "DELIVERED"),
        ("failed", "FAILED"),
        ("rejected", "FAILED"),
        ("expired", "FAILED"),
        ("accepted", None),
        ("buffered", None),
    ],
)
def test_vonage_receipts_map(status: str, kind: str | None) -> None:
    extra = {"err-code": "6"} if kind == "FAILED" else {}
    body = orjson.dumps(receipt(status, **extra))
    records = valid(
        verify_and_parse(
            "vonage",
            url="u",
            headers={"Content-Type": "application/json"},
            body=body,
            settings=SETTINGS,
        )
    )
    if kind is None:
        assert records == []
        return
    assert records == [
        {
            "provider": "vonage",
            "channel": "sms",
            "providerMessageId": "0A0000001",
            "eventId": f"0A0000001:{status}",
            "tenant": "acme",
            "messageId": "m-1",
            "event": kind,
            "reason": f"{status} err-code 6" if extra else None,
            "at": "2023-11-14T22:13:20.000Z",
        }
    ]


def test_vonage_receipts_as_form_or_query_and_signature_failures() -> None:
    params = receipt("delivered")
    form = urlencode(params).encode()
    assert len(verify_and_parse("vonage", url="u", headers={}, body=form, settings=SETTINGS)) == 1
    query_url = "https://h/webhooks/vonage?" + urlencode(params)
    assert (
        len(verify_and_parse("vonage", url=query_url, headers={}, body=b"", settings=SETTINGS)) == 1
    )
    tampered = orjson.dumps({**params, "status": "failed"})
    with pytest.raises(AuthError):
        verify_and_parse("vonage", url="u", headers={}, body=tampered, settings=SETTINGS)
    unsigned = orjson.dumps({k: v for k, v in params.items() if k != "sig"})
    with pytest.raises(AuthError):
        verify_and_parse("vonage", url="u", headers={}, body=unsigned, settings=SETTINGS)
    wrong_secret = Settings(vonage_signature_secret="other")
    with pytest.raises(AuthError):
        verify_and_parse("vonage", url="u", headers={}, body=form, settings=wrong_secret)


def test_unknown_provider_is_a_validation_error() -> None:
    assert set(WEBHOOK_PROVIDERS) == {"sendgrid", "twilio", "vonage", "whatsapp-cloud"}
    with pytest.raises(ValidationError):
        verify_and_parse("fcm", url="u", headers={}, body=b"", settings=SETTINGS)


# Round trip: the simulator signs and posts, the receiver verifies and parses.


def message(channel: str, to: str, message_id: str) -> Message:
    return Message(message_id, "acme", channel, to, "Gate B12", subject="Gate change")


async def test_round_trip_every_provider_webhook_verifies() -> None:
    async with receiver() as rec:
        settings = Settings(
            sim_webhook_base_url=rec.url, public_base_url=rec.url, sim_webhook_delay_ms=10
        )
        async with simulator(settings) as sim:
            s, session = sim.settings, sim.session
            await SendGrid(
                session,
                base_url=s.sendgrid_base_url,
                api_key=s.sendgrid_api_key,
                from_email=s.email_from,
            ).send(message("email", "ana@example.com", "m-sg"))
            await SendGrid(
                session,
                base_url=s.sendgrid_base_url,
                api_key=s.sendgrid_api_key,
                from_email=s.email_from,
            ).send(message("email", "ana@bounce.test", "m-bo"))
            twilio = {
                "base_url": s.twilio_base_url,
                "account_sid": s.twilio_account_sid,
                "auth_token": s.twilio_auth_token,
                "public_url": s.public_url,
            }
            sms = await TwilioSms(session, from_number=s.twilio_from, **twilio).send(
                message("sms", "+34600111222", "m-tw")
            )
            await TwilioWhatsApp(session, from_number=s.twilio_whatsapp_from, **twilio).send(
                message("whatsapp", "+34600111222", "m-tww")
            )
            vonage = await Vonage(
                session,
                base_url=s.vonage_base_url,
                api_key=s.vonage_api_key,
                api_secret=s.vonage_api_secret,
                from_=s.vonage_from,
                public_url=s.public_url,
            ).send(message("sms", "+447700900123", "m-vo"))
            wa = await WhatsAppCloud(
                session,
                base_url=s.whatsapp_base_url,
                token=s.whatsapp_token,
                phone_number_id=s.whatsapp_phone_number_id,
            ).send(message("whatsapp", "+34600111222", "m-wa"))

            def by_message() -> dict[str, list[str]]:
                seen: dict[str, list[str]] = {}
                for event in rec.events:
                    seen.setdefault(event["messageId"], []).append(event["event"])
                return seen

            expected = {
                "m-sg": ["DELIVERED", "OPENED"],
                "m-bo": ["BOUNCED"],
                "m-tw": ["DELIVERED"],
                "m-tww": ["DELIVERED"],
                "m-vo": ["DELIVERED"],
                "m-wa": ["DELIVERED"],
            }
            await rec.wait_until(lambda r: by_message() == expected)
        assert rec.refused == []
        valid(rec.events)
        assert all(e["tenant"] == "acme" for e in rec.events)
        [bounce] = [e for e in rec.events if e["event"] == "BOUNCED"]
        assert bounce["reason"] is not None and "5.1.1" in bounce["reason"]
        ids = {e["messageId"]: e["providerMessageId"] for e in rec.events}
        assert ids["m-tw"] == sms.provider_message_id
        assert ids["m-vo"] == vonage.provider_message_id
        assert ids["m-wa"] == wa.provider_message_id
        channels = {e["messageId"]: (e["provider"], e["channel"]) for e in rec.events}
        assert channels["m-tww"] == ("twilio-whatsapp", "whatsapp")


async def test_round_trip_with_mismatched_secrets_is_refused_and_the_simulator_carries_on() -> None:
    _, other_public = ec_keys()
    verify = Settings(sendgrid_webhook_public_key=other_public, whatsapp_app_secret="rotated")
    async with receiver(verify) as rec:
        settings = Settings(sim_webhook_base_url=rec.url, sim_webhook_delay_ms=0)
        async with simulator(settings) as sim:
            s = sim.settings
            sendgrid = SendGrid(
                sim.session,
                base_url=s.sendgrid_base_url,
                api_key=s.sendgrid_api_key,
                from_email=s.email_from,
            )
            whatsapp = WhatsAppCloud(
                sim.session,
                base_url=s.whatsapp_base_url,
                token=s.whatsapp_token,
                phone_number_id=s.whatsapp_phone_number_id,
            )
            await sendgrid.send(message("email", "ana@example.com", "m-1"))
            await whatsapp.send(message("whatsapp", "+34600111222", "m-2"))
            await rec.wait_until(lambda r: len(r.refused) == 3)  # 1 SendGrid + 2 WhatsApp posts
            assert rec.events == []
            assert sorted(set(rec.refused)) == [
                ("sendgrid", "AuthError"),
                ("whatsapp-cloud", "AuthError"),
            ]
            await sendgrid.send(message("email", "ana@example.com", "m-3"))  # still serving
            assert len(sim.recorded("sendgrid")) == 2


async def test_webhook_to_nowhere_is_dropped_without_harm() -> None:
    settings = Settings(sim_webhook_base_url="http://127.0.0.1:9", sim_webhook_delay_ms=0)
    async with simulator(settings) as sim:
        s = sim.settings
        adapter = WhatsAppCloud(
            sim.session,
            base_url=s.whatsapp_base_url,
            token=s.whatsapp_token,
            phone_number_id=s.whatsapp_phone_number_id,
        )
        await adapter.send(message("whatsapp", "+34600111222", "m-1"))
        tasks = list(sim.state.tasks)
        assert tasks
        async with asyncio.timeout(5):
            for task in tasks:
                await task  # finishes: the failed post was logged and dropped
        assert all(t.exception() is None for t in tasks)
        await adapter.send(message("whatsapp", "+34600111222", "m-2"))
        assert len(sim.recorded()) == 2


async def test_smtp_posts_no_webhook() -> None:
    async with receiver() as rec:
        settings = Settings(sim_webhook_base_url=rec.url, sim_webhook_delay_ms=0)
        async with simulator(settings, smtp=True) as sim:
            relay = Smtp(host="127.0.0.1", port=sim.smtp_port, from_email="n@herald.test")
            await relay.send(message("email", "ana@example.com", "m-1"))
            assert sim.state.tasks == set() and len(sim.recorded("smtp")) == 1
