"""Provider webhooks over HTTP: the signature is the authentication."""

from __future__ import annotations

import httpx
import orjson

from tests.harness import Stack


def test_an_unsigned_or_tampered_webhook_is_refused(stack: Stack) -> None:
    events = [{"email": "a@example.com", "event": "delivered", "sg_event_id": "e1",
               "sg_message_id": "x.y", "timestamp": 1764324000, "tenant": "acme",
               "messageId": "m-forged"}]  # fmt: skip
    url = f"{stack.api}/webhooks/sendgrid"
    unsigned = httpx.post(url, content=orjson.dumps(events), timeout=5)
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"].startswith("application/problem+json")
    forged = httpx.post(
        url,
        content=orjson.dumps(events),
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": "MEUCIQD" + "A" * 60,
            "X-Twilio-Email-Event-Webhook-Timestamp": "1764324000",
        },
        timeout=5,
    )
    assert forged.status_code == 401
    assert stack.state("m-forged").status_code == 404  # nothing reached the state


def test_unknown_provider_is_404(stack: Stack) -> None:
    assert httpx.post(f"{stack.api}/webhooks/nope", content=b"{}", timeout=5).status_code == 404


def test_whatsapp_subscription_handshake(stack: Stack) -> None:
    url = f"{stack.api}/webhooks/whatsapp-cloud"
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444",
             "hub.verify_token": stack.env["WHATSAPP_VERIFY_TOKEN"]}  # fmt: skip
    ok = httpx.get(url, params=query, timeout=5)
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = httpx.get(url, params={**query, "hub.verify_token": "guess"}, timeout=5)
    assert wrong.status_code == 403
