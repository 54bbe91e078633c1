"""A send in doubt is sent again under the same (message, channel, attempt): where the
provider, or what stands behind it, can recognise a repeat, the second call carries the
same key as the first (README, Guarantees, "Which providers recognise a repeated request").

Email: a `Message-ID` derived from the dispatch (SMTP, and each SendGrid personalization).
Push: FCM's `android.notification.tag` and the APNs `apns-collapse-id` header, so a resent
notification replaces the first on the device. Derived, never random: two renders of the
same dispatch agree; another attempt or another message differs.
"""

from __future__ import annotations

from typing import Any

from pipeline.providers import Fcm, SendGrid, Smtp, StaticToken
from pipeline.providers.base import Message
from pipeline.providers.delivery import message_for
from pipeline.providers.repeat import message_id_header, repeat_key

from .adapterkit import fcm_push, smtp_relay
from .simkit import simulator


def dispatch(**over: Any) -> dict[str, Any]:
    base = {"messageId": "m-1", "tenant": "acme", "channel": "email", "to": "ana@example.com",
            "text": "Gate B12", "subject": "Gate change", "html": None, "attempt": 1}  # fmt: skip
    return {**base, **over}


def variants(channel: str, to: str) -> tuple[Message, Message, Message, Message]:
    """The first call, its resend in doubt, the next attempt, another message."""
    first = message_for(dispatch(channel=channel, to=to))
    resend = message_for(dispatch(channel=channel, to=to))
    retry = message_for(dispatch(channel=channel, to=to, attempt=2))
    other = message_for(dispatch(channel=channel, to=to, messageId="m-2"))
    return first, resend, retry, other


def test_message_for_carries_the_attempt() -> None:
    assert message_for(dispatch(attempt=3)).attempt == 3
    assert message_for({k: v for k, v in dispatch().items() if k != "attempt"}).attempt == 1


def test_the_key_is_derived_bounded_and_safe() -> None:
    first, resend, retry, other = variants("email", "ana@example.com")
    assert repeat_key(first) == repeat_key(resend)
    assert len({repeat_key(first), repeat_key(retry), repeat_key(other)}) == 3
    push = message_for(dispatch(channel="push", to="token"))
    assert repeat_key(push) != repeat_key(first)  # the channel counts
    tenant = message_for(dispatch(tenant="globex"))
    assert repeat_key(tenant) != repeat_key(first)  # and the tenant
    long_id = message_for(dispatch(messageId="x" * 500 + " <weird>@\u00e9"))
    key = repeat_key(long_id)
    assert len(key.encode()) <= 64 and key.replace("-", "").isalnum()  # apns-collapse-id limit
    assert message_id_header(first, "herald.test") == f"<{repeat_key(first)}@herald.test>"


def test_smtp_message_id_is_the_same_for_a_resend() -> None:
    smtp = Smtp(host="127.0.0.1", port=25, from_email="n@herald.test")
    first, resend, retry, other = variants("email", "ana@example.com")
    ids = [str(smtp.build(m)["Message-ID"]) for m in (first, resend, retry, other)]
    assert ids[0] == ids[1] == message_id_header(first, "herald.test")
    assert len(set(ids)) == 3


def sendgrid() -> SendGrid:
    return SendGrid(None, base_url="http://sg", api_key="k", from_email="n@herald.test")  # type: ignore[arg-type]


def test_sendgrid_personalization_carries_the_message_id() -> None:
    first, resend, retry, other = variants("email", "ana@example.com")

    def single(m: Message) -> str:
        return str(sendgrid().body(m)["personalizations"][0]["headers"]["Message-ID"])

    assert single(first) == single(resend) == message_id_header(first, "herald.test")
    assert len({single(first), single(retry), single(other)}) == 3
    batch = sendgrid().batch_body([first, message_for(dispatch(messageId="m-3", to="b@x.test"))])
    headers = [p["headers"]["Message-ID"] for p in batch["personalizations"]]
    assert headers[0] == single(first) and headers[1] != headers[0]  # one per recipient


def test_fcm_tag_and_collapse_id_are_the_same_for_a_resend() -> None:
    fcm = Fcm(None, base_url="http://f", project_id="p", token_provider=StaticToken("t"))  # type: ignore[arg-type]
    first, resend, retry, other = variants("push", "device-token-1")

    def keys(m: Message) -> tuple[str, str]:
        payload = fcm.payload(m)
        return payload["android"]["notification"]["tag"], payload["apns"]["headers"][
            "apns-collapse-id"
        ]

    assert keys(first) == keys(resend) == (repeat_key(first), repeat_key(first))
    assert len({keys(first), keys(retry), keys(other)}) == 3
    assert "collapse_key" not in fcm.payload(first)["android"]  # see repeat.py: 4 keys per device


async def test_the_simulator_takes_a_resend_and_shows_its_keys() -> None:
    """No provider here dedups a call (README): the simulator records both, with one key."""
    async with simulator(smtp=True) as sim:
        s = sim.settings
        push = message_for(dispatch(channel="push", to="device-token-1"))
        fcm = fcm_push(sim)
        await fcm.send(push)
        await fcm.send(push)  # the resend in doubt: FCM takes it again, the device folds it
        pushes = sim.recorded("fcm")
        assert len(pushes) == 2
        assert {p["content"]["apns"]["headers"]["apns-collapse-id"] for p in pushes} == {
            repeat_key(push)
        }
        assert {p["content"]["android"]["notification"]["tag"] for p in pushes} == {
            repeat_key(push)
        }
        email = message_for(dispatch())
        sg = SendGrid(sim.session, base_url=s.sendgrid_base_url, api_key=s.sendgrid_api_key,
                      from_email="n@herald.test")  # fmt: skip
        await sg.send(email)
        await sg.send(email)  # SendGrid has no idempotency key: it sends twice
        mails = sim.recorded("sendgrid")
        assert [m["content"]["headers"]["Message-ID"] for m in mails] == [
            message_id_header(email, "herald.test")
        ] * 2
        relay = smtp_relay(sim)
        first = await relay.send(email)
        again = await relay.send(email)
        relayed = sim.recorded("smtp")
        assert first == again and len(relayed) == 2
        assert {m["content"]["headers"]["Message-ID"] for m in relayed} == {
            first.provider_message_id
        }


async def test_the_fcm_simulator_refuses_a_collapse_id_apns_would() -> None:
    async with simulator() as sim:
        url = f"{sim.url}/v1/projects/{sim.settings.fcm_project_id}/messages:send"
        auth = {"Authorization": f"Bearer {sim.settings.fcm_access_token}"}
        message = {"token": "device-token-1", "notification": {"body": "hi"},
                   "apns": {"headers": {"apns-collapse-id": "x" * 65}}}  # fmt: skip
        async with sim.session.post(url, json={"message": message}, headers=auth) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["status"] == "INVALID_ARGUMENT"
        assert sim.recorded() == []
