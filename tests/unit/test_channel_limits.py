"""Content over a channel's provider limits (WhatsApp text over 4,096 characters, a push
payload over FCM's 4,096 bytes) is refused where it is rendered: 422 problem+json at the
door, a dead letter `invalid` and a DLQ status from Kafka; never sent to the provider."""

from __future__ import annotations

from typing import Any

import pytest

from agents.ingest import ingest
from pipeline.domain.channel_limits import (
    PUSH_MAX_PAYLOAD_BYTES,
    WHATSAPP_MAX_TEXT_CHARS,
    check_channel_content,
    push_payload,
    push_payload_bytes,
)
from pipeline.domain.limits import Limits
from pipeline.domain.templates import Rendered
from pipeline.exceptions import ContentOverLimit
from pipeline.providers.fcm import payload_size
from pipeline.runtime import Runtime
from tests.unit.test_agents import event, run, statuses, world  # noqa: F401
from tests.unit.test_http_door import EXAMPLE, PROBLEM, headers, serving

IDS = {"message_id": "m-1", "tenant": "acme"}
# The booking-confirmation WhatsApp text around the name, in English, with EXAMPLE's data.
AROUND_NAME = len(
    "Hello , your booking ABC123 is confirmed: flight IB3456 MAD to JFK on 2026-12-01."
)


def whatsapp(text: str) -> Rendered:
    return Rendered(template="t", locale="en", channel="whatsapp", text=text)


def push(text: str, subject: str | None = None, data: dict[str, str] | None = None) -> Rendered:
    return Rendered(template="t", locale="en", channel="push", text=text, subject=subject,
                    data=data)  # fmt: skip


def test_whatsapp_takes_4096_characters_not_bytes() -> None:
    check_channel_content(whatsapp("é" * WHATSAPP_MAX_TEXT_CHARS), **IDS)  # 8,192 bytes: fine
    with pytest.raises(ContentOverLimit) as caught:
        check_channel_content(whatsapp("a" * (WHATSAPP_MAX_TEXT_CHARS + 1)), **IDS)
    assert caught.value.errors[0]["field"] == "data"
    assert "4097 characters" in caught.value.errors[0]["message"]


def test_push_counts_title_body_and_data_as_fcm_does() -> None:
    data = {"type": "booking", "ref": "Ñ" * 100}
    rendered = push("body", subject="title", data=data)
    payload = push_payload(rendered, **IDS)
    assert payload == {"notification": {"title": "title", "body": "body"},
                       "data": {**data, "messageId": "m-1", "tenant": "acme"}}  # fmt: skip
    assert push_payload_bytes(payload) == payload_size(payload)  # the adapter's own count
    room = PUSH_MAX_PAYLOAD_BYTES - push_payload_bytes(push_payload(push(""), **IDS))
    check_channel_content(push("a" * room), **IDS)  # exactly 4,096 bytes
    with pytest.raises(ContentOverLimit, match="4097 bytes"):
        check_channel_content(push("a" * (room + 1)), **IDS)
    with pytest.raises(ContentOverLimit):  # UTF-8 bytes: half as many two-byte characters
        check_channel_content(push("é" * (room // 2 + 1)), **IDS)


def test_other_channels_have_no_such_limit_here() -> None:
    long = "a" * 10_000
    for channel in ("email", "sms"):
        check_channel_content(Rendered("t", "en", channel, long, subject=long), **IDS)


def door_body(channel: str, **data: str) -> dict[str, Any]:
    contact = {"whatsapp": {"whatsapp": "+34600111222"}, "push": {"pushTokens": ["tok-1"]}}
    return {**EXAMPLE, "recipient": {"userId": "u1", "locale": "en", **contact[channel]},
            "channels": [channel], "data": {**EXAMPLE["data"], **data}}  # fmt: skip


@pytest.mark.parametrize(
    ("channel", "data", "says"),
    [
        ("whatsapp", {"name": "x" * 4100}, f"{4100 + AROUND_NAME} characters"),
        ("push", {"bookingRef": "R" * 1400, "flight": "F" * 700}, "FCM takes at most 4096"),
    ],
)
async def test_the_door_refuses_content_over_the_channel_limit_with_422(
    channel: str, data: dict[str, str], says: str
) -> None:
    async with serving(Limits.compute(http_max_body=32_768)) as (client, rt):
        rt.available_channels = {"email", "sms", "whatsapp", "push"}
        resp = await client.post(
            "/v1/notifications", json=door_body(channel, **data), headers=headers()
        )
        assert resp.status == 422 and resp.content_type == PROBLEM
        problem = await resp.json()
        [error] = problem["errors"]
        assert error["field"] == "data" and says in error["message"]
        assert rt.sinks.requests.sent == [] and rt.sinks.status.sent == []
        ok = await client.post("/v1/notifications", json=door_body(channel), headers=headers())
        assert ok.status == 202 and len(rt.sinks.requests.sent) == 1


async def test_the_door_takes_a_whatsapp_text_of_exactly_4096_characters() -> None:
    name = "x" * (WHATSAPP_MAX_TEXT_CHARS - AROUND_NAME)
    async with serving(Limits.compute(http_max_body=32_768)) as (client, rt):
        rt.available_channels = {"whatsapp"}
        at = await client.post(
            "/v1/notifications", json=door_body("whatsapp", name=name), headers=headers()
        )
        over = await client.post(
            "/v1/notifications", json=door_body("whatsapp", name=name + "x"), headers=headers()
        )
        assert (at.status, over.status) == (202, 422)
        assert "4097 characters" in (await over.json())["errors"][0]["message"]


@pytest.mark.parametrize(
    ("channel", "recipient", "data"),
    [
        ("whatsapp", {"whatsapp": "+34600111222"}, {"name": "x" * 5000}),
        ("push", {"pushTokens": ["tok-1"]}, {"bookingRef": "R" * 1400, "flight": "F" * 700}),
    ],
)
async def test_from_kafka_content_over_the_channel_limit_is_an_invalid_dead_letter(
    world: Runtime,  # noqa: F811
    make_request: Any,
    channel: str,
    recipient: dict[str, Any],
    data: dict[str, str],
) -> None:
    rt = world
    request = make_request(channels=[channel], recipient=recipient)
    request["data"] = {**request["data"], **data}
    value = rt.codec.encode("NotificationRequest", request)
    stream = await run(ingest, rt, [[event("herald.notifications.requests", 5, "acme:u-1", value)]])
    [letter] = rt.sinks.dlq.values()
    assert letter["reason"] == "invalid" and letter["offset"] == 5
    assert "takes at most 4096" in letter["error"]
    assert statuses(rt) == ["DLQ"]
    assert rt.sinks.dispatch[(channel, "urgent")].values() == []
    assert rt.providers[channel][0].sent == []  # type: ignore[attr-defined]
    assert stream.acked == [5]
