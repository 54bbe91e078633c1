"""The records the benchmark sends and the Kafka plumbing both kinds of run share.

Every record is a valid NotificationRequest encoded as the pipeline encodes it, so the
raw Kafka runs carry records of the real size and the pipeline runs are SENT, not
rejected. Topics are created with the AdminClient because the broker does not create
them on first use (`auto.create.topics.enable` is off).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.pipeline.measure import BenchError
from bench.pipeline.mix import channel_sequence, recipient_fields
from pipeline.kafka.codecs import AvroCodec

__all__ = [
    "DATA",
    "LINGER_MS",
    "TEMPLATE",
    "TENANT",
    "Request",
    "build_requests",
    "create_topic",
    "produce_one",
    "request_record",
    "wait_topic_ready",
]

TENANT = "bench"
TEMPLATE = "booking-confirmation"
DATA = {
    "name": "Ana", "bookingRef": "ABC123", "flight": "IB3456", "date": "2026-12-01",
    "origin": "MAD", "destination": "JFK",
}  # fmt: skip
LINGER_MS = 5


def wait_topic_ready(bootstrap: str, topic: str, partitions: int, timeout: float) -> None:
    """Wait until every partition has a leader: producing earlier would time the election."""
    client = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = client.list_topics(topic, timeout=5).topics.get(topic)
        if (
            md is not None
            and md.error is None
            and len(md.partitions) == partitions
            and all(p.leader >= 0 for p in md.partitions.values())
        ):
            return
        time.sleep(0.2)
    raise BenchError(f"topic {topic} has no leaders after {timeout:.0f}s")


def create_topic(bootstrap: str, topic: str, partitions: int, timeout: float) -> None:
    """A fresh topic for one raw run, ready to produce to."""
    client = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    futures = client.create_topics(
        [NewTopic(topic, partitions, 1)], request_timeout=min(timeout, 30.0)
    )
    try:
        futures[topic].result(timeout=timeout)
    except KafkaException as exc:
        raise BenchError(f"cannot create {topic}: {exc}") from exc
    wait_topic_ready(bootstrap, topic, partitions, timeout)


def request_record(
    user_id: str, message_id: str, channel: str = "email", i: int = 0
) -> dict[str, Any]:
    """A request the pipeline accepts and sends on `channel` (template, data, recipient all
    valid), with an explicit messageId so its status records can be followed."""
    return {
        "messageId": message_id,
        "tenant": TENANT,
        "recipient": {
            "userId": user_id,
            **recipient_fields(channel, user_id, i),
            **dict.fromkeys(("locale", "timezone")),
        },
        "template": TEMPLATE,
        "data": dict(DATA),
        "priority": "standard",
        "channels": [channel],
        "mode": None,
        "sendAt": None,
        "webhookUrl": None,
        "metadata": {},
    }


@dataclass(frozen=True)
class Request:
    """One encoded request, ready to produce, and the messageId to follow it by."""

    key: bytes
    value: bytes
    message_id: str


def build_requests(
    codec: AvroCodec, run: str, label: str, n: int, mix: dict[str, int] | None = None
) -> list[Request]:
    """`n` requests in the channel `mix` (email only by default), encoded before any
    timing starts; user and message ids are unique per run and label, so no run ever sees
    another's statuses."""
    out = []
    for i, channel in enumerate(channel_sequence(mix or {"email": 1}, n)):
        user_id = f"u-{run}-{label}-{i:06d}"
        message_id = f"bench-{run}-{label}-{i:06d}"
        record = request_record(user_id, message_id, channel, i)
        value = codec.encode("NotificationRequest", record, check=True)
        out.append(Request(f"{TENANT}:{user_id}".encode(), value, message_id))
    return out


def produce_one(producer: Producer, topic: str, key: bytes, value: bytes, deadline: float) -> None:
    """Produce, waiting for room in librdkafka's queue when it is full."""
    while True:
        try:
            producer.produce(topic, value=value, key=key)
            return
        except BufferError:
            if time.monotonic() > deadline:
                raise BenchError(f"producer queue stayed full producing to {topic}") from None
            producer.poll(0.05)
