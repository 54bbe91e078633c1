"""Provider events that cannot be forged, over HTTP against the running stack.

Each test posts what a hostile party (or a careless provider) could post: a
webhook signed with the development keys that shipped in the repository up to
0.4.0, a correctly signed event naming another provider or another provider
message id, an event for a message that never existed, a replay with an old
signed timestamp, and the same event twice. The stack's secrets are made per
run (tests/harness.py `stack_env`), like `herald up` makes them.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from pipeline.http.webhooks import sendgrid, twilio, vonage, whatsapp_cloud
from pipeline.kafka.catalog import STATUS
from pipeline.settings import Settings
from tests.harness import Stack, codec, history, post, read_topic, request_body, unique, wait_for

# The SendGrid webhook private key and the HMAC secrets that shipped as defaults up to
# 0.4.0: public, so anything they sign must be refused.
OLD_SENDGRID_PRIVATE_KEY = (
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgM3tjgr6bAJOuZFihBXG1l5npghi4KUvlgjT095iz"
    "UmqhRANCAATGfou9Wvc6r+47x50CAYZ7KvF25+CxM+k+qlOyQUIsur8Xn6mwnPItnsyfaInMrBQjpYovm3rH0Juk"
    "HeYTTS8Y"
)
OLD_TWILIO_AUTH_TOKEN = "sim-twilio-auth-token"
OLD_VONAGE_SIGNATURE_SECRET = "sim-vonage-signature-secret"
OLD_WHATSAPP_APP_SECRET = "sim-whatsapp-app-secret"


def settings_of(stack: Stack) -> Settings:
    return Settings.from_env(stack.env)


def sendgrid_post(stack: Stack, events: list[dict[str, Any]], *, key: str | None = None,
                  timestamp: int | None = None) -> httpx.Response:  # fmt: skip
    body = orjson.dumps(events)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = sendgrid.sign(key or settings_of(stack).sim_sendgrid_webhook_private_key, ts, body)
    headers = {sendgrid.SIGNATURE: signature, sendgrid.TIMESTAMP: ts,
               "Content-Type": "application/json"}  # fmt: skip
    return httpx.post(f"{stack.api}/webhooks/sendgrid", content=body, headers=headers, timeout=5)


def sendgrid_event(message_id: str, kind: str, sg_message_id: str, **extra: Any) -> dict[str, Any]:
    return {"email": "a@example.com", "event": kind, "sg_message_id": sg_message_id,
            "sg_event_id": unique("sg"), "timestamp": int(time.time()), "tenant": "acme",
            "messageId": message_id, **extra}  # fmt: skip


def twilio_post(stack: Stack, message_id: str, params: dict[str, str],
                token: str | None = None) -> httpx.Response:  # fmt: skip
    url = f"{stack.api}/webhooks/twilio?" + urlencode({"tenant": "acme", "messageId": message_id})
    signature = twilio.sign(token or settings_of(stack).twilio_auth_token, url, params.items())
    return httpx.post(url, data=params, headers={twilio.SIGNATURE: signature}, timeout=5)


def dropped(stack: Stack, provider: str, reason: str) -> float:
    """herald_provider_events_dropped_total{provider, reason} on the worker (0 if absent)."""
    text = httpx.get(f"{stack.api_of('worker')}/metrics", timeout=5).text
    name = "herald_provider_events_dropped_total"
    labels = f'provider="{re.escape(provider)}",reason="{re.escape(reason)}"'
    pattern = rf"^{name}\{{{labels}\}} (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def delivered_email(stack: Stack) -> tuple[str, str]:
    """A message delivered by SendGrid (the simulator's own webhook); its provider id."""
    message_id = post(stack, request_body(unique("forge"))).json()["messageId"]
    state = stack.wait_status(message_id, "DELIVERED")
    sent = next(a for a in state["attempts"] if a["outcome"] == "SENT")
    assert sent["provider"] == "sendgrid"
    return message_id, sent["providerMessageId"]


def test_webhooks_signed_with_the_old_shipped_keys_are_refused(stack: Stack) -> None:
    message_id, provider_id = delivered_email(stack)
    bounce = sendgrid_event(message_id, "bounce", f"{provider_id}.x", type="bounce")
    assert sendgrid_post(stack, [bounce], key=OLD_SENDGRID_PRIVATE_KEY).status_code == 401

    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "failed", "To": "+34600000001"}
    assert twilio_post(stack, message_id, params, token=OLD_TWILIO_AUTH_TOKEN).status_code == 401

    receipt = {"messageId": "0A0000001", "status": "failed", "client-ref": f"acme:{message_id}",
               "timestamp": str(int(time.time())), "nonce": unique("n")}  # fmt: skip
    receipt["sig"] = vonage.sign(OLD_VONAGE_SIGNATURE_SECRET, receipt)
    old_vonage = httpx.post(f"{stack.api}/webhooks/vonage", json=receipt, timeout=5)
    assert old_vonage.status_code == 401

    status = {"id": "wamid.x", "status": "failed", "biz_opaque_callback_data": f"acme:{message_id}"}
    doc = orjson.dumps(
        {"object": "whatsapp_business_account",
         "entry": [{"changes": [{"value": {"statuses": [status]}}]}]}
    )  # fmt: skip
    headers = {whatsapp_cloud.SIGNATURE: whatsapp_cloud.sign(OLD_WHATSAPP_APP_SECRET, doc)}
    old_whatsapp = httpx.post(
        f"{stack.api}/webhooks/whatsapp-cloud", content=doc, headers=headers, timeout=5
    )
    assert old_whatsapp.status_code == 401
    assert stack.state(message_id).json()["status"] == "DELIVERED"


