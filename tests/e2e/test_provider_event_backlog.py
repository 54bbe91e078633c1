"""A backlog of provider events that overtook their sends never stops the worker (the
livelock of 0.7.0: a stage that waited in place for the status projection filled its
buffer, Faust's one fetch loop stopped for every topic, the status topic included, and
the projection the events waited for never caught up). Here 6,000 events for messages
the state does not know land on herald.provider.events at once: each is parked, a
notification sent right after goes through in seconds, and once their wait is over
every one of them is judged (unknown-message), none left behind."""

from __future__ import annotations

import uuid

import httpx
from confluent_kafka import Producer

from pipeline.kafka.catalog import PROVIDER_EVENTS
from pipeline.kafka.io import producer_config
from tests.harness import Stack, codec, post, request_body, unique, wait_for

EVENTS = 6_000  # more than a stream's buffer (4,096 records)


def dropped_unknown(stack: Stack) -> float:
    text = httpx.get(f"{stack.api_of('worker')}/metrics", timeout=5).text
    prefix = "herald_provider_events_dropped_total{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and 'reason="unknown-message"' in line
    )


def test_a_flood_of_early_events_neither_stops_the_worker_nor_is_left_unjudged(
    stack: Stack,
) -> None:
    before = dropped_unknown(stack)
    producer = Producer(producer_config(stack.env["KAFKA_BOOTSTRAP_SERVERS"]))
    avro = codec()
    run = uuid.uuid4().hex[:8]
    for n in range(EVENTS):
        message_id = f"flood-{run}-{n}"
        record = {"provider": "sendgrid", "channel": "email", "providerMessageId": f"SG{n}",
                  "eventId": f"flood-{run}-{n}", "tenant": "acme", "messageId": message_id,
                  "event": "DELIVERED", "reason": None, "at": "2026-11-28T10:00:00Z"}  # fmt: skip
        producer.produce(PROVIDER_EVENTS, key=f"acme:{message_id}",
                         value=avro.encode("ProviderEvent", record))  # fmt: skip
        if n % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0

    # The pipeline goes on meanwhile: a notification is sent and its state reads SENT.
    message_id = post(stack, request_body(unique("flood"))).json()["messageId"]
    stack.wait_status(message_id, "SENT", timeout=30)
    # Every flooded event was judged once its wait was over, none left parked.
    wait_for(lambda: dropped_unknown(stack) - before >= EVENTS, timeout=90, every=1.0)
    assert dropped_unknown(stack) - before == EVENTS
