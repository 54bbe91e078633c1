"""Every channel, fallback chains, failover, retries and rate limits, end to end on the
real broker with faults scripted through the simulator (seed 6.6, 6.9, 6.10)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiokafka.partitioner import murmur2
from confluent_kafka import Producer

from pipeline.kafka.catalog import REQUESTS
from pipeline.kafka.io import producer_config
from tests.harness import (
    DATA,
    Stack,
    at,
    codec,
    dead_letters,
    gaps_before_retries,
    history,
    phone,
    post,
    unique,
    wait_for,
)

PARTITIONS = 6


@pytest.fixture(autouse=True)
def no_faults(stack: Stack) -> Iterator[None]:
    stack.clear_faults()
    yield
    stack.clear_faults()


def body(user: str, priority: str = "high", **recipient: Any) -> dict[str, Any]:
    return {
        "recipient": {"userId": user, **recipient},
        "template": "booking-confirmation",
        "data": DATA,
        "priority": priority,
    }


def partition_of(user: str) -> int:
    return (murmur2(f"acme:{user}".encode()) & 0x7FFFFFFF) % PARTITIONS


def metric(stack: Stack, name: str) -> float:
    """A sample of the worker's metrics (the pipeline's; the ingress has the door's)."""
    text = httpx.get(f"{stack.api_of('worker')}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_not_a_whatsapp_user_falls_back_to_sms_and_the_client_can_wait(stack: Stack) -> None:
    user, number = unique("wa"), phone()[:-4] + "0000"  # 0000: not a WhatsApp user
    resp = httpx.post(
        f"{stack.api}/v1/notifications",
        json=body(user, phone=number, whatsapp=number),
        headers={**stack.headers(), "Prefer": "wait=20"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text  # the outcome, as in the seed's 6.10
    state = resp.json()
    assert state["channel"] == "sms" and state["provider"] == "twilio"
    refusal, sent = state["attempts"]
    assert refusal["channel"] == "whatsapp" and refusal["provider"] == "whatsapp-cloud"
    # Named a fallback (not a retry of WhatsApp); the contract's status stays RETRY.
    assert refusal["outcome"] == "FALLBACK" and "131026" in refusal["error"]
    assert history(state)[:3] == ["PENDING", "PROCESSING", "RETRY"]
    assert sent["channel"] == "sms" and sent["outcome"] == "SENT"
    assert resp.headers["Preference-Applied"] == "wait=20"
    [sms] = stack.sim_messages(to=number)
    assert sms["channel"] == "sms" and sms["provider"] == "twilio"
    delivered = stack.wait_status(state["messageId"], "DELIVERED")  # Twilio's signed callback
    assert delivered["status"] == "DELIVERED" and delivered["channel"] == "sms"


def test_mode_all_sends_on_every_channel(stack: Stack) -> None:
    user, number = unique("all"), phone()
    request = body(user, "standard", email=f"{user}@example.com", phone=number)
    request |= {"channels": ["email", "sms"], "mode": "all"}
    message_id = post(stack, request).json()["messageId"]
    wait_for(lambda: len(stack.sim_messages(to=number)) + len(
        stack.sim_messages(to=f"{user}@example.com")) == 2)  # fmt: skip
    state = stack.wait_status(message_id, "SENT")
    sent = wait_for(
        lambda: (
            [a for a in stack.state(message_id).json()["attempts"] if a["outcome"] == "SENT"][1:]
            and stack.state(message_id).json()
        )
    )
    assert {a["channel"] for a in sent["attempts"] if a["outcome"] == "SENT"} == {"email", "sms"}
    assert state["messageId"] == message_id


def test_push_and_whatsapp_go_out_on_their_own_providers(stack: Stack) -> None:
    user, number, token = unique("push"), phone(), f"tok-{unique('t')}"
    push = post(stack, body(user, "standard", pushTokens=[token]) | {"channels": ["push"]})
    wa = post(stack, body(user, "high", whatsapp=number))
    stack.wait_status(push.json()["messageId"], "SENT")
    stack.wait_status(wa.json()["messageId"], "DELIVERED")
    assert [m["provider"] for m in stack.sim_messages(to=token)] == ["fcm"]
    assert [m["provider"] for m in stack.sim_messages(to=number)] == ["whatsapp-cloud"]


def test_unregistered_push_token_without_another_channel_fails(stack: Stack) -> None:
    user = unique("unreg")
    message_id = post(stack, body(user, "standard", pushTokens=["unregistered-x"])).json()
    state = stack.wait_status(message_id["messageId"], "FAILED")
    assert history(state) == ["PENDING", "PROCESSING", "FAILED"]
    [letter] = dead_letters(stack, message_id["messageId"])
    assert letter["reason"] == "unreachable" and letter["attempts"][0]["provider"] == "fcm"


def test_5xx_three_times_across_both_sms_providers_then_delivered_once(stack: Stack) -> None:
    user, number = unique("tw"), phone()
    # Each retry goes to the other provider: Twilio fails the 1st and 3rd attempts,
    # Vonage the 2nd; the 4th (Vonage) goes out.
    stack.fault("twilio", fail="5xx", times=2, to=number)
    stack.fault("vonage", fail="5xx", times=1, to=number)
    message_id = post(stack, body(user, "standard", phone=number)).json()["messageId"]
    state = stack.wait_status(message_id, "SENT", timeout=60)
    expected = ["PENDING"] + ["PROCESSING", "RETRY"] * 3 + ["PROCESSING", "SENT"]
    assert history(state)[: len(expected)] == expected
    assert [a["provider"] for a in state["attempts"]] == ["twilio", "vonage"] * 2
    gaps = gaps_before_retries(state)
    assert gaps[0] < gaps[1] < gaps[2] and gaps[0] >= 0.45  # the seed's backoff, per message
    assert [m["provider"] for m in stack.sim_messages(to=number)] == ["vonage"]


def test_every_provider_5xx_dead_letters_after_three_retries_while_the_partition_moves_on(
    stack: Stack,
) -> None:
    failing_user, failing = unique("dlq"), phone()
    target = partition_of(failing_user)
    others = list(itertools.islice(
        (u for u in (unique("peer") for _ in range(500)) if partition_of(u) == target), 3
    ))  # fmt: skip
    assert len(others) == 3
    stack.fault("twilio", fail="5xx", to=failing)  # every SMS provider down for it
    stack.fault("vonage", fail="5xx", to=failing)
    failed_id = post(stack, body(failing_user, "standard", phone=failing)).json()["messageId"]
    stack.wait_status(failed_id, "RETRY")
    peer_ids = [post(stack, body(u, "standard", phone=phone())).json()["messageId"] for u in others]

    final = stack.wait_status(failed_id, "DLQ", timeout=60)
    assert history(final).count("RETRY") == 3
    dlq_at = at(next(h for h in final["history"] if h["status"] == "DLQ"))
    for peer in peer_ids:  # delivered while the failing message was waiting to retry
        sent = stack.wait_status(peer, "SENT")
        assert at(next(h for h in sent["history"] if h["status"] == "SENT")) < dlq_at
    [letter] = dead_letters(stack, failed_id)
    assert letter["reason"] == "retries-exhausted:provider-error"
    assert [a["provider"] for a in letter["attempts"]] == ["twilio", "vonage"] * 2  # each tried
    assert stack.sim_messages(to=failing) == []


def test_retry_after_of_a_429_is_honoured(stack: Stack) -> None:
    user, number = unique("429"), phone()
    stack.fault("twilio", fail="429", times=1, to=number, retryAfter=2)
    message_id = post(stack, body(user, "standard", phone=number)).json()["messageId"]
    state = stack.wait_status(message_id, "SENT", timeout=60)
    [gap] = gaps_before_retries(state)
    # At least the provider's 2 s; well under the policy's own (scaled) 15 s.
    assert 2.0 <= gap < 10.0
    assert "retry in 2s" in next(h["error"] for h in state["history"] if h["status"] == "RETRY")


def test_sendgrid_down_fails_over_to_smtp_and_the_circuit_closes_again(stack: Stack) -> None:
    assert metric(stack, 'herald_circuit_state{provider="sendgrid"}') == 0
    stack.fault("sendgrid", fail="down")
    ids = []
    for _ in range(5):  # one at a time: five single SendGrid calls fail (not one batch)
        user = unique("down")
        ids.append(post(stack, body(user, "standard", email=f"{user}@example.com")).json()
                   ["messageId"])  # fmt: skip
        stack.wait_status(ids[-1], "RETRY")
    for message_id in ids:  # 5 failures open the circuit; each retry went to SMTP
        state = stack.wait_status(message_id, "SENT", timeout=60)
        assert state["provider"] == "smtp"
        assert [a["provider"] for a in state["attempts"]] == ["sendgrid", "smtp"]
    assert metric(stack, 'herald_circuit_state{provider="sendgrid"}') in (1, 2)

    later = unique("later")
    state = stack.wait_status(
        post(stack, body(later, "standard", email=f"{later}@example.com")).json()["messageId"],
        "SENT",
    )
    if metric(stack, 'herald_circuit_state{provider="sendgrid"}') == 1:
        assert [a["provider"] for a in state["attempts"]] == ["smtp"]  # SendGrid skipped
    assert [m["provider"] for m in stack.sim_messages(to=f"{later}@example.com")] == ["smtp"]

    stack.clear_faults()  # the provider is back: the circuit closes within the interval

    def closed() -> bool:
        user = unique("back")
        post(stack, body(user, "standard", email=f"{user}@example.com"))
        return metric(stack, 'herald_circuit_state{provider="sendgrid"}') == 0

    wait_for(closed, timeout=15, every=1.0)
    user = unique("again")
    message_id = post(stack, body(user, "standard", email=f"{user}@example.com")).json()
    assert stack.wait_status(message_id["messageId"], "SENT")["provider"] == "sendgrid"


def test_rate_limit_spaces_a_providers_sends(stack: Stack) -> None:
    user = unique("rate")
    before = metric(stack, 'herald_rate_limited_total{provider="fcm"}')
    tokens = [f"tok-{unique('r')}" for _ in range(6)]
    ids = [post(stack, body(user, "standard", pushTokens=[t])).json()["messageId"] for t in tokens]
    for message_id in ids:
        stack.wait_status(message_id, "SENT", timeout=30)
    # One user: one partition, whose budget is 12/s over 6 partitions = 2/s, burst 2.
    times = sorted(
        datetime.fromisoformat(m["at"].replace("Z", "+00:00"))
        for t in tokens for m in stack.sim_messages(to=t)
    )  # fmt: skip
    assert len(times) == 6
    assert (times[-1] - times[0]).total_seconds() >= 1.5  # 4 of them waited 0.5 s each
    assert metric(stack, 'herald_rate_limited_total{provider="fcm"}') - before >= 3


def test_bulk_email_is_micro_batched_with_each_recipients_own_content(stack: Stack) -> None:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    users = [unique("bulk") for _ in range(30)]
    producer = Producer(producer_config(bootstrap))
    for user in users:  # produced together, so they reach the bulk lane together
        record = body(user, "marketing", email=f"{user}@example.com")
        record |= {"messageId": f"m-{user}", "tenant": "acme",
                   "data": {**DATA, "bookingRef": user[-8:]}}  # fmt: skip
        value = codec().encode("NotificationRequest", record)
        producer.produce(REQUESTS, key=f"acme:{user}", value=value)
    assert producer.flush(10) == 0
    for user in users:
        stack.wait_status(f"m-{user}", "SENT")

    mails = {user: stack.sim_messages(to=f"{user}@example.com") for user in users}
    assert all(len(m) == 1 for m in mails.values())  # once each
    for user, [mail] in mails.items():  # each recipient got its own rendering
        assert user[-8:] in mail["content"]["subject"]
        assert user[-8:] in mail["content"]["content"][0]["value"]
        assert mail["content"]["customArgs"]["messageId"] == f"m-{user}"
    calls = {mail["providerMessageId"] for [mail] in mails.values()}
    assert len(calls) < len(users)  # fewer SendGrid requests than messages
    assert metric(stack, 'herald_provider_batch_size_count{provider="sendgrid"}') >= 1


@pytest.mark.parametrize(
    ("channel", "primary", "secondary", "contact"),
    [("sms", "twilio", "vonage", "phone"),
     ("whatsapp", "whatsapp-cloud", "twilio-whatsapp", "whatsapp")],
)  # fmt: skip
def test_primary_down_fails_over_to_the_secondary(
    stack: Stack, channel: str, primary: str, secondary: str, contact: str
) -> None:
    gauge = f'herald_circuit_state{{provider="{primary}"}}'
    stack.fault(primary, fail="down")
    numbers = [phone() for _ in range(5)]
    ids = [post(stack, body(unique("fo"), "high", **{contact: n}) | {"channels": [channel]})
           .json()["messageId"] for n in numbers]  # fmt: skip
    for message_id, number in zip(ids, numbers, strict=True):
        assert stack.wait_status(message_id, "SENT", timeout=60)["provider"] == secondary
        assert [m["provider"] for m in stack.sim_messages(to=number)] == [secondary]
    assert metric(stack, gauge) in (1, 2)

    stack.clear_faults()

    def closed() -> bool:
        post(stack, body(unique("back"), "high", **{contact: phone()}) | {"channels": [channel]})
        return metric(stack, gauge) == 0

    wait_for(closed, timeout=15, every=1.0)
