"""Retries, dead letters, circuit breakers and failover on the real broker, with
faults scripted through the provider simulator (seed 6.6, 6.9, 6.10)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from pipeline.kafka.catalog import DLQ

from .harness import Stack
from .test_pipeline import codec, history, post, read_topic, request_body, unique

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(autouse=True)
def no_faults(stack: Stack) -> Iterator[None]:
    stack.clear_faults()
    yield
    stack.clear_faults()


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))


def gaps_before_retries(state: dict[str, Any]) -> list[float]:
    """Seconds from each RETRY to the PROCESSING of the next attempt."""
    entries = state["history"]
    out = []
    for i, entry in enumerate(entries):
        if entry["status"] == "RETRY":
            nxt = next(e for e in entries[i + 1 :] if e["status"] == "PROCESSING")
            out.append((at(nxt) - at(entry)).total_seconds())
    return out


def dead_letters(stack: Stack, message_id: str) -> list[dict[str, Any]]:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    letters = [codec().decode("DeadLetter", m.value()) for m in read_topic(bootstrap, DLQ)]
    return [d for d in letters if d["messageId"] == message_id]


def test_provider_5xx_three_times_then_sent_after_three_growing_retries(stack: Stack) -> None:
    user = unique("retry")
    stack.fault("sendgrid", fail="5xx", times=3)
    message_id = post(stack, request_body(user)).json()["messageId"]
    state = stack.wait_status(message_id, "SENT", timeout=60)

    expected = ["PENDING"] + ["PROCESSING", "RETRY"] * 3 + ["PROCESSING", "SENT"]
    assert history(state)[: len(expected)] == expected
    assert [a["outcome"] for a in state["attempts"]] == ["RETRY"] * 3 + ["SENT"]
    gaps = gaps_before_retries(state)
    # The policy's 2 s, 4 s, 8 s scaled by 0.25 in the suite: 0.5 s, 1 s, 2 s.
    assert [g >= d * 0.9 for g, d in zip(gaps, (0.5, 1.0, 2.0), strict=True)] == [True] * 3
    assert gaps[0] < gaps[1] < gaps[2]
    assert len(stack.sim_messages(to=f"{user}@example.com")) == 1


def test_invalid_data_is_dead_lettered_without_retry(stack: Stack) -> None:
    user = unique("bad")
    body = request_body(user)
    body["recipient"]["email"] = f"{user}@invalid.test"  # the provider rejects it: 400
    message_id = post(stack, body).json()["messageId"]
    state = stack.wait_status(message_id, "DLQ")

    assert history(state) == ["PENDING", "PROCESSING", "DLQ"]
    [letter] = dead_letters(stack, message_id)
    assert letter["reason"] == "invalid" and letter["stage"] == "send-email-urgent"
    assert [a["outcome"] for a in letter["attempts"]] == ["invalid"]
    assert letter["attempts"][0]["provider"] == "sendgrid"
    original = codec().decode("ChannelDispatch", letter["value"])
    assert original["messageId"] == message_id
    assert codec().decode("NotificationRequest", original["request"])["recipient"]["userId"] == user
