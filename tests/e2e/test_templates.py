"""Templates on the real broker (issue 12): the flight templates on their fallback chain,
locale fallback, a template saved through the API used by the next message without a
restart, and the A/B split of a campaign over 1,000 users."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from pipeline.kafka.catalog import REQUESTS
from pipeline.kafka.io import producer_config
from tests.harness import Stack, codec, phone, post, unique, wait_for

GATE = {"name": "Ana", "flight": "IB3456", "oldGate": "B12", "newGate": "C40"}


def gate_change(user: str, number: str, locale: str | None = None) -> dict[str, Any]:
    recipient = {"userId": user, "phone": number, "whatsapp": number[:-4] + "0000"}
    if locale is not None:
        recipient["locale"] = locale
    return {"recipient": recipient, "template": "gate-change", "data": GATE, "priority": "high"}


def sms_text(stack: Stack, number: str) -> str:
    [sms] = wait_for(lambda: stack.sim_messages(to=number))
    assert (sms["channel"], sms["provider"]) == ("sms", "twilio")
    return str(sms["content"]["body"])


def test_a_gate_change_to_someone_not_on_whatsapp_falls_back_to_sms_with_the_new_gate(
    stack: Stack,
) -> None:
    user, number = unique("gate"), phone()
    message_id = post(stack, gate_change(user, number)).json()["messageId"]
    state = stack.wait_status(message_id, "SENT")
    assert [(a["channel"], a["outcome"]) for a in state["attempts"]] == [
        ("whatsapp", "FALLBACK"), ("sms", "SENT"),
    ]  # fmt: skip
    text = sms_text(stack, number)
    assert "C40" in text and "B12" in text and "gate change" in text
    assert (state["locale"], state["templateVersion"]) == ("en", 1)


def test_es_mx_renders_the_spanish_text(stack: Stack) -> None:
    user, number = unique("gate-mx"), phone()
    message_id = post(stack, gate_change(user, number, locale="es-MX")).json()["messageId"]
    state = stack.wait_status(message_id, "SENT")
    text = sms_text(stack, number)
    assert "cambio de puerta" in text and "C40" in text
    assert state["locale"] == "es"


def manage(stack: Stack, tenant: str) -> dict[str, str]:
    return stack.headers(tenant, scope="templates:manage notifications:send notifications:read")


def saved_gate_change(text: str) -> dict[str, Any]:
    return {"priority": "high", "variables": ["name", "flight", "oldGate", "newGate"],
            "locales": {"en": {"sms": {"text": text}}}}  # fmt: skip


def test_a_template_saved_through_the_api_is_used_by_the_next_message(stack: Stack) -> None:
    tenant = unique("tpl")  # its own tenant: the others keep the shipped gate-change
    url = f"{stack.api}/v1/templates/gate-change"
    sent = []
    for version, words in ((2, "now boards at"), (3, "moved to")):
        text = f"{{{{ name }}}}: {{{{ flight }}}} {words} {{{{ newGate }}}} (was {{{{ oldGate }}}})"
        saved = httpx.put(url, json=saved_gate_change(text), headers=manage(stack, tenant),
                          timeout=15)  # fmt: skip
        assert saved.status_code == 200 and saved.json()["version"] == version, saved.text
        number = phone()
        request = gate_change(unique("u"), number) | {"channels": ["sms"]}
        message_id = post(stack, request, tenant=tenant).json()["messageId"]
        state = stack.wait_status(message_id, "SENT", tenant=tenant)
        assert sms_text(stack, number) == f"Ana: IB3456 {words} C40 (was B12)"
        sent.append(state["templateVersion"])
    assert sent == [2, 3]
    read = httpx.get(url, headers=manage(stack, tenant), timeout=5).json()
    assert (read["version"], read["source"]) == (3, "saved")
    # Another tenant still has the shipped template.
    number = phone()
    other = post(stack, gate_change(unique("u"), number) | {"channels": ["sms"]})
    assert stack.wait_status(other.json()["messageId"], "SENT")["templateVersion"] == 1
    assert "gate change" in sms_text(stack, number)


def test_a_template_reaching_python_internals_is_refused_and_never_rendered(
    stack: Stack,
) -> None:
    tenant = unique("evil")
    refused = httpx.put(
        f"{stack.api}/v1/templates/gate-change",
        json=saved_gate_change("{{ ''.__class__.__mro__ }}{{ name }}{{ flight }}{{ oldGate }}"
                               "{{ newGate }}"),
        headers=manage(stack, tenant), timeout=10,
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert any("__class__" in e["message"] for e in refused.json()["errors"])
    read = httpx.get(f"{stack.api}/v1/templates/gate-change", headers=manage(stack, tenant),
                     timeout=5)  # fmt: skip
    assert read.json()["source"] == "shipped"


USERS = 1000
WEIGHTS = {"a": 0.5, "b": 0.5}  # newsletter.yaml
OFFER = {"name": "Ana", "offer": "MAD-JFK 399 EUR"}


def produce_newsletters(stack: Stack, users: list[str]) -> list[str]:
    """One newsletter per user, straight to the requests topic (as a campaign system
    would): the message ids, in the users' order."""
    producer = Producer(producer_config(stack.env["KAFKA_BOOTSTRAP_SERVERS"]))
    encode, ids = codec().encode, []
    for user in users:
        record = {"messageId": unique("nl"), "tenant": "acme", "template": "newsletter",
                  "priority": "marketing", "data": OFFER,
                  "recipient": {"userId": user, "email": f"{user}@example.com"}}  # fmt: skip
        producer.produce(REQUESTS, key=f"acme:{user}", value=encode("NotificationRequest", record))
        ids.append(record["messageId"])
    assert producer.flush(30) == 0
    return ids


@pytest.mark.slow
def test_the_variant_split_over_1000_users_follows_the_weights_and_is_stable(
    stack: Stack,
) -> None:
    users = [unique("ab") for _ in range(USERS)]
    client = httpx.Client(headers=stack.headers(), timeout=10)

    def variant(message_id: str) -> str:
        """The variant its state names (ingest's PENDING names it already)."""

        def named() -> str | None:
            resp = client.get(f"{stack.api}/v1/notifications/{message_id}")
            return resp.json().get("variant") if resp.status_code == 200 else None

        return str(wait_for(named, 60))

    with client, ThreadPoolExecutor(8) as pool:
        variants = list(pool.map(variant, produce_newsletters(stack, users)))
        again = list(pool.map(variant, produce_newsletters(stack, users[:100])))
    counts = Counter(variants)
    assert set(counts) == set(WEIGHTS)
    for name, weight in WEIGHTS.items():
        assert abs(counts[name] / USERS - weight) < 0.06, counts  # 3.8 standard deviations
    assert again == variants[:100]  # the same user, the same variant
    # What reached each recipient is their variant: b's subject is its own, a's the control.
    for name, words in (("b", "don't miss this"), ("a", "our offer of the month")):
        address = f"{users[variants.index(name)]}@example.com"
        emails = wait_for(lambda address=address: stack.sim_messages(to=address), 60)
        assert all(words in e["content"]["subject"] for e in emails), (name, emails)
