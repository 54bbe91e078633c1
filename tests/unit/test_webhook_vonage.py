"""Vonage's delivery receipts: the signed-webhook scheme (JSON, form, query) and the mapping."""

from __future__ import annotations

import hashlib
import hmac
from functools import partial
from urllib.parse import urlencode

import orjson
import pytest

from pipeline.devstack.secrets import webhook_secrets
from pipeline.exceptions import AuthError
from pipeline.http.webhooks import verify_and_parse as verify_now
from pipeline.http.webhooks.vonage import sign as vonage_signature
from pipeline.settings import Settings

from .webhookkit import valid

SETTINGS = Settings.from_env(webhook_secrets())
SIGNED_AT = 1700000000  # the fixtures' signed timestamp: verify them as of then
verify_and_parse = partial(verify_now, now=SIGNED_AT)


def test_vonage_signature_is_hmac_sha256_over_sorted_pairs() -> None:
    params = {"b": "2", "a": "x&y=z", "timestamp": "1461605396", "sig": "ignored"}
    expected = hmac.new(b"secret", b"&a=x_y_z&b=2&timestamp=1461605396", hashlib.sha256).hexdigest()
    assert vonage_signature("secret", params) == expected


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
