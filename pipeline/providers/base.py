"""What every provider adapter takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class WhatsAppTemplate:
    """A pre-approved WhatsApp template: needed outside the 24 h customer-service window."""

    name: str
    language: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class Message:
    """One rendered message to one recipient on one channel.

    `to` is the channel's address: an email address, an E.164 phone number
    (`+...`, for SMS and WhatsApp) or a push registration token.
    """

    message_id: str
    tenant: str
    channel: str
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    whatsapp_template: WhatsAppTemplate | None = None


@dataclass(frozen=True)
class Accepted:
    """The provider took the message; delivery is reported later by webhook."""

    provider: str
    provider_message_id: str


class Provider(Protocol):
    name: str
    channel: str
    supports_batch: bool  # has `batchable(message)` and `send_batch(messages)`

    async def send(self, message: Message) -> Accepted:
        """Send one message; raise a `DeliveryError` subclass when it did not go."""
        ...
