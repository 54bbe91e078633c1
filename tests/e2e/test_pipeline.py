"""The walking skeleton end to end on the real broker: HTTP and Kafka in, provider out."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from pipeline.kafka.catalog import AUDIT, DLQ, PREFERENCES, REQUESTS, STATUS
from pipeline.kafka.io import producer_config
from tests.harness import (
    DATA,
    Stack,
    codec,
    herald_cmd,
    history,
    post,
    read_topic,
    request_body,
    unique,
    wait_for,
)


def test_http_notification_is_sent_once_with_its_history(stack: Stack) -> None:
    user = unique("http")
    resp = post(stack, request_body(user))
    assert resp.status_code == 202
    accepted = resp.json()
    assert accepted["status"] == "PENDING"

    # The provider's signed webhooks bring DELIVERED and, for email, OPENED.
    state = stack.wait_status(accepted["messageId"], "OPENED")
    assert history(state) == ["PENDING", "PROCESSING", "SENT", "DELIVERED", "OPENED"]
    assert state["status"] == "DELIVERED"  # engagement does not replace the delivery state
    assert state["channel"] == "email" and state["provider"] == "sendgrid"
    assert state["attempts"][0]["outcome"] == "SENT"

    # The same messageId again: the same 202, nothing sent twice. A later message
    # to the same user shares the partition, so once it is SENT the duplicate
    # has been seen by ingest as well.
    again = post(stack, request_body(user, messageId=accepted["messageId"]))
    assert again.status_code == 202 and again.json() == accepted
    sentinel = post(stack, request_body(user)).json()["messageId"]
    stack.wait_status(sentinel, "SENT")
    sent = stack.sim_messages(to=f"{user}@example.com")
    assert len(sent) == 2  # the original and the sentinel, never the duplicate
    mail = next(m for m in sent if m["content"]["customArgs"]["messageId"] == accepted["messageId"])
    assert mail["provider"] == "sendgrid" and "ABC123" in mail["content"]["subject"]


def test_idempotency_key_header_names_the_message(stack: Stack) -> None:
    user = unique("idem")
    first = post(stack, request_body(user), **{"Idempotency-Key": "order-1"}).json()
    second = post(stack, request_body(user), **{"Idempotency-Key": "order-1"}).json()
    assert first == second
    stack.wait_status(first["messageId"], "SENT")
    sentinel = post(stack, request_body(user)).json()["messageId"]
    stack.wait_status(sentinel, "SENT")
    assert len(stack.sim_messages(to=f"{user}@example.com")) == 2


def test_record_produced_with_herald_produce_is_sent(stack: Stack) -> None:
    user, message_id = unique("kafka"), unique("msg")
    record = {"messageId": message_id, "tenant": "acme", **request_body(user)}
    done = subprocess.run(
        herald_cmd("produce", REQUESTS), input=orjson.dumps(record) + b"\n",
        env=stack.env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    state = stack.wait_status(message_id, "SENT")
    assert history(state)[:3] == ["PENDING", "PROCESSING", "SENT"]
    assert len(stack.sim_messages(to=f"{user}@example.com")) == 1


def test_garbage_goes_to_dlq_and_the_next_record_is_delivered(stack: Stack) -> None:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    user, message_id = unique("garbage"), unique("msg")
    key = f"acme:{user}".encode()
    garbage = b"\x00not avro " + uuid.uuid4().bytes
    good = codec().encode(
        "NotificationRequest", {"messageId": message_id, "tenant": "acme", **request_body(user)}
    )
    producer = Producer(producer_config(bootstrap))
    producer.produce(REQUESTS, key=key, value=garbage)
    producer.produce(REQUESTS, key=key, value=good)
    assert producer.flush(10) == 0

    stack.wait_status(message_id, "SENT")
    letters = [codec().decode("DeadLetter", m.value()) for m in read_topic(bootstrap, DLQ)]
    mine = [d for d in letters if d["value"] == garbage]
    assert len(mine) == 1
    assert mine[0]["reason"] == "decode-error" and mine[0]["topic"] == REQUESTS
    assert mine[0]["key"] == key and mine[0]["stage"] == "ingest"


def test_invalid_record_is_dead_lettered_with_its_reason(stack: Stack) -> None:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    user, message_id = unique("invalid"), unique("msg")
    record = {"messageId": message_id, "tenant": "acme", **request_body(user)}
    record["data"] = {"name": "Ana"}  # the template needs more
    producer = Producer(producer_config(bootstrap))
    producer.produce(
        REQUESTS, key=f"acme:{user}", value=codec().encode("NotificationRequest", record)
    )
    assert producer.flush(10) == 0

    state = stack.wait_status(message_id, "DLQ")
    assert "bookingRef" in state["history"][-1]["error"]
    letters = [codec().decode("DeadLetter", m.value()) for m in read_topic(bootstrap, DLQ)]
    mine = [d for d in letters if d["messageId"] == message_id]
    assert len(mine) == 1 and mine[0]["reason"] == "invalid"
    assert codec().decode("NotificationRequest", mine[0]["value"])["messageId"] == message_id
    assert stack.sim_messages(to=f"{user}@example.com") == []


def test_status_topic_carries_every_change_and_herald_tail_decodes_it(stack: Stack) -> None:
    message_id = post(stack, request_body(unique("tail"))).json()["messageId"]
    stack.wait_status(message_id, "SENT")
    done = subprocess.run(
        herald_cmd("tail", STATUS, "--from-beginning", "--idle-timeout", "3"),
        env=stack.env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    mine = [r for r in map(orjson.loads, done.stdout.splitlines()) if r["messageId"] == message_id]
    assert [r["status"] for r in mine][:3] == ["PENDING", "PROCESSING", "SENT"]
    assert mine[2]["provider"] == "sendgrid" and mine[2]["providerMessageId"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"recipient": {"userId": "u"}, "template": "booking-confirmation", "data": DATA},
         422, "recipient"),
        (request_body("u", template="no-such-template"), 422, "template"),
        (request_body("u", data={"name": "Ana"}), 422, "data.bookingRef"),
        (request_body("u", priority="urgent"), 422, "priority"),
        (request_body("u", surprise=1), 422, "surprise"),
        ([1, 2], 400, None),
    ],
)  # fmt: skip
def test_invalid_http_requests_get_problem_json(
    stack: Stack, body: Any, status: int, field: str | None
) -> None:
    resp = post(stack, body)
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["status"] == status
    if field:
        assert field in [e["field"] for e in problem["errors"]]


def test_malformed_and_oversized_bodies(stack: Stack) -> None:
    url = f"{stack.api}/v1/notifications"
    bad = httpx.post(url, content=b"{not json", headers=stack.headers(), timeout=5)
    assert bad.status_code == 400 and bad.json()["status"] == 400
    big = httpx.post(url, content=b"x" * (300 * 1024), headers=stack.headers(), timeout=5)
    assert big.status_code == 413
    assert big.headers["content-type"].startswith("application/problem+json")


def test_auth_is_required_and_scoped(stack: Stack) -> None:
    url = f"{stack.api}/v1/notifications"
    body = request_body(unique("auth"))
    assert httpx.post(url, json=body, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer " + stack.token()[:-4] + "AAAA"}
    assert httpx.post(url, json=body, headers=wrong, timeout=5).status_code == 401
    expired = {"Authorization": "Bearer " + stack.token(ttl_s=-10)}
    assert httpx.post(url, json=body, headers=expired, timeout=5).status_code == 401
    read_only = stack.headers(scope="notifications:read")
    resp = httpx.post(url, json=body, headers=read_only, timeout=5)
    assert resp.status_code == 403 and resp.json()["title"] == "Forbidden"
    send_only = stack.headers(scope="notifications:send")
    assert httpx.get(f"{url}/anything", headers=send_only, timeout=5).status_code == 403


def test_a_tenant_never_sees_another_tenants_notification(stack: Stack) -> None:
    message_id = post(stack, request_body(unique("iso")), tenant="acme").json()["messageId"]
    stack.wait_status(message_id, "SENT", tenant="acme")
    other = stack.state(message_id, tenant="globex")
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("application/problem+json")


def test_health_readiness_and_metrics(stack: Stack) -> None:
    assert httpx.get(f"{stack.api}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{stack.api}/readyz", timeout=5).json() == {"status": "ready"}
    message_id = post(stack, request_body(unique("metrics"))).json()["messageId"]
    stack.wait_status(message_id, "SENT")
    # The pipeline's metrics are the worker's; the door's are the ingress's (stack.api).
    worker = httpx.get(f"{stack.api_of('worker')}/metrics", timeout=5).text
    door = httpx.get(f"{stack.api}/metrics", timeout=5).text

    def sample(text: str, name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)
        )

    sent = 'herald_notifications_total{stage="send-email-urgent",status="SENT"}'
    assert sample(worker, sent) >= 1
    accepted = 'herald_provider_requests_total{outcome="accepted",provider="sendgrid"}'
    assert sample(worker, accepted) >= 1
    assert sample(door, 'herald_http_requests_total{code="202",route="/v1/notifications"}') >= 1
    assert httpx.get(f"{stack.api_of('worker')}/readyz", timeout=5).status_code == 200


def test_herald_send_from_the_shell(stack: Stack) -> None:
    user = unique("shell")
    args = ["send", "--tenant", "acme", "--user", user, "--email", f"{user}@example.com",
            "--template", "booking-confirmation", "--locale", "es"]  # fmt: skip
    args += [f"--data={k}={v}" for k, v in DATA.items()]
    done = subprocess.run(herald_cmd(*args), env=stack.env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    message_id = done.stdout.decode().strip().splitlines()[-1]
    stack.wait_status(message_id, "SENT")
    [mail] = stack.sim_messages(to=f"{user}@example.com")
    assert mail["content"]["subject"].startswith("Reserva ABC123")


def test_withdrawn_consent_blocks_and_is_audited(stack: Stack) -> None:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    user = unique("optout")
    consent = {"granted": False, "source": "test", "at": "2026-11-28T10:00:00.000Z"}
    prefs = {"tenant": "acme", "userId": user, "all": consent, "updatedAt": consent["at"]}
    done = subprocess.run(
        herald_cmd("produce", PREFERENCES), input=orjson.dumps(prefs) + b"\n",
        env=stack.env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    # Over HTTP (seed 6.12): 403 opted-out once the withdrawal has reached the
    # preferences table (another agent reads that topic: bounded retry), audited.
    def refused() -> httpx.Response | None:
        resp = post(stack, request_body(user))
        return resp if resp.status_code == 403 else None

    resp = wait_for(refused, timeout=30, every=0.5)
    problem = resp.json()
    assert problem["type"] == "urn:herald:problem:opted-out" and problem["rule"] == "opted-out-all"
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert stack.state(problem["messageId"]).status_code == 404  # nothing was enqueued

    # Straight to Kafka, the pipeline itself blocks it: status BLOCKED, audited.
    message_id = unique("msg")
    record = {"messageId": message_id, "tenant": "acme", **request_body(user)}
    producer = Producer(producer_config(bootstrap))
    producer.produce(REQUESTS, key=f"acme:{user}",
                     value=codec().encode("NotificationRequest", record))  # fmt: skip
    assert producer.flush(10) == 0
    assert stack.wait_status(message_id, "BLOCKED")["status"] == "BLOCKED"
    assert stack.sim_messages(to=f"{user}@example.com") == []

    audits = [codec().decode("AuditRecord", m.value()) for m in read_topic(bootstrap, AUDIT)]
    for blocked_id in (problem["messageId"], message_id):
        [audit] = [a for a in audits if a["messageId"] == blocked_id]
        assert audit["decision"] == "BLOCKED" and audit["rule"] == "opted-out-all"
        assert audit["userId"] == user
