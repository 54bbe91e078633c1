"""Provider webhooks: verify the provider's signature, then parse into ProviderEvent records.

Pure functions of (url, headers, body, settings): no I/O, so the HTTP handler
stays thin and every scheme is unit-tested. `verify_and_parse` raises
`AuthError` for a missing or wrong signature and `ValidationError` for a body
that is not the provider's documented shape; it returns one ProviderEvent
record (schemas/ProviderEvent.avsc) per event that matters, and nothing for
progress events (SendGrid `processed`, Twilio `queued`/`sent`, WhatsApp `sent`,
Vonage `accepted`/`buffered`). Replays verify again: deduplicate on `eventId`.

Signatures (each compared with `hmac.compare_digest` or a constant-time
ECDSA verification):

- sendgrid: `X-Twilio-Email-Event-Webhook-Signature` = base64 DER ECDSA
  P-256/SHA-256 signature of `X-Twilio-Email-Event-Webhook-Timestamp` + raw
  body, verified with SENDGRID_WEBHOOK_PUBLIC_KEY (base64 DER SPKI, or PEM).
- twilio: `X-Twilio-Signature` = base64 HMAC-SHA1(TWILIO_AUTH_TOKEN, URL +
  every POST parameter name+value, sorted by name). `url` must be the exact
  StatusCallback URL Twilio was given (HERALD_PUBLIC_URL + path + query); as
  Twilio's own validators do, the URL with the default port added or removed
  is accepted too.
- whatsapp-cloud: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(WHATSAPP_APP_SECRET,
  raw body)>`.
- vonage: the receipt's own `sig` parameter = lowercase hex HMAC-SHA256
  (VONAGE_SIGNATURE_SECRET, "&k1=v1&k2=v2..." over every other parameter sorted
  by name, `&` and `=` inside values replaced by `_`), Vonage's signed-webhook
  scheme with the HMAC-SHA256 method. Parameters come from a JSON object body,
  a form body, or the query string (Vonage's POST-JSON, POST and GET modes);
  `timestamp` (epoch seconds) is among the signed parameters.

Join keys: SendGrid custom args `tenant`/`messageId` (top level of each
event), Twilio the callback URL's query `tenant`/`messageId`, WhatsApp
`biz_opaque_callback_data` and Vonage `client-ref`, both `tenant:messageId`
(the tenant must not contain a colon).

Mapping choices: Twilio `read` (WhatsApp through Twilio) is OPENED, like
WhatsApp Cloud's `read`; Twilio `undelivered`/`failed` are FAILED (not
BOUNCED: there is no bounce in SMS); SendGrid `dropped` and `bounce` (both
types) are BOUNCED. SendGrid's providerMessageId is `sg_message_id` up to its
first dot, which is the `X-Message-Id` the send call returned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.clock import format_time, now
from pipeline.exceptions import AuthError, ConfigError, ValidationError
from pipeline.settings import Settings

WEBHOOK_PROVIDERS = ("sendgrid", "twilio", "vonage", "whatsapp-cloud")

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE = "X-Twilio-Signature"
HUB_SIGNATURE = "X-Hub-Signature-256"

SENDGRID_EVENTS = {
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
TWILIO_EVENTS = {
    "delivered": "DELIVERED",
    "read": "OPENED",
    "undelivered": "FAILED",
    "failed": "FAILED",
}
WHATSAPP_EVENTS = {"delivered": "DELIVERED", "read": "OPENED", "failed": "FAILED"}
VONAGE_EVENTS = {
    "delivered": "DELIVERED",
    "failed": "FAILED",
    "rejected": "FAILED",
    "expired": "FAILED",
}

Record = dict[str, Any]


def verify_and_parse(
    provider: str, *, url: str, headers: Mapping[str, str], body: bytes, settings: Settings
) -> list[Record]:
    """Verify a webhook's signature and return its ProviderEvent records.

    `provider` is one of WEBHOOK_PROVIDERS (the `/webhooks/{provider}` path
    segment); anything else is a ValidationError.
    """
    parse = _PARSERS.get(provider)
    if parse is None:
        raise ValidationError(f"no webhook for provider {provider!r}")
    lowered = {k.lower(): v for k, v in headers.items()}
    return parse(url, lowered, body, settings)


def verify_whatsapp_subscription(query: Mapping[str, str], settings: Settings) -> str | None:
    """The `hub.challenge` to echo (200) for a valid subscription handshake, else None (403)."""
    token = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not settings.whatsapp_verify_token:
        return None
    if not hmac.compare_digest(token.encode(), settings.whatsapp_verify_token.encode()):
        return None
    return query.get("hub.challenge")


# Signing schemes: used by the verifiers below and by the simulator's senders.


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """base64(HMAC-SHA1(auth token, url + name1 + value1 + ...)), parameters sorted by name."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def vonage_signature(secret: str, params: Mapping[str, Any]) -> str:
    """Vonage's signed-webhook HMAC-SHA256: lowercase hex over "&k=v" pairs sorted by key."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    for key in sorted(params):
        if key == "sig":
            continue
        value = str(params[key]).replace("&", "_").replace("=", "_")
        mac.update(f"&{key}={value}".encode())
    return mac.hexdigest()


def hub_signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value: sha256=<hex HMAC-SHA256(app secret, body)>."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def sendgrid_signature(private_key: str, timestamp: str, body: bytes) -> str:
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


# SendGrid event webhook.


def _sendgrid(
    url: str, headers: Mapping[str, str], body: bytes, settings: Settings
) -> list[Record]:
    signature = headers.get(SENDGRID_SIGNATURE.lower())
    timestamp = headers.get(SENDGRID_TIMESTAMP.lower())
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
    events = _json(body)
    if not isinstance(events, list):
        raise ValidationError("a SendGrid event webhook body is a JSON array")
    records = []
    for i, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise ValidationError(f"event {i} is not a SendGrid event")
        kind = SENDGRID_EVENTS.get(event["event"])
        if kind is None:
            continue
        sg_message_id = str(event.get("sg_message_id") or "")
        records.append(
            _record(
                provider="sendgrid",
                channel="email",
                provider_message_id=sg_message_id.split(".", 1)[0],
                event_id=str(
                    event.get("sg_event_id")
                    or f"{sg_message_id}:{event['event']}:{event.get('timestamp')}"
                ),
                tenant=_opt(event.get("tenant")),
                message_id=_opt(event.get("messageId")),
                event=kind,
                reason=_sendgrid_reason(event),
                at=_epoch(event.get("timestamp")),
            )
        )
    return records


def _sendgrid_reason(event: Mapping[str, Any]) -> str | None:
    kind = event["event"]
    if kind == "bounce":
        parts = [event.get("type"), event.get("status"), event.get("reason")]
        return " ".join(str(p) for p in parts if p) or None
    if kind in ("dropped", "deferred"):
        return _opt(event.get("reason") or event.get("response"))
    if kind == "click":
        return _opt(event.get("url"))
    return None


# Twilio status callback.


def _twilio(url: str, headers: Mapping[str, str], body: bytes, settings: Settings) -> list[Record]:
    signature = headers.get(TWILIO_SIGNATURE.lower())
    if not signature:
        raise AuthError("missing X-Twilio-Signature")
    params = _form(body)
    expected = [twilio_signature(settings.twilio_auth_token, u, params) for u in _url_variants(url)]
    if not any(hmac.compare_digest(signature.encode(), e.encode()) for e in expected):
        raise AuthError("bad X-Twilio-Signature")
    fields = dict(params)
    sid, status = fields.get("MessageSid"), fields.get("MessageStatus")
    if not sid or not status:
        raise ValidationError("a Twilio status callback has MessageSid and MessageStatus")
    kind = TWILIO_EVENTS.get(status)
    if kind is None:
        return []
    whatsapp = any(fields.get(k, "").startswith("whatsapp:") for k in ("To", "From"))
    query = dict(parse_qsl(urlsplit(url).query))
    error_code = fields.get("ErrorCode")
    return [
        _record(
            provider="twilio-whatsapp" if whatsapp else "twilio",
            channel="whatsapp" if whatsapp else "sms",
            provider_message_id=sid,
            event_id=f"{sid}:{status}",
            tenant=_opt(query.get("tenant")),
            message_id=_opt(query.get("messageId")),
            event=kind,
            reason=f"{status} {error_code}" if error_code else None,
            at=now(),
        )
    ]


def _url_variants(url: str) -> list[str]:
    """The URL as given, and with the scheme's default port added or removed."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    variants = [url]
    if default is None or not parts.hostname:
        return variants
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=_netloc(parts, host))))
    elif parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=_netloc(parts, f"{host}:{default}"))))
    return variants


