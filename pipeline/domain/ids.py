"""Keys and ids: every user-centric key is `tenant:userId`, every message key `tenant:messageId`."""

from __future__ import annotations

import uuid

__all__ = [
    "NAMESPACE",
    "message_id_for_idempotency_key",
    "message_id_for_offset",
    "message_key",
    "new_message_id",
    "user_key",
]

# Fixed namespace so a redelivered record without a messageId gets the same id.
NAMESPACE = uuid.UUID("6f1c1e0a-5b7e-4c1b-9b0e-2d3a7f0c8e11")


def user_key(tenant: str, user_id: str) -> str:
    return f"{tenant}:{user_id}"


def message_key(tenant: str, message_id: str) -> str:
    return f"{tenant}:{message_id}"


def new_message_id() -> str:
    return str(uuid.uuid4())


def message_id_for_idempotency_key(tenant: str, key: str) -> str:
    """The same Idempotency-Key from the same tenant always names the same message."""
    return str(uuid.uuid5(NAMESPACE, f"idempotency:{tenant}:{key}"))


def message_id_for_offset(topic: str, partition: int, offset: int) -> str:
    """An id for a Kafka record that carried none: stable across redeliveries."""
    return str(uuid.uuid5(NAMESPACE, f"offset:{topic}:{partition}:{offset}"))