def test_an_event_for_another_attempt_does_not_move_the_message(stack: Stack) -> None:
    message_id, provider_id = delivered_email(stack)
    other_id = dropped(stack, "sendgrid", "provider-message-id-mismatch")
    other_provider = dropped(stack, "twilio", "provider-mismatch")

    bounce = sendgrid_event(message_id, "bounce", "someone-else.x.0", type="bounce")
    assert sendgrid_post(stack, [bounce]).status_code == 200
    params = {"MessageSid": provider_id, "MessageStatus": "failed", "To": "+34600000001"}
    assert twilio_post(stack, message_id, params).status_code == 200

    wait_for(lambda: dropped(stack, "sendgrid", "provider-message-id-mismatch") > other_id)
    wait_for(lambda: dropped(stack, "twilio", "provider-mismatch") > other_provider)
    state = stack.state(message_id).json()
    assert state["status"] == "DELIVERED"
    assert "BOUNCED" not in history(state) and "FAILED" not in history(state)


def test_an_event_for_an_unknown_message_creates_nothing(stack: Stack) -> None:
    message_id = unique("never-sent")
    before = dropped(stack, "sendgrid", "unknown-message")
    event = sendgrid_event(message_id, "delivered", "nobody.x.0")
    assert sendgrid_post(stack, [event]).status_code == 200
    wait_for(lambda: dropped(stack, "sendgrid", "unknown-message") > before)
    assert stack.state(message_id).status_code == 404


def test_a_replayed_signature_outside_the_window_is_refused(stack: Stack) -> None:
    message_id, provider_id = delivered_email(stack)
    old = int(time.time()) - 600  # the window is 300 s
    click = sendgrid_event(message_id, "click", f"{provider_id}.x", url="https://example.com/")
    stale = sendgrid_post(stack, [click], timestamp=old)
    assert stale.status_code == 401
    assert stale.headers["content-type"].startswith("application/problem+json")

    receipt = {"messageId": "0A0000002", "status": "failed", "client-ref": f"acme:{message_id}",
               "timestamp": str(old), "nonce": unique("n")}  # fmt: skip
    receipt["sig"] = vonage.sign(settings_of(stack).vonage_signature_secret, receipt)
    assert httpx.post(f"{stack.api}/webhooks/vonage", json=receipt, timeout=5).status_code == 401
    state = stack.state(message_id).json()
    assert "CLICKED" not in history(state) and state["status"] == "DELIVERED"


def test_a_repeated_event_id_counts_once(stack: Stack) -> None:
    message_id, provider_id = delivered_email(stack)
    click = sendgrid_event(message_id, "click", f"{provider_id}.x", url="https://example.com/")
    before = dropped(stack, "sendgrid", "duplicate-event")
    for _ in range(3):
        assert sendgrid_post(stack, [click]).status_code == 200
    wait_for(lambda: dropped(stack, "sendgrid", "duplicate-event") >= before + 2)
    stack.wait_status(message_id, "CLICKED")
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    statuses = [
        codec().decode("NotificationStatus", m.value()) for m in read_topic(bootstrap, STATUS)
    ]
    clicks = [s for s in statuses if s["messageId"] == message_id and s["status"] == "CLICKED"]
    assert len(clicks) == 1
