"""WhatsApp's 24-hour window and push data, end to end on the real broker: a user who
never wrote gets the approved template with its parameters; after the user writes
(the simulator posts the signed inbound webhook), the next message goes as text, for
the tenant that owns the business number only; a push's data reaches FCM."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.harness import Stack, phone, post, unique, wait_for

GATE = {"name": "Ana", "flight": "IB3456", "oldGate": "A3", "newGate": "B12"}
VIEW_LAG_S = 2.0  # the workers' view of the windows reads the topic a fetch behind


def gate_change(user: str, **recipient: Any) -> dict[str, Any]:
    return {"recipient": {"userId": user, **recipient}, "template": "gate-change",
            "data": GATE, "priority": "high"}  # fmt: skip


def whatsapp_sent(stack: Stack, number: str, tenant: str = "acme") -> dict[str, Any]:
    """Send a gate change to `number` on WhatsApp only; what the simulator received."""
    before = len(stack.sim_messages(to=number))
    body = gate_change(unique("wa"), whatsapp=number) | {"channels": ["whatsapp"]}
    resp = post(stack, body, tenant)
    assert resp.status_code == 202, resp.text
    stack.wait_status(resp.json()["messageId"], "SENT", tenant=tenant, timeout=30)
    messages = wait_for(lambda: stack.sim_messages(to=number)[before:], timeout=10)
    [message] = messages
    return dict(message["content"])


def user_writes(stack: Stack, number: str) -> None:
    resp = httpx.post(f"{stack.sim}/_sim/whatsapp/inbound", json={"from": number}, timeout=10)
    assert resp.status_code == 200 and resp.json()["webhookStatus"] == 200, resp.text
    time.sleep(VIEW_LAG_S)


def test_outside_the_window_an_approved_template_then_text_once_the_user_wrote(
    stack: Stack,
) -> None:
    number = phone()
    first = whatsapp_sent(stack, number)
    assert first["type"] == "template"
    assert first["approved"] == {
        "name": "gate_change", "language": "en", "parameters": ["Ana", "IB3456", "B12", "A3"],
    }  # fmt: skip

    user_writes(stack, number)
    second = whatsapp_sent(stack, number)
    assert second["type"] == "text" and "gate B12" in second["text"]["body"]


def test_a_window_opened_with_the_owner_tenant_is_not_another_tenants(stack: Stack) -> None:
    number = phone()
    user_writes(stack, number)
    assert whatsapp_sent(stack, number, tenant="acme")["type"] == "text"
    assert whatsapp_sent(stack, number, tenant="beta")["type"] == "template"


def test_push_data_reaches_fcm(stack: Stack) -> None:
    token = f"tok-{unique('data')}"
    body = gate_change(unique("push"), pushTokens=[token]) | {"channels": ["push"]}
    message_id = post(stack, body).json()["messageId"]
    stack.wait_status(message_id, "SENT", timeout=30)
    [message] = stack.sim_messages(to=token)
    assert message["content"]["data"] == {
        "type": "gate-change", "flight": "IB3456", "gate": "B12",
        "messageId": message_id, "tenant": "acme",
    }  # fmt: skip
