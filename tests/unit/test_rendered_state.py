"""The state says what was rendered: a dispatch carries its template version (and, for SMS,
its segment count), every status of it carries its locale, variant and template version,
the state keeps the newest of each and `GET /v1/notifications/{id}` shows them; an SMS
send's segments are on its entry in `attempts`."""

from __future__ import annotations

from typing import Any

from agents.ingest import ingest
from agents.send import send
from agents.status import status as status_agent
from pipeline.domain.planning import render_dispatch
from pipeline.domain.records import status_record
from pipeline.domain.segments import sms_segments
from pipeline.domain.state import apply_status
from pipeline.domain.templates import TemplateCatalog
from pipeline.http.models import NotificationState
from pipeline.kafka.codecs import AvroCodec
from pipeline.runtime import Runtime
from tests.unit.test_agents import event, run, statuses, world  # noqa: F401
from tests.unit.test_http_door import headers, serving

AT = "2026-11-28T10:00:0{}.000Z"


def newsletter_sms(templates: TemplateCatalog, make_request: Any) -> dict[str, Any]:
    request = make_request(
        template="newsletter", priority="marketing", data={"name": "Zoë", "offer": "-20 € [BCN]"},
        recipient={"phone": "+34600111222", "locale": "es-MX"},
    )  # fmt: skip
    return render_dispatch(request, "sms", templates=templates, remaining=[], original=b"")


def test_an_sms_dispatch_carries_version_variant_locale_and_segments(
    templates: TemplateCatalog, make_request: Any, codec: AvroCodec
) -> None:
    dispatch = newsletter_sms(templates, make_request)
    assert dispatch["locale"] == "es" and dispatch["variant"] in ("a", "b")
    assert dispatch["templateVersion"] == templates.get("newsletter").version == 1
    assert dispatch["segments"] == sms_segments(dispatch["text"])
    assert "€" in dispatch["text"]  # GSM-7 with the extension table
    assert codec.decode("ChannelDispatch", codec.encode("ChannelDispatch", dispatch)) == dispatch
    email = render_dispatch(
        make_request(), "email", templates=templates, remaining=[], original=b""
    )
    assert email["segments"] is None and email["templateVersion"] == 1


def test_statuses_of_a_dispatch_say_what_was_rendered_and_sent_says_segments(
    templates: TemplateCatalog, make_request: Any, codec: AvroCodec
) -> None:
    dispatch = newsletter_sms(templates, make_request)
    processing = status_record(dispatch, "PROCESSING", channel="sms", attempt=1)
    sent = status_record(dispatch, "SENT", channel="sms", provider="twilio", attempt=1)
    for record in (processing, sent):
        assert (record["locale"], record["variant"], record["templateVersion"]) == (
            "es", dispatch["variant"], 1,
        )  # fmt: skip
        assert codec.decode("NotificationStatus", codec.encode("NotificationStatus", record))
    assert processing["segments"] is None and sent["segments"] == dispatch["segments"]
    pending = status_record(make_request(), "PENDING")  # a request: nothing rendered yet
    assert [pending[k] for k in ("locale", "variant", "templateVersion", "segments")] == [None] * 4


def test_the_state_keeps_the_newest_rendering_and_the_segments_of_the_send() -> None:
    base = {"messageId": "m-1", "tenant": "acme", "userId": "u-1", "template": "newsletter"}
    folded = None
    for n, change in enumerate([
        {"status": "PENDING"},
        {"status": "RETRY", "channel": "whatsapp", "attempt": 1, "outcome": "FALLBACK",
         "locale": "es", "variant": "b", "templateVersion": 1},
        {"status": "SENT", "channel": "sms", "provider": "twilio", "attempt": 1,
         "providerMessageId": "SM1", "locale": "es", "variant": "b", "templateVersion": 2,
         "segments": 3},
        {"status": "DELIVERED", "channel": "sms", "provider": "twilio", "attempt": 0,
         "providerMessageId": "SM1"},  # a provider event's status: rendered nothing
    ]):  # fmt: skip
        folded = apply_status(folded, {**base, "at": AT.format(n), **change})
    assert folded is not None
    assert (folded["locale"], folded["variant"], folded["templateVersion"]) == ("es", "b", 2)
    assert [a.get("segments") for a in folded["attempts"]] == [None, 3]
    assert folded["status"] == "DELIVERED"


def test_a_state_folded_before_the_upgrade_still_folds() -> None:
    old = {"messageId": "m-1", "tenant": "acme", "userId": "u-1", "status": "PENDING",
           "channel": None, "provider": None, "template": "t", "priority": "standard",
           "attempts": [], "history": [{"status": "PENDING", "at": AT.format(0)}],
           "createdAt": AT.format(0), "updatedAt": AT.format(0)}  # fmt: skip
    doc = apply_status(old, {"messageId": "m-1", "tenant": "acme", "userId": "u-1",
                             "status": "PROCESSING", "at": AT.format(1), "channel": "sms",
                             "locale": "en", "templateVersion": 1})  # fmt: skip
    assert doc["locale"] == "en" and doc.get("variant") is None


async def test_an_sms_through_the_stages_shows_locale_version_and_segments_on_get(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    name = "Ana 😀 " + "x" * 60  # an emoji: UCS-2, and over 70 code units: two segments
    request = make_request(channels=["sms"], recipient={"phone": "+34600111222", "locale": "es"})
    request["data"] = {**request["data"], "name": name}
    value = rt.codec.encode("NotificationRequest", request)
    await run(ingest, rt, [[event("herald.notifications.requests", 1, "acme:u-1", value)]])
    [dispatch] = rt.sinks.dispatch[("sms", "urgent")].values()
    lane_value = rt.codec.encode("ChannelDispatch", dispatch)
    await run(send, rt, [[event("herald.dispatch.sms.urgent", 2, "acme:u-1", lane_value)]],
              channel="sms")  # fmt: skip
    assert statuses(rt) == ["PENDING", "PROCESSING", "SENT"]
    sent = rt.sinks.status.values()[-1]
    assert sent["segments"] == 2 and sent["locale"] == "es" and sent["templateVersion"] == 1
    events = [
        event("herald.notifications.status", n, "acme:m-1",
              rt.codec.encode("NotificationStatus", record))
        for n, record in enumerate(rt.sinks.status.values())
    ]  # fmt: skip
    await run(status_agent, rt, [events])
    state = rt.tables.state["acme:m-1"]
    async with serving() as (client, door_rt):
        door_rt.tables.state["acme:m-1"] = state
        resp = await client.get("/v1/notifications/m-1", headers=headers())
        assert resp.status == 200
        body = await resp.json()
    NotificationState.model_validate(body)
    assert (body["locale"], body["variant"], body["templateVersion"]) == ("es", None, 1)
    assert body["status"] == "SENT" and body["attempts"][-1]["segments"] == 2
