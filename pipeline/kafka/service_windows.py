"""Every worker's view of `herald.whatsapp.service-windows`: when each user last wrote.

Why a view and not a Faust table: the send stages read by `tenant:userId` (their
stream's key), while an inbound message names only the business number and the
user's number, so a table keyed by number would not be co-partitioned with any send
lane and a worker would hold only some numbers. The windows that matter are few
(users who wrote in the last 24 hours), so each worker reads the whole compacted
topic with a consumer of its own (`pipeline.kafka.compacted_view.CompactedView`) and
keeps, per number, the latest inbound time. Entries older than the window are dropped
as they are read and when looked up, so memory holds only open windows.

Lag: an inbound message reaches the view a fetch after the webhook was answered; a
send in between goes as the approved template, which WhatsApp accepts at any time.
Until the view has read up to the end offsets it found at start (`caught_up`), it
answers "unknown" (closed) for the same reason.

Tenancy: the inbound webhook names no tenant (it carries no `biz_opaque_callback_data`,
only the business `phone_number_id`), and Herald sends every tenant's WhatsApp from
one number (WHATSAPP_PHONE_NUMBER_ID). So the window is recorded per business number,
as Meta keeps it, and `last_inbound` answers only for the tenant that owns the number
(WHATSAPP_WINDOW_TENANT); for any other tenant, and for every tenant when it is unset,
the window is closed: their messages outside it go as the approved template, never as
text on the strength of a conversation the user had with someone else.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pipeline.domain.service_window import SERVICE_WINDOW, window_key
from pipeline.exceptions import DecodeError
from pipeline.kafka.catalog import SERVICE_WINDOWS
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.compacted_view import CompactedView

__all__ = ["ServiceWindowView"]

_WINDOW_MS = int(SERVICE_WINDOW.total_seconds() * 1000)


class ServiceWindowView(CompactedView):
    """Last inbound time per `phoneNumberId:number`, fed by `apply` (and `run`, from Kafka).

    `owner` is the tenant the business number `phone_number_id` belongs to ("" for none).
    """

    def __init__(
        self, codec: AvroCodec, *, phone_number_id: str, owner: str, topic: str = SERVICE_WINDOWS
    ) -> None:
        super().__init__(topic)
        self.codec = codec
        self.phone_number_id = phone_number_id
        self.owner = owner
        self.last_ms: dict[str, int] = {}

    def last_inbound(self, tenant: str, number: str, now_ms: int | None = None) -> datetime | None:
        """When the user at `number` last wrote to the business number, as seen by
        `tenant`: None when unknown, expired, not yet caught up, or not the owner's."""
        if not self.owner or tenant != self.owner or not self.caught_up:
            return None
        key = window_key(self.phone_number_id, number)
        last = self.last_ms.get(key)
        if last is None:
            return None
        if last + _WINDOW_MS <= (now_ms if now_ms is not None else _now_ms()):
            self.last_ms.pop(key, None)  # closed for good: forget the number
            return None
        return datetime.fromtimestamp(last / 1000, UTC)

    client_id = "herald-service-windows"

    def apply(
        self, key: bytes | str | None, value: bytes | None, now_ms: int | None = None
    ) -> None:
        """One record of the topic: keep the latest inbound time of its number."""
        text = key.decode(errors="replace") if isinstance(key, bytes) else key
        if value is None or text is None:
            if text is not None:
                self.last_ms.pop(text, None)  # a tombstone (erasure)
            return
        try:
            record = self.codec.decode("WhatsAppServiceWindow", value)
        except DecodeError:
            return
        if window_key(record["phoneNumberId"], record["number"]) != text:
            return  # keyed by something else: not a record this view can trust
        at = int(record["lastInboundAt"])
        if at + _WINDOW_MS <= (now_ms if now_ms is not None else _now_ms()):
            return  # that window closed already
        self.last_ms[text] = max(at, self.last_ms.get(text, at))


def _now_ms() -> int:
    return int(time.time() * 1000)