def _netloc(parts: Any, hostport: str) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    return f"{userinfo}@{hostport}" if userinfo else hostport


# WhatsApp Cloud API webhook.


def _whatsapp(
    url: str, headers: Mapping[str, str], body: bytes, settings: Settings
) -> list[Record]:
    signature = headers.get(HUB_SIGNATURE.lower())
    if not signature:
        raise AuthError("missing X-Hub-Signature-256")
    expected = hub_signature(settings.whatsapp_app_secret, body)
    if not hmac.compare_digest(signature.strip().lower().encode(), expected.encode()):
        raise AuthError("bad X-Hub-Signature-256")
    doc = _json(body)
    if not isinstance(doc, dict) or doc.get("object") != "whatsapp_business_account":
        raise ValidationError("not a whatsapp_business_account webhook")
    records = []
    try:
        for entry in doc.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                for status in value.get("statuses") or []:
                    record = _whatsapp_status(status)
                    if record is not None:
                        records.append(record)
    except (AttributeError, TypeError, KeyError) as exc:
        raise ValidationError(f"malformed WhatsApp webhook: {exc!r}") from exc
    return records


def _whatsapp_status(status: Mapping[str, Any]) -> Record | None:
    kind = WHATSAPP_EVENTS.get(status["status"])
    if kind is None:
        return None
    tenant, message_id = _join_key(status.get("biz_opaque_callback_data"))
    errors = status.get("errors") or []
    reason = None
    if errors:
        first = errors[0]
        reason = " ".join(str(first.get(k)) for k in ("code", "title") if first.get(k)) or None
    return _record(
        provider="whatsapp-cloud",
        channel="whatsapp",
        provider_message_id=str(status["id"]),
        event_id=f"{status['id']}:{status['status']}",
        tenant=tenant,
        message_id=message_id,
        event=kind,
        reason=reason,
        at=_epoch(status.get("timestamp")),
    )


