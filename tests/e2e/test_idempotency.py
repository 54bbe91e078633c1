"""Idempotency on the real broker: a refused request reserves nothing, so its corrected
re-send under the same messageId is sent (once) and reads SENT; the same id with
another body is 409 over HTTP and a dead letter `idempotency-conflict` from Kafka."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from pipeline.kafka.catalog import REQUESTS
from pipeline.kafka.io import producer_config
from tests.harness import (
    Stack,
    codec,
    dead_letters,
    history,
    phone,
    post,
    request_body,
    unique,
    wait_for,
)


def sms_body(user: str, message_id: str, number: str | None) -> dict[str, Any]:
    recipient = {"userId": user, "email": f"{user}@example.com"}
    if number is not None:
        recipient["phone"] = number
    return {**request_body(user), "recipient": recipient, "channels": ["sms"],
            "messageId": message_id}  # fmt: skip


def produce(stack: Stack, record: dict[str, Any], key: str) -> bytes:
    value = codec().encode("NotificationRequest", record)
    producer = Producer(producer_config(stack.env["KAFKA_BOOTSTRAP_SERVERS"]))
    producer.produce(REQUESTS, key=key, value=value)
    assert producer.flush(10) == 0
    return value


def assert_sent_once(stack: Stack, message_id: str, number: str) -> None:
    state = stack.wait_status(message_id, "SENT")
    assert state["status"] in ("SENT", "DELIVERED") and state["channel"] == "sms"
    assert history(state)[0] == "DLQ" and "PENDING" in history(state)  # the refusal is kept
    [sms] = wait_for(lambda: stack.sim_messages(to=number))
    assert sms["provider"] == "twilio"


def test_a_corrected_resend_over_http_is_sent_once(stack: Stack) -> None:
    user, message_id, number = unique("fix"), unique("msg"), phone()
    first = post(stack, sms_body(user, message_id, None))  # sms, and no phone
    if first.status_code == 202:  # refused by ingest after the 202 (the door may say 422)
        assert stack.wait_status(message_id, "DLQ")["status"] == "DLQ"
    else:
        assert first.status_code == 422, first.text
    fixed = post(stack, sms_body(user, message_id, number))
    assert fixed.status_code == 202, fixed.text
    assert fixed.json() == {"messageId": message_id, "status": "PENDING"}
    if first.status_code == 202:
        assert_sent_once(stack, message_id, number)
    else:
        assert stack.wait_status(message_id, "SENT")["channel"] == "sms"
        assert len(stack.sim_messages(to=number)) == 1


def test_a_corrected_resend_after_a_refused_kafka_record_is_sent_once(stack: Stack) -> None:
    user, message_id, number = unique("fixk"), unique("msg"), phone()
    bad = {"tenant": "acme", **sms_body(user, message_id, None)}
    produce(stack, bad, f"acme:{user}")
    assert stack.wait_status(message_id, "DLQ")["status"] == "DLQ"
    [letter] = dead_letters(stack, message_id)
    assert letter["reason"] == "invalid"  # refused by ingest: no contact point for sms

    fixed = post(stack, sms_body(user, message_id, number))
    assert fixed.status_code == 202 and fixed.json()["messageId"] == message_id
    assert_sent_once(stack, message_id, number)
    again = post(stack, sms_body(user, message_id, number))  # now it is taken: same answer
    assert again.status_code == 202 and again.json() == fixed.json()
    sentinel = post(stack, sms_body(user, unique("msg"), number)).json()["messageId"]
    stack.wait_status(sentinel, "SENT")  # same partition: the duplicate was seen before it
    assert len(stack.sim_messages(to=number)) == 2  # the corrected one and the sentinel


def test_the_same_id_with_another_body_is_409_and_the_same_body_202(stack: Stack) -> None:
    user = unique("conflict")
    accepted = post(stack, request_body(user)).json()
    stack.wait_status(accepted["messageId"], "SENT")  # ingest has taken the id
    same = post(stack, request_body(user, messageId=accepted["messageId"]))
    assert same.status_code == 202 and same.json() == accepted
    other = post(stack, request_body(user, messageId=accepted["messageId"], priority="high"))
    assert other.status_code == 409, other.text
    assert other.headers["content-type"].startswith("application/problem+json")
    problem = other.json()
    assert problem["type"] == "urn:herald:problem:idempotency-conflict"
    assert problem["messageId"] == accepted["messageId"]
    sentinel = post(stack, request_body(user)).json()["messageId"]
    stack.wait_status(sentinel, "SENT")
    assert len(stack.sim_messages(to=f"{user}@example.com")) == 2  # original and sentinel


def test_a_conflicting_kafka_record_is_dead_lettered_and_the_original_untouched(
    stack: Stack,
) -> None:
    user = unique("conflictk")
    accepted = post(stack, request_body(user)).json()
    message_id = accepted["messageId"]
    before = stack.wait_status(message_id, "SENT")
    record = {"tenant": "acme", **request_body(user, messageId=message_id, priority="high")}
    value = produce(stack, record, f"acme:{user}")

    [letter] = wait_for(lambda: dead_letters(stack, message_id), timeout=30, every=0.5)
    assert letter["reason"] == "idempotency-conflict" and letter["value"] == value
    assert letter["stage"] == "ingest" and letter["tenant"] == "acme"
    after = stack.state(message_id).json()
    assert history(after)[: len(history(before))] == history(before)
    assert "DLQ" not in history(after) and after["priority"] == "standard"
    sentinel = post(stack, request_body(user)).json()["messageId"]
    stack.wait_status(sentinel, "SENT")
    assert len(stack.sim_messages(to=f"{user}@example.com")) == 2
