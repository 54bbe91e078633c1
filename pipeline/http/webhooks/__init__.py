"""Provider webhooks: verify the provider's signature, then parse into ProviderEvent records.

Pure functions of (url, headers, body, settings): no I/O, so the HTTP handler
stays thin and every scheme is unit-tested. `verify_and_parse` raises
`AuthError` for a missing or wrong signature and `ValidationError` for a body
that is not the provider's documented shape; it returns one ProviderEvent
record (schemas/ProviderEvent.avsc) per event that matters, and nothing for
progress events (SendGrid `processed`, Twilio `queued`/`sent`, WhatsApp `sent`,
Vonage `accepted`/`buffered`). Replays verify again: deduplicate on `eventId`
(the provider-events stage does, `pipeline.domain.provider_events`).

No verification key has a default. A receiver whose secret is unset is off
(`receivers_off`): `POST /webhooks/{provider}` answers 404 problem+json and the
worker logs which receivers are off when it starts; a secret that is set but
unusable (a SendGrid key that does not parse) stops the worker (`check_keys`).
Signed timestamps older than HERALD_WEBHOOK_REPLAY_WINDOW are refused (SendGrid,
Vonage); Twilio and WhatsApp sign none (see their modules).

One module per provider holds its signature scheme (compared with
`hmac.compare_digest` or a constant-time ECDSA verification), the signing
function the simulator uses, its join key and its event mapping:
`sendgrid`, `twilio`, `vonage`, `whatsapp_cloud`. Each is registered once, in
RECEIVERS below, under the `/webhooks/{provider}` path segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from pipeline.exceptions import ValidationError
from pipeline.http.webhooks import sendgrid, twilio, vonage, whatsapp_cloud
from pipeline.http.webhooks.events import Record
from pipeline.settings import Settings

__all__ = [
    "RECEIVERS",
    "SECRETS",
    "WEBHOOK_PROVIDERS",
    "Receiver",
    "Record",
    "check_keys",
    "receivers_off",
    "verify_and_parse",
    "verify_whatsapp_subscription",
]


class Receiver(Protocol):
    """(url, lower-cased headers, body, settings, now) -> records; AuthError, ValidationError."""

    def __call__(
        self, url: str, headers: Mapping[str, str], body: bytes, settings: Settings,
        *, now: float | None = None,
    ) -> list[Record]: ...  # fmt: skip


RECEIVERS: Mapping[str, Receiver] = MappingProxyType(
    {
        sendgrid.PROVIDER: sendgrid.parse,
        twilio.PROVIDER: twilio.parse,
        vonage.PROVIDER: vonage.parse,
        whatsapp_cloud.PROVIDER: whatsapp_cloud.parse,
    }
)
WEBHOOK_PROVIDERS = tuple(RECEIVERS)

# The setting (and its environment variable) each receiver verifies with.
SECRETS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        sendgrid.PROVIDER: ("sendgrid_webhook_public_key", "SENDGRID_WEBHOOK_PUBLIC_KEY"),
        twilio.PROVIDER: ("twilio_auth_token", "TWILIO_AUTH_TOKEN"),
        vonage.PROVIDER: ("vonage_signature_secret", "VONAGE_SIGNATURE_SECRET"),
        whatsapp_cloud.PROVIDER: ("whatsapp_app_secret", "WHATSAPP_APP_SECRET"),
    }
)


def receivers_off(settings: Settings) -> dict[str, str]:
    """Receivers without their secret (provider -> the environment variable to set)."""
    return {p: var for p, (name, var) in SECRETS.items() if not getattr(settings, name)}


def check_keys(settings: Settings) -> None:
    """ConfigError when a webhook key is set but unusable (checked once, at start)."""
    if settings.sendgrid_webhook_public_key:
        sendgrid.load_ec_public_key(settings.sendgrid_webhook_public_key)


verify_whatsapp_subscription = whatsapp_cloud.verify_subscription


def verify_and_parse(
    provider: str, *, url: str, headers: Mapping[str, str], body: bytes, settings: Settings,
    now: float | None = None,
) -> list[Record]:  # fmt: skip
    """Verify a webhook's signature (and its age, where signed) and return its records.

    `provider` is one of WEBHOOK_PROVIDERS (the `/webhooks/{provider}` path
    segment) with its secret set; anything else is a ValidationError.
    """
    parse = RECEIVERS.get(provider)
    if parse is None or provider in receivers_off(settings):
        raise ValidationError(f"no webhook receiver for provider {provider!r}")
    lowered = {k.lower(): v for k, v in headers.items()}
    return parse(url, lowered, body, settings, now=now)
