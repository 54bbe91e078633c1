"""Retries, dead letters, circuit breakers and failover on the real broker, with
faults scripted through the provider simulator (seed 6.6, 6.9, 6.10)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import (
    Stack,
    codec,
    dead_letters,
    gaps_before_retries,
    history,
    post,
    request_body,
    unique,
)


@pytest.fixture(autouse=True)
def no_faults(stack: Stack) -> Iterator[None]:
    stack.clear_faults()
    yield
    stack.clear_faults()


def test_provider_5xx_three_times_then_sent_after_three_growing_retries(stack: Stack) -> None:
    user = unique("retry")
    # Each retry fails over to the other email provider: SendGrid fails the 1st and 3rd
    # attempts, SMTP the 2nd; the 4th (SMTP) goes out.
    stack.fault("sendgrid", fail="5xx", times=2, to=f"{user}@example.com")
    stack.fault("smtp", fail="5xx", times=1)
    message_id = post(stack, request_body(user)).json()["messageId"]
    state = stack.wait_status(message_id, "SENT", timeout=60)

    expected = ["PENDING"] + ["PROCESSING", "RETRY"] * 3 + ["PROCESSING", "SENT"]
    assert history(state)[: len(expected)] == expected
    assert [a["outcome"] for a in state["attempts"]] == ["RETRY"] * 3 + ["SENT"]
    assert [a["provider"] for a in state["attempts"]] == ["sendgrid", "smtp"] * 2
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
