"""Twilio's status callback: the signature against Twilio's published vector and the mapping."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from pipeline.devstack.secrets import webhook_secrets
from pipeline.exceptions import AuthError, ValidationError
from pipeline.http.webhooks import verify_and_parse
from pipeline.http.webhooks.twilio import sign as twilio_signature
from pipeline.settings import Settings

from .webhookkit import valid

SETTINGS = Settings.from_env(webhook_secrets())


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
