"""Size limits: the largest request, rendered content and dead letter that fit Kafka.

A record reaches a topic only if the whole record batch that carries it is at most the
topic's `max.message.bytes` (broker default 1048588) and, on the way out, at most the
producer's `max_request_size` (Faust's default 1,000,000; aiokafka raises
MessageSizeTooLargeError above it). So the room for one record's *value* is::

    record_budget = min(max.message.bytes, producer max request) - framing - key

where framing is the batch header (61 bytes) plus the record's own varints (at most
about 30 bytes), and the key is at most `tenant:userId` (2 x 128 + 1 bytes). The
arithmetic here is pure: `herald.topology` feeds it the catalog's topic limits.

What each topic limit bounds:

- **request** (`herald.notifications.requests`): the encoded NotificationRequest. A JSON
  body over HTTP encodes to at most about its own size in Avro, so it is also the
  largest body `POST /v1/notifications` takes (never above HERALD_HTTP_MAX_BODY).
- **dispatch** (the lane topics and `herald.scheduler`, which carries a dispatch as its
  payload): the rendered message (subject, text, html), the request when a fallback
  channel may need it, and a history that grows with each attempt (`HISTORY_RESERVE`).
- **dead letter** (`herald.notifications.dlq`): a dead letter carries the original
  bytes; when they do not fit, the payload is truncated and the dead letter keeps the
  original's topic, partition and offset (the original stays in Kafka).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BROKER_DEFAULT_MAX_MESSAGE_BYTES",
    "HISTORY_RESERVE",
    "KEY_MAX",
    "PRODUCER_MAX_REQUEST_BYTES",
    "RECORD_FRAMING",
    "Limits",
    "record_budget",
    "size_bound",
]

BROKER_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # Kafka's message.max.bytes default
PRODUCER_MAX_REQUEST_BYTES = 1_000_000  # Faust's producer_max_request_size default
# Record batch header (61) + one record's length, attributes, timestamp and offset
# deltas, key and value lengths and header count (varints, at most 31), rounded up.
RECORD_FRAMING = 128
KEY_MAX = 2 * 128 + 1  # tenant:userId, each at most 128 characters
# Room kept in a dispatch for the attempts it will record (retries, failover, fallback:
# up to about a hundred DeliveryAttempt entries of at most ~600 bytes) and fixed fields.
HISTORY_RESERVE = 64 * 1024


def record_budget(
    max_message_bytes: int | None,
    producer_max_request: int = PRODUCER_MAX_REQUEST_BYTES,
    key_bytes: int = KEY_MAX,
) -> int:
    """Bytes left for one record's value on a topic (`None`: the broker default)."""
    topic = max_message_bytes or BROKER_DEFAULT_MAX_MESSAGE_BYTES
    return min(topic, producer_max_request) - RECORD_FRAMING - key_bytes


def size_bound(value: Any) -> int:
    """An upper bound of `value`'s Avro binary size (plus the 10-byte single-object header).

    Cheap (no encoding): strings and bytes count their UTF-8 length plus a 5-byte length
    varint, every other scalar 10 bytes, containers their items plus 10; record field
    names are counted as if they were map keys, so the bound is always over the truth.
    """
    return 10 + _bound(value)


def _bound(value: Any) -> int:
    if isinstance(value, str):
        return 5 + len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return 5 + len(value)
    if isinstance(value, Mapping):
        return 10 + sum(_bound(k) + _bound(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 10 + sum(_bound(v) for v in value)
    return 10


@dataclass(frozen=True)
class Limits:
    """The largest record value each kind of topic takes, in bytes."""

    request_bytes: int
    dispatch_bytes: int
    dead_letter_bytes: int
    http_body_bytes: int

    @classmethod
    def compute(
        cls,
        *,
        requests_max: int | None = None,
        dispatch_max: int | None = None,
        dlq_max: int | None = None,
        http_max_body: int | None = None,
        producer_max_request: int = PRODUCER_MAX_REQUEST_BYTES,
    ) -> Limits:
        """From the topics' `max.message.bytes` (None: the broker default).

        `dispatch_max` is the smallest of the lane topics and the scheduler topic.
        The HTTP body limit is the request limit, or HERALD_HTTP_MAX_BODY if smaller.
        """
        request = record_budget(requests_max, producer_max_request)
        body = request if http_max_body is None else min(request, http_max_body)
        return cls(
            request_bytes=request,
            dispatch_bytes=record_budget(dispatch_max, producer_max_request),
            dead_letter_bytes=record_budget(dlq_max, producer_max_request),
            http_body_bytes=body,
        )

    @property
    def rendered_bytes(self) -> int:
        """The largest rendered content (subject, text, html, and the request a fallback
        carries) whose dispatch still fits, with room for its history."""
        return self.dispatch_bytes - HISTORY_RESERVE

    def dead_letter_room(self, key: bytes | None) -> int:
        """Room for a dead letter's value when its Kafka key is `key` (any length)."""
        extra = max(0, len(key or b"") - KEY_MAX)
        return self.dead_letter_bytes - extra
