"""What every provider adapter takes and returns, and the interface each one implements.

An adapter sends one `Message` and answers `Accepted` or raises a
`DeliveryError` subclass. Batch sending is part of the interface: the send
stage asks `supports_batch`, groups the messages `batchable()` accepts, and
calls `send_batch()`; an adapter without a batch API derives from
`SingleSendProvider`, which says so once for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from pipeline.exceptions import BatchUnsupported

__all__ = ["Accepted", "Message", "Provider", "SingleSendProvider", "WhatsAppTemplate"]


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
    (`+...`, for SMS and WhatsApp) or a push registration token. `attempt` is
    the dispatch's attempt: with the message and channel it names one send,
    and a resend in doubt carries the same (`pipeline.providers.repeat`).
    `data` is push's data payload (string values, FCM `message.data`);
    `whatsapp_template` is set when the message must go as the approved template
    (outside the 24-hour window: the send stage decides, `pipeline.domain.service_window`).
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
    attempt: int = 1
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """The provider took the message; delivery is reported later by webhook."""

    provider: str
    provider_message_id: str


class Provider(ABC):
    """One provider on one channel: its name (metrics, circuits, rate budgets) and calls."""

    name: ClassVar[str]
    channel: ClassVar[str]
    supports_batch: ClassVar[bool]  # has a batch API: send_batch may be called

    @abstractmethod
    async def send(self, message: Message) -> Accepted:
        """Send one message; raise a `DeliveryError` subclass when it did not go."""

    @abstractmethod
    def batchable(self, message: Message) -> bool:
        """May this message share a batch request with others?"""

    @abstractmethod
    async def send_batch(self, messages: list[Message]) -> Accepted:
        """Send many messages in one request: all are accepted, or the error is raised."""


class SingleSendProvider(Provider):
    """A provider without a batch API: every message is a call of its own."""

    supports_batch = False

    def batchable(self, message: Message) -> bool:
        return False

    async def send_batch(self, messages: list[Message]) -> Accepted:
        raise BatchUnsupported(f"{self.name} has no batch API: check supports_batch")
