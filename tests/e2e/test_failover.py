"""Failover before the dead letter (issue 11, item 1), on the real broker: a retry after a
provider failure goes to the channel's next provider, after the policy's delay, and a
message reaches the DLQ only once every provider of its channel was tried. Faults are
scripted per recipient where the simulator allows it, so other messages are untouched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import (
    DATA,
    Stack,
    dead_letters,
    gaps_before_retries,
    history,
    phone,
    post,
    unique,
)

# The policy's first delay, 2 s, scaled by HERALD_RETRY_SCALE=0.25 in the suite; a little
# slack for the clocks of two processes.
FIRST_DELAY_S = 0.5 * 0.9


@pytest.fixture(autouse=True)
def no_faults(stack: Stack) -> Iterator[None]:
    stack.clear_faults()
    yield
    stack.clear_faults()


def body(user: str, **recipient: Any) -> dict[str, Any]:
    return {"recipient": {"userId": user, **recipient}, "template": "booking-confirmation",
            "data": DATA, "priority": "standard"}  # fmt: skip


def tried(state: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["channel"], a["provider"], a["outcome"]) for a in state["attempts"]]


def test_sendgrid_down_one_email_goes_out_through_smtp_after_the_first_retry_delay(
    stack: Stack,
) -> None:
    user = unique("sgdown")
    address = f"{user}@example.com"
    stack.fault("sendgrid", fail="5xx", to=address)  # SendGrid fails every call for it
    message_id = post(stack, body(user, email=address)).json()["messageId"]
    state = stack.wait_status(message_id, "SENT", timeout=60)

    assert (state["status"], state["channel"], state["provider"]) == ("SENT", "email", "smtp")
    assert tried(state) == [("email", "sendgrid", "RETRY"), ("email", "smtp", "SENT")]
    assert history(state) == ["PENDING", "PROCESSING", "RETRY", "PROCESSING", "SENT"]
    processing = [h["provider"] for h in state["history"] if h["status"] == "PROCESSING"]
    assert processing == ["sendgrid", "smtp"]
    [gap] = gaps_before_retries(state)
    assert gap >= FIRST_DELAY_S  # the policy's first retry delay, not at once
    assert [m["provider"] for m in stack.sim_messages(to=address)] == ["smtp"]  # exactly once


def test_twilio_down_an_sms_goes_out_through_vonage(stack: Stack) -> None:
    user, number = unique("twdown"), phone()
    stack.fault("twilio", fail="5xx", to=number)
    message_id = post(stack, body(user, phone=number)).json()["messageId"]
    state = stack.wait_status(message_id, "SENT", timeout=60)

    assert (state["channel"], state["provider"]) == ("sms", "vonage")
    assert tried(state) == [("sms", "twilio", "RETRY"), ("sms", "vonage", "SENT")]
    assert gaps_before_retries(state)[0] >= FIRST_DELAY_S
    assert [m["provider"] for m in stack.sim_messages(to=number)] == ["vonage"]
    delivered = stack.wait_status(message_id, "DELIVERED")  # Vonage's signed receipt
    assert delivered["provider"] == "vonage"


def test_every_email_provider_down_dead_letters_only_after_each_was_tried(stack: Stack) -> None:
    user = unique("alldown")
    address = f"{user}@example.com"
    stack.fault("sendgrid", fail="5xx", to=address)
    stack.fault("smtp", fail="5xx")  # the sink answers 451 to MAIL, every connection
    message_id = post(stack, body(user, email=address)).json()["messageId"]
    state = stack.wait_status(message_id, "DLQ", timeout=60)

    # The seed's three retries (6.6), per message, alternating between the providers.
    providers = ["sendgrid", "smtp", "sendgrid", "smtp"]
    assert tried(state) == [("email", p, "RETRY") for p in providers[:3]] + [
        ("email", "smtp", "DLQ")
    ]
    gaps = gaps_before_retries(state)
    assert len(gaps) == 3 and gaps[0] < gaps[1] < gaps[2]  # the backoff grows across providers
    [letter] = dead_letters(stack, message_id)
    assert letter["reason"] == "retries-exhausted:provider-error"
    assert [a["provider"] for a in letter["attempts"]] == providers
    assert stack.sim_messages(to=address) == []
