"""Provider events that cannot be forged: each check as a pure function.

No verification key has a default; a receiver without its secret is off; a signed
timestamp outside the replay window is refused; an event changes a message only
when it names the message's own send; a repeated event id counts once.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from pipeline.devstack.secrets import WEBHOOK_SECRET_VARS, webhook_secrets
from pipeline.domain.provider_events import RecentIds, Verdict, in_flight, judge
from pipeline.exceptions import AuthError, StaleSignature, ValidationError
from pipeline.http.webhooks import (
    SECRETS,
    check_keys,
    receivers_off,
    sendgrid,
    verify_and_parse,
    vonage,
)
from pipeline.http.webhooks.events import fresh
from pipeline.settings import Settings

SECRET = Settings.from_env(webhook_secrets())


def test_no_verification_key_has_a_default() -> None:
    defaults = Settings()
    assert receivers_off(defaults) == {p: var for p, (_, var) in SECRETS.items()}
    assert defaults.sim_sendgrid_webhook_private_key == ""
    assert defaults.whatsapp_verify_token == ""
    assert receivers_off(SECRET) == {}


def test_a_receiver_without_its_secret_refuses_everything() -> None:
    body = orjson.dumps([{"event": "delivered"}])
    with pytest.raises(ValidationError, match="no webhook receiver"):
        verify_and_parse("sendgrid", url="u", headers={}, body=body, settings=Settings())


def test_per_run_secrets_are_fresh_and_a_set_pair_is_kept() -> None:
    one, two = webhook_secrets(), webhook_secrets()
    assert set(one) == set(WEBHOOK_SECRET_VARS)
    assert all(one[k] != two[k] for k in WEBHOOK_SECRET_VARS)
    check_keys(Settings.from_env(one))  # the public half parses
    kept = webhook_secrets({"TWILIO_AUTH_TOKEN": "mine", "SENDGRID_WEBHOOK_PUBLIC_KEY": "half"})
    assert kept["TWILIO_AUTH_TOKEN"] == "mine"
    assert kept["SENDGRID_WEBHOOK_PUBLIC_KEY"] != "half"  # half a pair is replaced whole


def test_an_unusable_sendgrid_key_stops_the_worker() -> None:
    from pipeline.exceptions import ConfigError

    with pytest.raises(ConfigError):
        check_keys(Settings(sendgrid_webhook_public_key="not a key"))


def test_the_replay_window() -> None:
    fresh("1000", 1000 + 300, 300, "t")
    fresh(1000, 1000 - 300, 300, "t")  # a little ahead (clock skew) is fine
    with pytest.raises(StaleSignature):
        fresh("1000", 1000 + 301, 300, "t")
    with pytest.raises(StaleSignature):
        fresh("1000", 1000 - 301, 300, "t")
    with pytest.raises(AuthError):
        fresh("yesterday", 1000, 300, "t")


def test_sendgrid_refuses_a_valid_signature_with_an_old_timestamp() -> None:
    body = orjson.dumps([{"event": "delivered", "sg_message_id": "X.1", "tenant": "acme",
                          "messageId": "m-1", "timestamp": 1}])  # fmt: skip
    ts = "1700000000"
    headers = {sendgrid.SIGNATURE: sendgrid.sign(SECRET.sim_sendgrid_webhook_private_key, ts, body),
               sendgrid.TIMESTAMP: ts}  # fmt: skip

    def parse(now: float) -> Any:
        return verify_and_parse(
            "sendgrid", url="u", headers=headers, body=body, settings=SECRET, now=now
        )

    assert len(parse(1700000000 + 299)) == 1
    with pytest.raises(StaleSignature):
        parse(1700000000 + 301)
    narrow = SECRET.with_(webhook_replay_window_s=10)
    with pytest.raises(StaleSignature):
        verify_and_parse("sendgrid", url="u", headers=headers, body=body, settings=narrow,
                         now=1700000000 + 11)  # fmt: skip


def test_vonage_needs_a_fresh_signed_timestamp() -> None:
    def receipt(**extra: str) -> bytes:
        params = {"messageId": "0A1", "status": "delivered", "client-ref": "acme:m-1", **extra}
        params["sig"] = vonage.sign(SECRET.vonage_signature_secret, params)
        return orjson.dumps(params)

    def parse(body: bytes) -> Any:
        return verify_and_parse("vonage", url="u", headers={}, body=body, settings=SECRET,
                                now=1700000000)  # fmt: skip

    assert len(parse(receipt(timestamp="1700000000"))) == 1
    with pytest.raises(StaleSignature):
        parse(receipt(timestamp="1699999000"))
    with pytest.raises(AuthError):
        parse(receipt())  # no signed timestamp


# The attempt match.


def event(**kw: Any) -> dict[str, Any]:
    base = {"provider": "sendgrid", "providerMessageId": "SG1", "event": "DELIVERED",
            "reason": None, "eventId": "e1", "tenant": "acme", "messageId": "m-1"}  # fmt: skip
    return {**base, **kw}


def state(status: str = "SENT", *, provider: str = "sendgrid", pid: str = "SG1",
          history: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    sent = {"channel": "email", "provider": provider, "outcome": "SENT", "providerMessageId": pid}
    return {
        "status": status,
        "attempts": [sent] if status != "PROCESSING" else [],
        "history": history
        if history is not None
        else [{"status": "PROCESSING", "channel": "email"},
              {"status": "SENT", "channel": "email", "provider": provider,
               "providerMessageId": pid}],
    }  # fmt: skip


def test_an_event_for_the_messages_own_send_applies() -> None:
    assert judge(event(), state()) is Verdict.APPLY
    assert judge(event(event="OPENED"), state("DELIVERED")) is Verdict.APPLY


def test_an_unknown_message_is_dropped_once_settled() -> None:
    assert judge(event(), None) is Verdict.WAIT
    assert judge(event(), None, settled=True) is Verdict.UNKNOWN_MESSAGE


def test_another_provider_or_another_send_is_dropped() -> None:
    assert judge(event(provider="twilio"), state("DELIVERED")) is Verdict.PROVIDER_MISMATCH
    assert judge(event(providerMessageId="SG2"), state("DELIVERED")) is Verdict.ID_MISMATCH


def test_a_send_still_on_its_way_waits_then_drops() -> None:
    processing = state("PROCESSING", history=[{"status": "PROCESSING", "channel": "email"}])
    assert in_flight(processing)
    assert judge(event(), processing) is Verdict.WAIT
    assert judge(event(), processing, settled=True) is Verdict.NOT_RECORDED
    # Fan-out: email is sent, SMS is still being sent: a Twilio event may be early.
    fan_out = state("SENT", history=[*state()["history"], {"status": "PROCESSING",
                                                           "channel": "sms"}])  # fmt: skip
    assert in_flight(fan_out) and judge(event(provider="twilio"), fan_out) is Verdict.WAIT
    assert not in_flight(state("DELIVERED"))


def test_an_event_already_in_the_history_is_a_duplicate() -> None:
    delivered = state("DELIVERED", history=[*state()["history"], {
        "status": "DELIVERED", "channel": "email", "provider": "sendgrid",
        "providerMessageId": "SG1", "attempt": 0}])  # fmt: skip
    assert judge(event(), delivered) is Verdict.DUPLICATE
    assert judge(event(event="CLICKED", reason="https://x.test/"), delivered) is Verdict.APPLY


def test_recent_ids_are_bounded_and_expire() -> None:
    ids = RecentIds(max_size=3, ttl_s=10)
    t = time.monotonic()
    for i in range(5):
        ids.add(f"e{i}", t)
    assert len(ids) == 3 and not ids.seen("e0", t) and ids.seen("e4", t)
    assert not ids.seen("e4", t + 10.1) and len(ids) == 0


def test_herald_up_hands_fresh_secrets_to_simulator_and_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from herald.up import child_env

    for var in ("SENDGRID_BASE_URL", "SMTP_HOST", *WEBHOOK_SECRET_VARS):
        monkeypatch.delenv(var, raising=False)
    first, second = child_env(Settings(), "j" * 40), child_env(Settings(), "j" * 40)
    assert all(first[var] and first[var] != second[var] for var in WEBHOOK_SECRET_VARS)
    assert receivers_off(Settings.from_env(first)) == {}
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "the operator's own")
    assert child_env(Settings(), "j" * 40)["TWILIO_AUTH_TOKEN"] == "the operator's own"
