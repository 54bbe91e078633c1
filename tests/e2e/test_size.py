"""Size limits end to end on the real broker (issue 8, item 2).

Over HTTP, a big request is answered 413 or 422 with the limit, or accepted and then
carried to an outcome: never PENDING for ever. Over Kafka, a record near 1 MB ends as a
`too-large` dead letter whose payload is truncated to fit the DLQ topic and which names
the original's topic, partition and offset; the ingest agent does not crash, and a good
message sent after it is delivered.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from pipeline.domain.limits import Limits
from pipeline.kafka.catalog import REQUESTS
from pipeline.kafka.io import producer_config
from tests.harness import (
    Stack,
    codec,
    dead_letters,
    history,
    post,
    request_body,
    unique,
    wait_for,
)

LIMITS = Limits.compute()  # the catalog sets no max.message.bytes: the broker defaults
FINAL_OR_SENT = {"SENT", "DELIVERED", "DLQ", "FAILED"}


def big_body(user: str, filler: str, size: int) -> dict[str, Any]:
    body = request_body(user)
    body["data"] = {**body["data"], "name": filler * (size // len(filler.encode()))}
    return body


def worker_log(stack: Stack) -> str:
    return (stack.home / "worker.log").read_text(errors="replace")


def test_a_180kb_request_is_sent_or_refused_with_the_limit_never_pending(stack: Stack) -> None:
    # Plain text: its dispatch (request + text + html, about 540 KB) fits a lane.
    plain = post(stack, big_body(unique("big"), "x", 180_000))
    assert plain.status_code == 202, plain.text
    state = stack.wait_status_in(plain.json()["messageId"], FINAL_OR_SENT, timeout=60)
    assert history(state)[:3] == ["PENDING", "PROCESSING", "SENT"]

    # `&` escapes to `&amp;` in the html: the dispatch would be about 1.26 MB, 7x the body.
    amp = post(stack, big_body(unique("amp"), "&", 180_000))
    assert amp.status_code == 422, amp.text
    assert amp.headers["content-type"].startswith("application/problem+json")
    [error] = amp.json()["errors"]
    assert error["field"] == "data" and str(LIMITS.rendered_bytes) in error["message"]


def test_a_near_1mb_request_over_http_is_413_with_the_limit(stack: Stack) -> None:
    resp = post(stack, big_body(unique("huge"), "x", 1_000_000))
    assert resp.status_code == 413, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert str(int(stack.env.get("HERALD_HTTP_MAX_BODY", 256 * 1024))) in resp.json()["detail"]


def test_a_near_1mb_record_is_a_truncated_too_large_dead_letter_and_nothing_crashes(
    stack: Stack,
) -> None:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    pid = stack.pid("worker")
    user, message_id = unique("huge"), unique("msg")
    record = {"messageId": message_id, "tenant": "acme", **big_body(user, "x", 1_000_000)}
    value = codec().encode("NotificationRequest", record)
    assert LIMITS.request_bytes < len(value) < 1_048_000  # the topic takes it, ingest may not
    producer = Producer({**producer_config(bootstrap), "message.max.bytes": 1_048_576})
    where: list[Any] = []
    producer.produce(REQUESTS, key=f"acme:{user}", value=value,
                     on_delivery=lambda err, msg: where.append((err, msg)))  # fmt: skip
    assert producer.flush(30) == 0
    [(err, msg)] = where
    assert err is None, err

    state = stack.wait_status(message_id, "DLQ", timeout=60)
    assert history(state) == ["DLQ"] and state["status"] == "DLQ"
    [letter] = wait_for(lambda: dead_letters(stack, message_id) or None, 30)
    assert letter["reason"] == "too-large" and letter["stage"] == "ingest"
    assert (letter["topic"], letter["partition"], letter["offset"]) == (
        REQUESTS, msg.partition(), msg.offset()
    )  # fmt: skip
    assert letter["truncated"] is True and letter["valueBytes"] == len(value)
    assert value.startswith(letter["value"]) and len(letter["value"]) < len(value)

    # The agent went on: a good message after it is delivered, no restart, same process.
    good = post(stack, request_body(unique("after")))
    assert good.status_code == 202
    stack.wait_status(good.json()["messageId"], "SENT")
    assert stack.pid("worker") == pid
    log = worker_log(stack)
    assert "Restarting dead" not in log and "MessageSizeTooLarge" not in log
