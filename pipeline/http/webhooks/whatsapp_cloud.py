"""The WhatsApp Cloud API webhook: signature, subscription handshake, status mapping.

Signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(WHATSAPP_APP_SECRET,
raw body)>`. The simulator signs with `sign`. No replay window applies: the only
signed time is each status's own `timestamp`, which Meta keeps when it retries a
failed delivery for days; a replay is held by the event id (`wamid:status`,
counted once) and by the attempt match. Before Meta posts anything it
checks the endpoint with a GET handshake (`hub.mode=subscribe`,
`hub.verify_token`, `hub.challenge`): `verify_subscription` answers it.

The body is `{"object": "whatsapp_business_account", "entry": [{"changes":
[{"value": {"statuses": [...]}}]}]}`. Join key: `biz_opaque_callback_data`,
`tenant:messageId` (the tenant must not contain a colon). `read` is OPENED;
`sent` is progress and yields nothing.

Inbound messages (`value.messages[]`, the user wrote to the business) are no status:
`inbound` turns each into a WhatsAppServiceWindow record (the business number's
`metadata.phone_number_id`, the sender's `from`, the message's `timestamp`, never
later than `now`), which opens the 24-hour service window for that pair
(`pipeline.domain.service_window`). They name no tenant: see
`pipeline.kafka.service_windows` for how a window is used.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from pipeline.exceptions import AuthError, ValidationError
from pipeline.http.webhooks.events import Record, epoch_time, event_record, join_key, json_body
from pipeline.settings import Settings

__all__ = [
    "EVENTS", "PROVIDER", "SIGNATURE", "inbound", "parse", "sign", "verify", "verify_subscription",
]  # fmt: skip

PROVIDER = "whatsapp-cloud"
SIGNATURE = "X-Hub-Signature-256"

EVENTS = {"delivered": "DELIVERED", "read": "OPENED", "failed": "FAILED"}


def sign(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value: sha256=<hex HMAC-SHA256(app secret, body)>."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, app_secret: str) -> None:
    """AuthError unless the body carries the app secret's signature (headers lower-cased)."""
    signature = headers.get(SIGNATURE.lower())
    if not signature:
        raise AuthError("missing X-Hub-Signature-256")
    expected = sign(app_secret, body)
    if not hmac.compare_digest(signature.strip().lower().encode(), expected.encode()):
        raise AuthError("bad X-Hub-Signature-256")


def verify_subscription(query: Mapping[str, str], settings: Settings) -> str | None:
    """The `hub.challenge` to echo (200) for a valid subscription handshake, else None (403)."""
    token = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not settings.whatsapp_verify_token:
        return None
    if not hmac.compare_digest(token.encode(), settings.whatsapp_verify_token.encode()):
        return None
    return query.get("hub.challenge")


def parse(
    url: str, headers: Mapping[str, str], body: bytes, settings: Settings,
    *, now: float | None = None,
) -> list[Record]:  # fmt: skip
    """Verify, then one record per status that matters, across every entry and change."""
    verify(headers, body, settings.whatsapp_app_secret)
    doc = json_body(body)
    if not isinstance(doc, dict) or doc.get("object") != "whatsapp_business_account":
        raise ValidationError("not a whatsapp_business_account webhook")
    records = []
    try:
        for entry in doc.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                for status in value.get("statuses") or []:
                    record = _status(status)
                    if record is not None:
                        records.append(record)
    except (AttributeError, TypeError, KeyError) as exc:
        raise ValidationError(f"malformed WhatsApp webhook: {exc!r}") from exc
    return records


def inbound(body: bytes, *, now: float | None = None) -> list[Record]:
    """One WhatsAppServiceWindow record per inbound message of a webhook whose signature
    `parse` verified; its time is the message's `timestamp`, capped at `now` (seconds)."""
    received = time.time() if now is None else now
    doc = json_body(body)
    records = []
    try:
        for entry in doc.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                phone_number_id = str((value.get("metadata") or {}).get("phone_number_id") or "")
                for message in value.get("messages") or []:
                    number = "".join(c for c in str(message.get("from") or "") if c.isdigit())
                    if not (phone_number_id and number):
                        continue
                    sent = float(message.get("timestamp") or received)
                    records.append({
                        "phoneNumberId": phone_number_id, "number": number,
                        "lastInboundAt": int(min(sent, received) * 1000),
                        "providerMessageId": str(message["id"]) if message.get("id") else None,
                    })  # fmt: skip
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValidationError(f"malformed WhatsApp webhook: {exc!r}") from exc
    return records


def _status(status: Mapping[str, Any]) -> Record | None:
    kind = EVENTS.get(status["status"])
    if kind is None:
        return None
    tenant, message_id = join_key(status.get("biz_opaque_callback_data"))
    errors = status.get("errors") or []
    reason = None
    if errors:
        first = errors[0]
        reason = " ".join(str(first.get(k)) for k in ("code", "title") if first.get(k)) or None
    return event_record(
        provider=PROVIDER,
        channel="whatsapp",
        provider_message_id=str(status["id"]),
        event_id=f"{status['id']}:{status['status']}",
        tenant=tenant,
        message_id=message_id,
        event=kind,
        reason=reason,
        at=epoch_time(status.get("timestamp")),
    )
