"""Vonage's delivery receipt: the signed-webhook scheme and the receipt mapping.

Signature: the receipt's own `sig` parameter = lowercase hex HMAC-SHA256
(VONAGE_SIGNATURE_SECRET, "&k1=v1&k2=v2..." over every other parameter sorted
by name, `&` and `=` inside values replaced by `_`), Vonage's signed-webhook
scheme with the HMAC-SHA256 method. Parameters come from a JSON object body,
a form body, or the query string (Vonage's POST-JSON, POST and GET modes);
`timestamp` (epoch seconds) is among the signed parameters: it is required and
must be within HERALD_WEBHOOK_REPLAY_WINDOW of now. The simulator signs with
`sign`.

Join key: `client-ref`, `tenant:messageId` (the tenant must not contain a
colon). `failed`, `rejected` and `expired` are FAILED; `accepted` and
`buffered` are progress and yield nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipeline.clock import format_time, now
from pipeline.exceptions import AuthError, ValidationError
from pipeline.http.webhooks.events import (
    Record,
    event_record,
    form_body,
    fresh,
    join_key,
    json_body,
)
from pipeline.settings import Settings

__all__ = ["EVENTS", "PROVIDER", "parse", "sign", "verify"]

PROVIDER = "vonage"

EVENTS = {
    "delivered": "DELIVERED",
    "failed": "FAILED",
    "rejected": "FAILED",
    "expired": "FAILED",
}


def sign(secret: str, params: Mapping[str, Any]) -> str:
    """Vonage's signed-webhook HMAC-SHA256: lowercase hex over "&k=v" pairs sorted by key."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    for key in sorted(params):
        if key == "sig":
            continue
        value = str(params[key]).replace("&", "_").replace("=", "_")
        mac.update(f"&{key}={value}".encode())
    return mac.hexdigest()


def verify(params: Mapping[str, Any], secret: str) -> None:
    """AuthError unless `sig` signs every other parameter with the secret."""
    signature = params.get("sig")
    if not signature:
        raise AuthError("missing Vonage sig")
    expected = sign(secret, params)
    if not hmac.compare_digest(str(signature).lower().encode(), expected.encode()):
        raise AuthError("bad Vonage sig")


def parse(
    url: str, headers: Mapping[str, str], body: bytes, settings: Settings,
    *, now: float | None = None,
) -> list[Record]:  # fmt: skip
    """Verify (signature, then the signed timestamp's age), then the receipt's record
    (none for progress statuses)."""
    params = _params(url, headers, body)
    verify(params, settings.vonage_signature_secret)
    fresh(
        params.get("timestamp"), time.time() if now is None else now,
        settings.webhook_replay_window_s, "the Vonage signed timestamp",
    )  # fmt: skip
    message_id, status = params.get("messageId"), params.get("status")
    if not message_id or not status:
        raise ValidationError("a Vonage delivery receipt has messageId and status")
    kind = EVENTS.get(str(status))
    if kind is None:
        return []
    tenant, our_id = join_key(params.get("client-ref"))
    err = str(params.get("err-code") or "0")
    return [
        event_record(
            provider=PROVIDER,
            channel="sms",
            provider_message_id=str(message_id),
            event_id=f"{message_id}:{status}",
            tenant=tenant,
            message_id=our_id,
            event=kind,
            reason=f"{status} err-code {err}" if err != "0" else None,
            at=_receipt_time(params.get("message-timestamp")),
        )
    ]


def _params(url: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The receipt's parameters: a JSON object, a form, or (no body) the query string."""
    if body.strip():
        if "json" in headers.get("content-type", "") or body.lstrip().startswith(b"{"):
            doc = json_body(body)
            if not isinstance(doc, dict):
                raise ValidationError("a Vonage delivery receipt is a JSON object")
            return doc
        return dict(form_body(body))
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _receipt_time(text: Any) -> str:
    """Vonage's `message-timestamp` ("YYYY-MM-DD HH:MM:SS", UTC); now when unusable."""
    try:
        return format_time(datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))
    except ValueError:
        return now()
