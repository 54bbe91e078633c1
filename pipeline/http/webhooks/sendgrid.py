"""SendGrid's event webhook: the signature scheme, its signer, and the event mapping.

Signature: `X-Twilio-Email-Event-Webhook-Signature` = base64 DER ECDSA
P-256/SHA-256 signature of `X-Twilio-Email-Event-Webhook-Timestamp` + raw
body, verified with SENDGRID_WEBHOOK_PUBLIC_KEY (base64 DER SPKI, or PEM).
The simulator signs with `sign` and its private key.

The body is a JSON array of events. Join key: the custom args `tenant` and
`messageId`, which SendGrid copies to the top level of each event. The
providerMessageId is `sg_message_id` up to its first dot, which is the
`X-Message-Id` the send call returned. `dropped` and `bounce` (both types) are
BOUNCED; `processed` is progress and yields nothing.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.exceptions import AuthError, ConfigError, ValidationError
from pipeline.http.webhooks.events import (
    Record,
    epoch_time,
    event_record,
    fresh,
    json_body,
    optional,
)
from pipeline.settings import Settings

__all__ = [
    "EVENTS",
    "PROVIDER",
    "SIGNATURE",
    "TIMESTAMP",
    "load_ec_private_key",
    "load_ec_public_key",
    "parse",
    "sign",
    "verify",
]

PROVIDER = "sendgrid"
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"

EVENTS = {
    "delivered": "DELIVERED",
    "bounce": "BOUNCED",
    "dropped": "BOUNCED",
    "deferred": "DEFERRED",
    "open": "OPENED",
    "click": "CLICKED",
    "spamreport": "COMPLAINED",
    "unsubscribe": "UNSUBSCRIBED",
    "group_unsubscribe": "UNSUBSCRIBED",
}


def sign(private_key: str, timestamp: str, body: bytes) -> str:
    """base64 DER ECDSA P-256/SHA-256 signature of timestamp + body (the simulator signs)."""
    key = load_ec_private_key(private_key)
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def load_ec_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """An EC private key from PEM or base64 DER PKCS8."""
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = serialization.load_der_private_key(base64.b64decode(text), password=None)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ConfigError(f"not an EC private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError("the SendGrid webhook key must be an ECDSA (P-256) key")
    return key


def load_ec_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """An EC public key from base64 DER SubjectPublicKeyInfo (SendGrid's format) or PEM."""
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ConfigError(f"SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY must be an ECDSA (P-256) key")
    return key


def verify(
    headers: Mapping[str, str], body: bytes, settings: Settings, *, now: float | None = None
) -> None:
    """AuthError unless the body carries a valid, fresh signature (headers lower-cased)."""
    signature = headers.get(SIGNATURE.lower())
    timestamp = headers.get(TIMESTAMP.lower())
    if not signature or not timestamp:
        raise AuthError("missing SendGrid event webhook signature")
    if not settings.sendgrid_webhook_public_key:
        raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    key = load_ec_public_key(settings.sendgrid_webhook_public_key)
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise AuthError("bad SendGrid event webhook signature") from exc
    fresh(
        timestamp, time.time() if now is None else now, settings.webhook_replay_window_s,
        "the SendGrid signature timestamp",
    )  # fmt: skip


def parse(
    url: str, headers: Mapping[str, str], body: bytes, settings: Settings,
    *, now: float | None = None,
) -> list[Record]:  # fmt: skip
    """Verify, then one record per event that matters."""
    verify(headers, body, settings, now=now)
    events = json_body(body)
    if not isinstance(events, list):
        raise ValidationError("a SendGrid event webhook body is a JSON array")
    records = []
    for i, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise ValidationError(f"event {i} is not a SendGrid event")
        kind = EVENTS.get(event["event"])
        if kind is None:
            continue
        sg_message_id = str(event.get("sg_message_id") or "")
        records.append(
            event_record(
                provider=PROVIDER,
                channel="email",
                provider_message_id=sg_message_id.split(".", 1)[0],
                event_id=str(
                    event.get("sg_event_id")
                    or f"{sg_message_id}:{event['event']}:{event.get('timestamp')}"
                ),
                tenant=optional(event.get("tenant")),
                message_id=optional(event.get("messageId")),
                event=kind,
                reason=_reason(event),
                at=epoch_time(event.get("timestamp")),
            )
        )
    return records


def _reason(event: Mapping[str, Any]) -> str | None:
    kind = event["event"]
    if kind == "bounce":
        parts = [event.get("type"), event.get("status"), event.get("reason")]
        return " ".join(str(p) for p in parts if p) or None
    if kind in ("dropped", "deferred"):
        return optional(event.get("reason") or event.get("response"))
    if kind == "click":
        return optional(event.get("url"))
    return None
