"""Twilio's status callback (SMS and WhatsApp through Twilio): signature and mapping.

Signature: `X-Twilio-Signature` = base64 HMAC-SHA1(TWILIO_AUTH_TOKEN, URL +
every POST parameter name+value, sorted by name). `url` must be the exact
StatusCallback URL Twilio was given (HERALD_PUBLIC_URL + path + query); as
Twilio's own validators do, the URL with the default port added or removed is
accepted too. The simulator signs with `sign`. Twilio signs no timestamp, so no
replay window applies: a replayed callback is held by its event id
(`MessageSid:MessageStatus`, counted once) and by the attempt match (it can only
repeat what already happened to that very send).

Join key: the callback URL's query `tenant`/`messageId` (signed with the
URL). A callback whose `To` or `From` is `whatsapp:...` is the WhatsApp
channel (provider twilio-whatsapp). `read` is OPENED, like WhatsApp Cloud's;
`undelivered`/`failed` are FAILED (not BOUNCED: there is no bounce in SMS);
`queued`, `sending` and `sent` are progress and yield nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

from pipeline import clock
from pipeline.exceptions import AuthError, ValidationError
from pipeline.http.webhooks.events import Record, event_record, form_body, optional
from pipeline.settings import Settings

__all__ = ["EVENTS", "PROVIDER", "SIGNATURE", "parse", "sign", "verify"]

PROVIDER = "twilio"
SIGNATURE = "X-Twilio-Signature"

EVENTS = {
    "delivered": "DELIVERED",
    "read": "OPENED",
    "undelivered": "FAILED",
    "failed": "FAILED",
}


def sign(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """base64(HMAC-SHA1(auth token, url + name1 + value1 + ...)), parameters sorted by name."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(url: str, headers: Mapping[str, str], params: list[tuple[str, str]], token: str) -> None:
    """AuthError unless the signature matches the URL (or its default-port variant)."""
    signature = headers.get(SIGNATURE.lower())
    if not signature:
        raise AuthError("missing X-Twilio-Signature")
    expected = [sign(token, variant, params) for variant in _url_variants(url)]
    if not any(hmac.compare_digest(signature.encode(), e.encode()) for e in expected):
        raise AuthError("bad X-Twilio-Signature")


def parse(
    url: str, headers: Mapping[str, str], body: bytes, settings: Settings,
    *, now: float | None = None,
) -> list[Record]:  # fmt: skip
    """Verify, then the callback's record (none for progress statuses)."""
    params = form_body(body)
    verify(url, headers, params, settings.twilio_auth_token)
    fields = dict(params)
    sid, status = fields.get("MessageSid"), fields.get("MessageStatus")
    if not sid or not status:
        raise ValidationError("a Twilio status callback has MessageSid and MessageStatus")
    kind = EVENTS.get(status)
    if kind is None:
        return []
    whatsapp = any(fields.get(k, "").startswith("whatsapp:") for k in ("To", "From"))
    query = dict(parse_qsl(urlsplit(url).query))
    error_code = fields.get("ErrorCode")
    return [
        event_record(
            provider="twilio-whatsapp" if whatsapp else PROVIDER,
            channel="whatsapp" if whatsapp else "sms",
            provider_message_id=sid,
            event_id=f"{sid}:{status}",
            tenant=optional(query.get("tenant")),
            message_id=optional(query.get("messageId")),
            event=kind,
            reason=f"{status} {error_code}" if error_code else None,
            at=clock.now(),
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


def _netloc(parts: SplitResult, hostport: str) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    return f"{userinfo}@{hostport}" if userinfo else hostport
