"""Provider webhooks: verify the provider's signature, then parse into ProviderEvent records.

Pure functions of (url, headers, body, settings): no I/O, so the HTTP handler
stays thin and every scheme is unit-tested. `verify_and_parse` raises
`AuthError` for a missing or wrong signature and `ValidationError` for a body
that is not the provider's documented shape; it returns one ProviderEvent
record (schemas/ProviderEvent.avsc) per event that matters, and nothing for
progress events (SendGrid `processed`, Twilio `queued`/`sent`, WhatsApp `sent`,
Vonage `accepted`/`buffered`). Replays verify again: deduplicate on `eventId`.

One module per provider holds its signature scheme (compared with
`hmac.compare_digest` or a constant-time ECDSA verification), the signing
function the simulator uses, its join key and its event mapping:
`sendgrid`, `twilio`, `vonage`, `whatsapp_cloud`. Each is registered once, in
RECEIVERS below, under the `/webhooks/{provider}` path segment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from pipeline.exceptions import ValidationError
from pipeline.http.webhooks import sendgrid, twilio, vonage, whatsapp_cloud
from pipeline.http.webhooks.events import Record
from pipeline.settings import Settings

__all__ = [
    "RECEIVERS",
    "WEBHOOK_PROVIDERS",
    "Receiver",
    "Record",
    "verify_and_parse",
    "verify_whatsapp_subscription",
]

Receiver = Callable[[str, Mapping[str, str], bytes, Settings], list[Record]]
"""(url, lower-cased headers, body, settings) -> records; AuthError, ValidationError."""

RECEIVERS: Mapping[str, Receiver] = MappingProxyType(
    {
        sendgrid.PROVIDER: sendgrid.parse,
        twilio.PROVIDER: twilio.parse,
        vonage.PROVIDER: vonage.parse,
        whatsapp_cloud.PROVIDER: whatsapp_cloud.parse,
    }
)
WEBHOOK_PROVIDERS = tuple(RECEIVERS)

verify_whatsapp_subscription = whatsapp_cloud.verify_subscription


def verify_and_parse(
    provider: str, *, url: str, headers: Mapping[str, str], body: bytes, settings: Settings
) -> list[Record]:
    """Verify a webhook's signature and return its ProviderEvent records.

    `provider` is one of WEBHOOK_PROVIDERS (the `/webhooks/{provider}` path
    segment); anything else is a ValidationError.
    """
    parse = RECEIVERS.get(provider)
    if parse is None:
        raise ValidationError(f"no webhook for provider {provider!r}")
    lowered = {k.lower(): v for k, v in headers.items()}
    return parse(url, lowered, body, settings)