# Vonage delivery receipt.


def _vonage(url: str, headers: Mapping[str, str], body: bytes, settings: Settings) -> list[Record]:
    params = _vonage_params(url, headers, body)
    signature = params.get("sig")
    if not signature:
        raise AuthError("missing Vonage sig")
    expected = vonage_signature(settings.vonage_signature_secret, params)
    if not hmac.compare_digest(str(signature).lower().encode(), expected.encode()):
        raise AuthError("bad Vonage sig")
    message_id, status = params.get("messageId"), params.get("status")
    if not message_id or not status:
        raise ValidationError("a Vonage delivery receipt has messageId and status")
    kind = VONAGE_EVENTS.get(str(status))
    if kind is None:
        return []
    tenant, our_id = _join_key(params.get("client-ref"))
    err = str(params.get("err-code") or "0")
    return [
        _record(
            provider="vonage",
            channel="sms",
            provider_message_id=str(message_id),
            event_id=f"{message_id}:{status}",
            tenant=tenant,
            message_id=our_id,
            event=kind,
            reason=f"{status} err-code {err}" if err != "0" else None,
            at=_vonage_time(params.get("message-timestamp")),
        )
    ]


def _vonage_params(url: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    if body.strip():
        if "json" in headers.get("content-type", "") or body.lstrip().startswith(b"{"):
            doc = _json(body)
            if not isinstance(doc, dict):
                raise ValidationError("a Vonage delivery receipt is a JSON object")
            return doc
        return dict(_form(body))
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _vonage_time(text: Any) -> str:
    try:
        return format_time(datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))
    except ValueError:
        return now()


# Shared helpers.


def _record(
    *,
    provider: str,
    channel: str,
    provider_message_id: str,
    event_id: str,
    tenant: str | None,
    message_id: str | None,
    event: str,
    reason: str | None,
    at: str,
) -> Record:
    return {
        "provider": provider,
        "channel": channel,
        "providerMessageId": provider_message_id,
        "eventId": event_id,
        "tenant": tenant,
        "messageId": message_id,
        "event": event,
        "reason": reason[:500] if reason else None,
        "at": at,
    }


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"body is not JSON: {exc}") from exc


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(f"body is not a form: {exc}") from exc


def _join_key(value: Any) -> tuple[str | None, str | None]:
    """`tenant:messageId` back into its parts (None, None when absent or malformed)."""
    tenant, sep, message_id = str(value or "").partition(":")
    if not sep or not tenant or not message_id:
        return None, None
    return tenant, message_id


def _epoch(value: Any) -> str:
    try:
        return format_time(datetime.fromtimestamp(int(value), UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return now()


def _opt(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


_PARSERS: dict[str, Callable[[str, Mapping[str, str], bytes, Settings], list[Record]]] = {
    "sendgrid": _sendgrid,
    "twilio": _twilio,
    "vonage": _vonage,
    "whatsapp-cloud": _whatsapp,
}
