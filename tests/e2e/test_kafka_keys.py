"""Tenants through Kafka on the real broker: a record whose tenant has `:` (its key
chosen to match) or whose key is not the catalog's key of the record is dead-lettered
with its reason and original bytes, and leaves no state, idempotency or consent
behind for another tenant."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Producer

from pipeline.kafka.catalog import DLQ, PREFERENCES, REQUESTS
from pipeline.kafka.io import producer_config
from tests.harness import (
    Stack,
    codec,
    post,
    read_topic,
    request_body,
    unique,
    wait_for,
)


def produce(stack: Stack, topic: str, schema: str, record: dict[str, Any], key: str) -> bytes:
    value = codec().encode(schema, record)
    producer = Producer(producer_config(stack.env["KAFKA_BOOTSTRAP_SERVERS"]))
    producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0
    return value


def letter_of(stack: Stack, value: bytes) -> dict[str, Any]:
    """The dead letter that carries `value`, once there."""

    def found() -> dict[str, Any] | None:
        bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
        letters = [codec().decode("DeadLetter", m.value()) for m in read_topic(bootstrap, DLQ)]
        return next((d for d in letters if d["value"] == value), None)

    return wait_for(found, timeout=30, every=0.5)


def stays_absent(stack: Stack, message_id: str, tenant: str, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stack.state(message_id, tenant).status_code != 404:
            return False
        time.sleep(0.2)
    return True


def test_a_tenant_with_a_colon_reaches_no_other_tenants_keys(stack: Stack) -> None:
    # tenant "globex:x" with message "m" would be keyed as tenant "globex", message "x:m".
    user, suffix = unique("colon"), unique("m")
    record = {"tenant": "globex:x", "messageId": suffix, **request_body(user)}
    value = produce(stack, REQUESTS, "NotificationRequest", record, f"globex:x:{user}")
    letter = letter_of(stack, value)
    assert (letter["reason"], letter["stage"], letter["topic"]) == (
        "invalid-tenant",
        "ingest",
        REQUESTS,
    )
    assert letter["key"] == f"globex:x:{user}".encode() and letter["tenant"] is None
    assert stays_absent(stack, f"x:{suffix}", "globex")  # no state for globex

    # nor an idempotency entry: globex's own message "x:<suffix>" is sent, not dropped
    mine = post(stack, request_body(user, messageId=f"x:{suffix}"), tenant="globex")
    assert mine.status_code == 202, mine.text
    assert stack.wait_status(f"x:{suffix}", "SENT", tenant="globex")["status"] in (
        "SENT",
        "DELIVERED",
        "OPENED",
    )
    assert len(stack.sim_messages(to=f"{user}@example.com")) == 1  # globex's, not the forged


def test_a_request_under_another_tenants_key_is_a_key_mismatch(stack: Stack) -> None:
    user, message_id = unique("mismatch"), unique("msg")
    record = {"tenant": "acme", "messageId": message_id, **request_body(user)}
    value = produce(stack, REQUESTS, "NotificationRequest", record, f"globex:{user}")
    letter = letter_of(stack, value)
    assert letter["reason"] == "key-mismatch" and letter["key"] == f"globex:{user}".encode()
    assert letter["messageId"] == message_id
    assert stays_absent(stack, message_id, "acme") and stays_absent(stack, message_id, "globex")
    assert stack.sim_messages(to=f"{user}@example.com") == []


def test_preferences_under_another_key_change_no_ones_consent(stack: Stack) -> None:
    user = unique("prefkey")
    withdrawn = {"granted": False, "source": "test", "at": "2026-11-28T10:00:00.000Z"}
    prefs = {"tenant": "acme", "userId": user, "all": withdrawn, "updatedAt": withdrawn["at"]}
    value = produce(stack, PREFERENCES, "UserPreferences", prefs, f"globex:{user}")
    letter = letter_of(stack, value)
    assert (letter["reason"], letter["stage"]) == ("key-mismatch", "preferences")
    # globex's user (the key's) and acme's (the record's) still get their messages
    for tenant in ("globex", "acme"):
        resp = post(stack, request_body(user), tenant=tenant)
        assert resp.status_code == 202, resp.text
        stack.wait_status(resp.json()["messageId"], "SENT", tenant=tenant)
    assert len(stack.sim_messages(to=f"{user}@example.com")) == 2
